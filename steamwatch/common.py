"""What every ``steamwatch`` command shares: its settings, its errors, and where the stores are.

A command reads the settings once (a bad one exits 2 naming the variable). It finds PostgreSQL
and Redis from ``STEAMWATCH_DATABASE_URL`` / ``STEAMWATCH_REDIS_URL``, else from a running
``steamwatch dev`` (``<home>/stores.json``), else, for the database only, by starting the
embedded PostgreSQL for the length of the command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from shared.config import ConfigError, Settings, load_settings
from steamwatch.discovery import read_stores

#: Where `steamwatch dev` keeps the key sealing destination URLs when none is configured.
KEY_FILE = "secret.key"
#: Where `steamwatch dev` keeps an API token for the demo owner (shown once, so kept).
API_TOKEN_FILE = "api-token"


def settings_or_exit() -> Settings:
    try:
        return load_settings(os.environ)
    except ConfigError as e:
        click.echo(f"steamwatch: {e}", err=True)
        raise SystemExit(2) from None


def fail(message: str, *, code: int = 2) -> NoReturn:
    """Print ``steamwatch: <message>`` on stderr and exit non-zero."""
    click.echo(f"steamwatch: {message}", err=True)
    raise SystemExit(code)


def find_redis_url(settings: Settings) -> str | None:
    """The configured Redis, or the one a running ``steamwatch dev`` started; None if neither."""
    if settings.redis_url is not None:
        return settings.redis_url.reveal()
    stores = read_stores(settings.home)
    return None if stores is None else str(stores["redis_url"])


def redis_url_of(settings: Settings) -> str:
    """:func:`find_redis_url`, or exit saying where it looked."""
    url = find_redis_url(settings)
    if url is None:
        fail(
            "set STEAMWATCH_REDIS_URL, or run this beside `steamwatch dev` (`make run`): no "
            f"running stores found in {settings.home.resolve()}; from another folder, set "
            "STEAMWATCH_HOME to the .steamwatch folder `make run` uses, or "
            '`eval "$(steamwatch env)"` there'
        )
    return url


@contextmanager
def database_url_of(settings: Settings) -> Iterator[str]:
    """The configured database, a running ``dev``'s, or the embedded one started for now."""
    if settings.database_url is not None:
        yield settings.database_url.reveal()
        return
    stores = read_stores(settings.home)
    if stores is not None and "database_url" in stores:
        yield str(stores["database_url"])
        return
    from steamwatch.embedded import stores as embedded

    click.echo(f"starting the embedded PostgreSQL in {settings.home} ...", err=True)
    with embedded(home=settings.home, database_url=None, redis_url="unused") as urls:
        yield urls.database_url


def echo_json(data: Any) -> None:
    """One JSON document on stdout, for scripts (``--json``)."""
    click.echo(json.dumps(data, ensure_ascii=False, default=str, indent=2))
