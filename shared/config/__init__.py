"""Settings: every STEAMWATCH_* variable, validated once by the entry point and passed down."""

from shared.config._settings import (
    DIRECT,
    ENV_PREFIX,
    ConfigError,
    LogFormat,
    LogLevel,
    Settings,
    SteamFamily,
    load_settings,
    store_urls,
)

__all__ = [
    "ConfigError",
    "DIRECT",
    "ENV_PREFIX",
    "LogFormat",
    "LogLevel",
    "Settings",
    "SteamFamily",
    "load_settings",
    "store_urls",
]
