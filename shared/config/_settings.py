"""One typed settings object, read from ``STEAMWATCH_*`` variables once at process start.

Entry points call :func:`load_settings` and pass what is needed down; nothing else in the
project reads the environment. A bad value fails at start with :class:`ConfigError`, which
names the variable and what is wrong with it, and never repeats the value (it may be a secret).

A pydantic model with a small reader of its own, not pydantic-settings: the variables use
comma-separated and ``name=count/window`` forms that pydantic-settings would parse as JSON, its
errors repeat the offending value, and a misspelt ``STEAMWATCH_*`` variable must be an error,
which it ignores. :func:`load_settings` and the field validators do it; the dependency went.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.observability import SecretURL
from shared.steam import DEFAULT_BUDGETS, DEFAULT_COOLDOWNS, ENDPOINTS, Budget, Endpoint

ENV_PREFIX = "STEAMWATCH_"
DIRECT = "direct"
#: Variables under the prefix that belong to the test harness, not to a running service.
_NOT_SETTINGS = ("STEAMWATCH_TEST_",)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["auto", "json", "console"]
SteamFamily = Literal["legacy", "new"]


class ConfigError(Exception):
    """Raised when the environment holds a setting that cannot be used; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


def _port_of(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError as e:
        raise ValueError("has a port that is not a number between 0 and 65535") from e


def _database_url(value: str) -> SecretURL:
    value = value.strip()
    if not value:
        raise ValueError("is empty; unset it to use the embedded PostgreSQL")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
        raise ValueError(
            f"has scheme {scheme or '(none)'!r}; use postgresql:// or postgresql+asyncpg://"
        )
    _port_of(value)
    socket_dir = parse_qs(parts.query).get("host")
    if not parts.hostname and not socket_dir:
        raise ValueError("names no host (give host:port, or ?host=/socket/dir)")
    rest = value.split("://", 1)[1]
    return SecretURL(f"postgresql+asyncpg://{rest}")


def _redis_url(value: str) -> SecretURL:
    value = value.strip()
    if not value:
        raise ValueError("is empty; unset it to use the embedded Redis")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"has scheme {scheme or '(none)'!r}; use redis://, rediss:// or unix://")
    _port_of(value)
    if scheme == "unix":
        if not parts.path:
            raise ValueError("names no socket path (unix:///path/to/redis.sock)")
    else:
        if not parts.hostname:
            raise ValueError("names no host (redis://host:6379/0)")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError("has a database path that is not a number (redis://host:6379/0)")
    return SecretURL(value)


