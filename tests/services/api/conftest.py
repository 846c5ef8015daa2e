"""The API as a real process (`steamwatch run api`) over real PostgreSQL and Redis.

One API process per module (it starts in about a second); each test gets emptied tables, a
flushed Redis and fresh tokens. Requests go over HTTP with ``requests``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from shared.access import create_token
from shared.db import Database
from shared.notify import generate_key
from testbed.system import System

SECRET_KEY = generate_key()


@dataclass
class Api:
    url: str
    system: System

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def api_server(
    request: pytest.FixtureRequest,
    database_url: str,
    server_urls: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """A module's API; its ``API_ENV`` (a dict) adds or overrides settings."""
    system = System(
        database_url=database_url,
        redis_url=server_urls[1],
        folder=Path(tmp_path_factory.mktemp("api")),
    )
    try:
        env = {
            "STEAMWATCH_SECRET_KEY": SECRET_KEY,
            "STEAMWATCH_API_RATE": "1000",
            "STEAMWATCH_API_PAGE_MAX": "500",
            **getattr(request.module, "API_ENV", {}),
        }
        _, url = system.start_api(**env)
        yield Api(url, system)
    finally:
        system.stop_all()


@pytest.fixture
def api(api_server: Api, db: Database, redis_url: str) -> Api:
    """The module's API over emptied tables and a flushed Redis."""
    return api_server


async def make_token(db: Database, owner: str, *, admin: bool = False) -> str:
    async with db.session_scope() as session:
        _, token = await create_token(session, owner=owner, admin=admin)
    return token


async def rows(db: Database, table: str) -> list[dict[str, Any]]:
    """Every row and column of ``table`` in id order: what "nothing changed" compares."""
    async with db.session_scope() as session:
        result = await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608
        return [dict(r) for r in result.mappings()]
