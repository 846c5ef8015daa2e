"""Settings: every bad value fails at start naming the variable, and no secret ever prints."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, load_settings

SECRET = "hunter2-very-secret"

BAD_VALUES = [
    pytest.param("STEAMWATCH_DATABASE_URL", "", "is empty", id="empty-database-url"),
    pytest.param(
        "STEAMWATCH_DATABASE_URL",
        f"mysql://u:{SECRET}@db/x",
        "scheme 'mysql'",
        id="database-bad-scheme",
    ),
    pytest.param(
        "STEAMWATCH_DATABASE_URL", f"postgresql://u:{SECRET}@/x", "no host", id="database-no-host"
    ),
    pytest.param(
        "STEAMWATCH_DATABASE_URL",
        f"postgresql://u:{SECRET}@db:99999/x",
        "port",
        id="database-bad-port",
    ),
    pytest.param("STEAMWATCH_REDIS_URL", "", "is empty", id="empty-redis-url"),
    pytest.param(
        "STEAMWATCH_REDIS_URL",
        f"http://:{SECRET}@cache:6379",
        "scheme 'http'",
        id="redis-bad-scheme",
    ),
    pytest.param(
        "STEAMWATCH_REDIS_URL",
        f"redis://:{SECRET}@cache:6379/zero",
        "not a number",
        id="redis-bad-db",
    ),
    pytest.param("STEAMWATCH_REDIS_URL", "unix://", "no socket path", id="redis-unix-no-path"),
    pytest.param(
        "STEAMWATCH_STEAM_BASE_URL", "steamcommunity.com", "http", id="steam-url-no-scheme"
    ),
    pytest.param(
        "STEAMWATCH_STEAM_BASE_URL",
        f"https://u:{SECRET}@steam",
        "credentials",
        id="steam-url-credentials",
    ),
    pytest.param("STEAMWATCH_PROXIES", "", "is empty", id="proxies-empty"),
    pytest.param(
        "STEAMWATCH_PROXIES", f"socks5://u:{SECRET}@p:1080", "socks5", id="proxy-bad-scheme"
    ),
    pytest.param("STEAMWATCH_PROXIES", f"http://u:{SECRET}@p", "no port", id="proxy-no-port"),
    pytest.param("STEAMWATCH_PROXIES", f"not a url at all {SECRET}", "scheme", id="proxy-garbage"),
    pytest.param(
        "STEAMWATCH_PROXIES", f"http://u:{SECRET}@p:8080/path", "path", id="proxy-with-path"
    ),
    pytest.param("STEAMWATCH_PROXIES", "http://p:1, http://p:1", "twice", id="proxy-duplicate"),
    pytest.param("STEAMWATCH_SCHEDULER_TICK", "-1", "greater than 0", id="negative-tick"),
    pytest.param("STEAMWATCH_LEASE_SECONDS", "0", "greater than or equal to 1", id="zero-lease"),
    pytest.param(
        "STEAMWATCH_MIN_CHECK_INTERVAL", "-30", "greater than or equal to 1", id="negative-interval"
    ),
    pytest.param("STEAMWATCH_DB_POOL_SIZE", "many", "valid integer", id="pool-size-not-int"),
    pytest.param("STEAMWATCH_HTTP_TIMEOUT", "nan", "finite number", id="timeout-nan"),
    pytest.param("STEAMWATCH_LOG_LEVEL", "LOUD", "DEBUG", id="unknown-log-level"),
    pytest.param("STEAMWATCH_STEAM_FAMILY", "beta", "legacy", id="unknown-family"),
    pytest.param(
        "STEAMWATCH_DATABSE_URL", "postgresql://db/x", "unknown setting", id="misspelt-variable"
    ),
    pytest.param(
        "STEAMWATCH_RECOVERY_CAP",
        "30",
        "shorter than STEAMWATCH_RECOVERY_BASE",
        id="recovery-cap-under-base",
    ),
    pytest.param(
        "STEAMWATCH_RECOVERY_FACTOR", "0.5", "greater than or equal to 1", id="recovery-shrinking"
    ),
    pytest.param(
        "STEAMWATCH_RECOVERY_ATTEMPTS", "0", "greater than or equal to 1", id="no-recovery-attempts"
    ),
    pytest.param(
        "STEAMWATCH_WATCHDOG_GRACE", "-1", "greater than or equal to 0", id="negative-grace"
    ),
    pytest.param("STEAMWATCH_SECRET_KEY", SECRET, "key 1 of 1 is not a Fernet key", id="key"),
    pytest.param(
        "STEAMWATCH_SECRET_KEY",
        f"UHc3HiD7BVP1lWMKk4Lb1Urj1MlCBGpSX6napSXTOto=,{SECRET}",
        "key 2 of 2 is not a Fernet key",
        id="second-key",
    ),
    pytest.param("STEAMWATCH_SECRET_KEY", " , ", "is empty", id="empty-key"),
    pytest.param("STEAMWATCH_NOTIFY_RATES", "json=fast", "scheme=messages/seconds", id="rate"),
    pytest.param("STEAMWATCH_NOTIFY_RATES", "json=0/1", "under 1 message", id="rate-zero"),
    pytest.param("STEAMWATCH_NOTIFY_MAX_ATTEMPTS", "0", "greater than or equal to 1", id="tries"),
    pytest.param("STEAMWATCH_NOTIFIER_CONSUMER", "a b", "should match pattern", id="consumer"),
]


@pytest.mark.parametrize(("variable", "value", "says"), BAD_VALUES)
def test_a_bad_value_fails_naming_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert f"{variable}:" in message
    assert says in message
    assert SECRET not in message
    assert SECRET not in repr(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"STEAMWATCH_DATABASE_URL": "", "STEAMWATCH_LEASE_SECONDS": "-5"})
    assert len(caught.value.problems) == 2


def test_defaults_mean_embedded_stores_and_direct_access() -> None:
    settings = load_settings({})
    assert settings.embedded_database and settings.embedded_redis
    assert [p.reveal() for p in settings.proxies] == ["direct"]
    assert settings.steam_base_url == "https://steamcommunity.com"


def test_urls_are_normalised_and_secrets_hidden_in_repr() -> None:
    settings = load_settings(
        {
            "STEAMWATCH_DATABASE_URL": f"postgres://steam:{SECRET}@db:5432/steamwatch",
            "STEAMWATCH_REDIS_URL": f"redis://:{SECRET}@cache:6379/1",
            "STEAMWATCH_PROXIES": f"direct, http://user:{SECRET}@10.0.0.1:3128",
            "STEAMWATCH_STEAM_BASE_URL": "http://127.0.0.1:8000/",
        }
    )
    assert settings.database_url is not None and settings.redis_url is not None
    assert (
        settings.database_url.reveal() == f"postgresql+asyncpg://steam:{SECRET}@db:5432/steamwatch"
    )
    assert settings.steam_base_url == "http://127.0.0.1:8000"
    assert len(settings.proxies) == 2
    shown = repr(settings) + str(settings) + str(settings.proxies)
    assert SECRET not in shown
    assert "steam:***@db:5432" in shown
    assert "user:***@10.0.0.1:3128" in shown


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValueError):
        settings.lease_seconds = 5  # type: ignore[misc]


def test_test_harness_variables_are_not_settings() -> None:
    settings = load_settings({"STEAMWATCH_TEST_DATABASE_URL": "postgresql://x/y"})
    assert settings.embedded_database


def test_notification_settings_read_keys_and_rates() -> None:
    key = "UHc3HiD7BVP1lWMKk4Lb1Urj1MlCBGpSX6napSXTOto="
    settings = load_settings(
        {"STEAMWATCH_SECRET_KEY": f" {key} ", "STEAMWATCH_NOTIFY_RATES": "json=5/1, tgram=20/60"}
    )
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == key
    assert key not in repr(settings) and key not in str(settings.secret_key)
    assert settings.notify_rates == {"json": (5, 1.0), "tgram": (20, 60.0)}
    with pytest.raises(ConfigError, match="NOTIFY_RETRY_CAP: is shorter than"):
        load_settings({"STEAMWATCH_NOTIFY_RETRY_BASE": "10", "STEAMWATCH_NOTIFY_RETRY_CAP": "5"})