def _proxy_url(entry: str) -> SecretURL:
    if entry.lower() == DIRECT:
        return SecretURL(DIRECT)
    parts = urlsplit(entry)
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError(
            f"has an entry with scheme {parts.scheme or '(none)'!r}; each entry is "
            "'direct' or http://[user:password@]host:port"
        )
    if not parts.hostname:
        raise ValueError("has an entry with no host")
    if _port_of(entry) is None:
        raise ValueError("has an entry with no port (http://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("has an entry with a path or query; a proxy is scheme://host:port")
    return SecretURL(entry)


class Settings(BaseModel):
    """Everything a steamwatch process can be told through its environment.

    Field ``x`` is read from ``STEAMWATCH_X``; :func:`load_settings` does the reading.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        arbitrary_types_allowed=True,
        allow_inf_nan=False,
    )

    # Stores: unset means "start embedded ones under `home`".
    database_url: SecretURL | None = None
    redis_url: SecretURL | None = None
    home: Path = Path(".steamwatch")

    # Steam access.
    steam_base_url: str = "https://steamcommunity.com"
    steam_family: SteamFamily = "legacy"
    proxies: tuple[SecretURL, ...] = (SecretURL(DIRECT),)
    http_timeout: float = Field(default=10.0, gt=0, le=300)
    steam_language: str = Field(default="english", pattern=r"^[a-z_]{2,20}$")
    steam_country: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    # Per proxy and endpoint: "priceoverview=20/60,listings=4/60,orderbook=10/3600".
    budgets: dict[Endpoint, Budget] = Field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    # Seconds a proxy rests after its 1st, 2nd, ... 429 on an endpoint: "300,600,1200,3600".
    cooldowns: tuple[float, ...] = DEFAULT_COOLDOWNS
    budget_slack: float = Field(default=0.5, ge=0, le=60)

    # Database pool, per process.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=6, ge=0, le=200)
    db_pool_timeout: float = Field(default=30.0, gt=0, le=600)

    # Scheduling.
    scheduler_tick: float = Field(default=1.0, gt=0, le=3600)
    scheduler_batch: int = Field(default=500, ge=1, le=100_000)
    # Claims one check message carries, checked at once by one fetcher thread: the bus's cost
    # (fetch, hand-over, acknowledgement) is paid once for them (`make bench SCENARIO=floor`).
    # At most shared.bus.MAX_CHECK_BATCH.
    scheduler_checks_per_message: int = Field(default=8, ge=1, le=64)
    # Backpressure: claim nothing more while this many checks wait in the queue.
    scheduler_high_water: int = Field(default=10_000, ge=1, le=10_000_000)
    lease_seconds: int = Field(default=120, ge=1, le=86_400)
    min_check_interval: int = Field(default=30, ge=1, le=86_400)
    watchdog_tick: float = Field(default=15.0, gt=0, le=3600)
    # The publisher sends the events a check's own process could not (killed after its commit,
    # Redis away): every tick, the outbox's rows older than a moment, a batch at a time.
    publisher_tick: float = Field(default=1.0, gt=0, le=3600)
    publisher_batch: int = Field(default=500, ge=1, le=100_000)
    # The watchdog sends an active task the scheduler has not claimed this long after it was due.
    watchdog_grace: float = Field(default=30.0, ge=0, le=86_400)
    # Most tasks the watchdog repairs per pass and kind (expired, overdue, recovery).
    watchdog_batch: int = Field(default=500, ge=1, le=100_000)
    # History kept: raw checks, hourly roll-ups, and announced listings no check has seen.
    history_raw_days: int = Field(default=14, ge=1, le=3650)
    history_rollup_days: int = Field(default=365, ge=1, le=36_500)
    seen_listings_days: float = Field(default=3.0, gt=0, le=365)
    # Dead-lettered checks re-sent per pass, and how often one message may be re-sent.
    dead_letter_batch: int = Field(default=100, ge=1, le=100_000)
    dead_letter_requeues: int = Field(default=3, ge=0, le=100)
    # After a failed check: retry in max(interval, floor) * 2^(errors-1) seconds, capped.
    backoff_floor: float = Field(default=10.0, gt=0, le=86_400)
    backoff_cap: float = Field(default=900.0, gt=0, le=86_400)
    # A task that stalls (5 failures in a row) is retried by the watchdog: attempt k comes
    # min(base * factor^(k-1), cap) seconds after the failure before it; after `attempts`
    # failed attempts the task is failed and its owner alerted (the seed: 60, x2, 600, 10).
    recovery_base: float = Field(default=60.0, gt=0, le=86_400)
    recovery_factor: float = Field(default=2.0, ge=1, le=100)
    recovery_cap: float = Field(default=600.0, gt=0, le=7 * 86_400)
    recovery_attempts: int = Field(default=10, ge=1, le=1000)

    # Worker processes (dramatiq). An async actor holds a worker thread while it awaits,
    # so a fetcher's in-flight checks equal processes x threads: size threads for I/O.
    fetcher_processes: int = Field(default=1, ge=1, le=64)
    fetcher_threads: int = Field(default=16, ge=1, le=1024)
    worker_shutdown_timeout: float = Field(default=20.0, gt=0, le=3600)
    # A worker process without proof of progress this long (frozen, its event loop blocked, or
    # taking nothing while messages wait) fails its service's /healthz.
    worker_stale_after: float = Field(default=45.0, ge=5, le=3600)

    # Notifications. Destination URLs are sealed with these Fernet keys (comma-separated,
    # newest first: the first seals, any opens); `steamwatch notify keygen` makes one.
    secret_key: SecretStr | None = None
    # Destinations on loopback, private or link-local addresses are refused unless allowed.
    notify_allow_private: bool = False
    notifier_tick: float = Field(default=1.0, gt=0, le=60)
    # The notifier's name in the stream's consumer group (default: the host's, a pod's name).
    notifier_consumer: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    # A send that fails is retried after base * 2^(attempt-1) seconds (capped, jittered);
    # after `max_attempts` failures it goes to the dead-letter list.
    notify_max_attempts: int = Field(default=8, ge=1, le=100)
    notify_retry_base: float = Field(default=2.0, gt=0, le=3600)
    notify_retry_cap: float = Field(default=300.0, gt=0, le=86_400)
    notify_timeout: float = Field(default=10.0, gt=0, le=300)
    notify_concurrency: int = Field(default=16, ge=1, le=512)
    # Per destination, by scheme: "json=10/1,tgram=20/60,discord=5/2,default=10/1".
    notify_rates: dict[str, tuple[int, float]] = Field(default_factory=dict)
    # A stream entry another notifier read and has not acknowledged this long is taken over.
    notify_claim_idle: float = Field(default=30.0, ge=1, le=86_400)
    # Sent deliveries are kept this many days (the dead letters until retried or removed).
    notify_keep_days: float = Field(default=7.0, gt=0, le=3650)

    # The HTTP API (`steamwatch run api`): where it listens (its /healthz, /readyz and /metrics
    # too), how many uvicorn worker processes, and each token's limits.
    api_host: str = Field(default="0.0.0.0", min_length=1, max_length=255)
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    # Requests a second per token (a sliding window over one second, shared through Redis).
    api_rate: int = Field(default=20, ge=1, le=100_000)
    api_max_body: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)  # bytes
    api_page_max: int = Field(default=500, ge=1, le=10_000)  # items per page
    # Health and metrics: every service serves /healthz, /readyz and /metrics here.
    metrics_host: str = Field(default="0.0.0.0", min_length=1, max_length=255)
    metrics_port: int = Field(default=9100, ge=0, le=65535)  # 0: any free port (logged)

    # Logging.
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "auto"

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: Any) -> SecretURL | None:
        return None if value is None else _database_url(str(value))

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: Any) -> SecretURL | None:
        return None if value is None else _redis_url(str(value))

    @field_validator("steam_base_url", mode="before")
    @classmethod
    def _check_steam_base_url(cls, value: Any) -> str:
        text = str(value).strip()
        parts = urlsplit(text)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        _port_of(text)
        return text.rstrip("/")

    @field_validator("proxies", mode="before")
    @classmethod
    def _check_proxies(cls, value: Any) -> tuple[SecretURL, ...]:
        if isinstance(value, tuple) and all(isinstance(v, SecretURL) for v in value):
            return value
        entries = [e for e in re.split(r"[\s,]+", str(value).strip()) if e]
        if not entries:
            raise ValueError("is empty; give 'direct' or a comma-separated list of proxy URLs")
        proxies = tuple(_proxy_url(e) for e in entries)
        if len(set(proxies)) != len(proxies):
            raise ValueError("lists the same proxy twice")
        return proxies

    @field_validator("budgets", mode="before")
    @classmethod
    def _check_budgets(cls, value: Any) -> dict[Endpoint, Budget]:
        if isinstance(value, dict):
            return value
        budgets = dict(DEFAULT_BUDGETS)
        for entry in (e for e in re.split(r"[\s,]+", str(value).strip()) if e):
            match = re.fullmatch(r"([a-z]+)=(\d+)/(\d+(?:\.\d+)?)", entry)
            if not match:
                raise ValueError("has an entry that is not endpoint=requests/seconds")
            endpoint, limit, window = match.group(1), int(match.group(2)), float(match.group(3))
            if endpoint not in ENDPOINTS:
                raise ValueError(f"names endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}")
            if limit < 1 or window <= 0:
                raise ValueError(f"gives {endpoint} a budget under 1 request or 0 seconds")
            budgets[endpoint] = Budget(limit=limit, window=window)
        return budgets

    @field_validator("cooldowns", mode="before")
    @classmethod
    def _check_cooldowns(cls, value: Any) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        try:
            steps = tuple(float(v) for v in re.split(r"[\s,]+", str(value).strip()) if v)
        except ValueError as e:
            raise ValueError("must be comma-separated seconds, e.g. 300,600,1200,3600") from e
        if not steps or any(not (0 < s < 7 * 86400) for s in steps):
            raise ValueError("must be one or more positive numbers of seconds, under a week")
        return steps

    @field_validator("secret_key", mode="before")
    @classmethod
    def _check_secret_key(cls, value: Any) -> SecretStr | None:
        if value is None or isinstance(value, SecretStr):
            return value
        keys = [k.strip() for k in str(value).split(",") if k.strip()]
        if not keys:
            raise ValueError("is empty; generate a key with `steamwatch notify keygen`")
        for position, key in enumerate(keys, start=1):
            try:
                raw = base64.urlsafe_b64decode(key.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64 "
                    "bytes); generate one with `steamwatch notify keygen`"
                )
        return SecretStr(",".join(keys))

    @field_validator("notify_rates", mode="before")
    @classmethod
    def _check_notify_rates(cls, value: Any) -> dict[str, tuple[int, float]]:
        if isinstance(value, dict):
            return value
        rates: dict[str, tuple[int, float]] = {}
        for entry in (e for e in re.split(r"[\s,]+", str(value).strip()) if e):
            match = re.fullmatch(r"([a-z0-9]+)=(\d+)/(\d+(?:\.\d+)?)", entry)
            if not match:
                raise ValueError(
                    "has an entry that is not scheme=messages/seconds (e.g. json=10/1)"
                )
            limit, seconds = int(match.group(2)), float(match.group(3))
            if limit < 1 or seconds <= 0:
                raise ValueError(f"gives {match.group(1)} a rate under 1 message or 0 seconds")
            rates[match.group(1)] = (limit, seconds)
        return rates

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_recovery(self) -> Settings:
        if self.notify_retry_cap < self.notify_retry_base:
            raise ValueError(
                f"{ENV_PREFIX}NOTIFY_RETRY_CAP: is shorter than {ENV_PREFIX}NOTIFY_RETRY_BASE "
                "(the cap must be at least the first retry delay)"
            )
        if self.recovery_cap < self.recovery_base:
            raise ValueError(
                f"{ENV_PREFIX}RECOVERY_CAP: is shorter than {ENV_PREFIX}RECOVERY_BASE "
                "(the cap must be at least the first recovery delay)"
            )
        return self

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def __repr_args__(self) -> Any:
        # Secret fields already mask themselves; this keeps the repr short and explicit.
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, tuple) and value and isinstance(value[0], SecretURL):
                value = tuple(str(v) for v in value)
            elif isinstance(value, SecretURL):
                value = str(value)
            yield name, value


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(
        key
        for key in environ
        if key.upper().startswith(ENV_PREFIX)
        and key.upper() not in known
        and not key.upper().startswith(_NOT_SETTINGS)
    )


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build the settings from ``environ`` (an entry point passes ``os.environ``) plus overrides.

    Raises :class:`ConfigError` naming each bad variable; the values themselves are never shown.
    """
    env = dict(environ)
    problems = [
        f"{key}: unknown setting (check the spelling; see `steamwatch --help` for the list)"
        for key in _unknown_variables(env)
    ]
    values = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.upper().startswith(ENV_PREFIX)
    }
    values = {k: v for k, v in values.items() if k in Settings.model_fields}
    values.update(overrides)
    try:
        settings = Settings.model_validate(values)
    except ValidationError as e:
        for error in e.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            if not error["loc"]:  # a check across fields names its variables itself
                problems.append(message)
                continue
            problems.append(f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {message}")
    if problems:
        raise ConfigError(problems)
    return settings


def store_urls(settings: Settings, *, service: str) -> tuple[str, str]:
    """The database and Redis URLs a lone service needs, revealed; a stop naming what is unset."""
    if settings.database_url is None or settings.redis_url is None:
        raise SystemExit(
            f"{service}: STEAMWATCH_DATABASE_URL and STEAMWATCH_REDIS_URL must be set "
            "(`steamwatch dev` sets them for its children)"
        )
    return settings.database_url.reveal(), settings.redis_url.reveal()
