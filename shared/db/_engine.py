"""The database toolkit: an engine factory, a session maker and ``session_scope``.

One engine (and so one pool) per process and event loop, made in a startup hook; one
``AsyncSession`` per unit of work (a message, a tick, a pass), opened with
``async with db.session_scope() as s:``. A session is never shared between coroutines
and never kept on an object: that sharing is the incident this project was born from.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(
    *,
    url: str,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float = 30.0,
    application_name: str = "steamwatch",
    echo: bool = False,
) -> AsyncEngine:
    """An asyncpg engine whose pool never holds more than pool_size + max_overflow connections."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # Not SQLAlchemy's pre-ping: it costs three round trips (BEGIN; ; ROLLBACK) on every
        # checkout, more than a check's own statements. See _ping_when_idle.
        pool_pre_ping=False,
        pool_recycle=1800,
        echo=echo,
        # UTC sessions: times PostgreSQL writes out itself (the API's JSON pages, day buckets)
        # read the same wherever the server's own zone is set.
        connect_args={"server_settings": {"application_name": application_name, "timezone": "UTC"}},
    )
    _ping_when_idle(engine.sync_engine, IDLE_PING)
    return engine


#: Seconds a pooled connection may rest before it is pinged on its next checkout.
IDLE_PING = 5.0


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Ping a connection before use only if it rested ``after`` seconds or more.

    A busy pool's connections are never pinged. A connection the server dropped while it rested
    (a restart, a failover, an idle timeout) is found out before use and replaced; one dropped
    while busy fails its next statement, which invalidates it and every connection opened
    before it (SQLAlchemy's pool does that on a disconnect error), so a PostgreSQL restart
    costs a process one failed statement, then fresh connections.
    """

    @event.listens_for(engine.pool, "checkin")
    def rested(dbapi_connection: Any, record: Any) -> None:
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("rested_at")
        if since is None or time.monotonic() - since < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as e:  # the pool retries the checkout with a fresh connection
            raise DisconnectionError(f"connection dropped while it rested: {e}") from e


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: values read in a unit of work stay readable after its commit,
    # without a lazy load on a closed session.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error, always close."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@asynccontextmanager
async def _autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True, slots=True)
class Database:
    """A process's engine and session maker, created together and disposed of together."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    pool_limit: int
    """The most connections this process's pool may hold at once."""

    @classmethod
    def create(
        cls,
        *,
        url: str,
        pool_size: int,
        max_overflow: int,
        pool_timeout: float = 30.0,
        application_name: str = "steamwatch",
    ) -> Database:
        engine = create_engine(
            url=url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            application_name=application_name,
        )
        return cls(
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            pool_limit=pool_size + max_overflow,
        )

    def session_scope(self) -> AbstractAsyncContextManager[AsyncSession]:
        return session_scope(self.sessionmaker)

    def autocommit(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection whose every statement is its own transaction: no BEGIN and COMMIT
        round trips around a unit of work that is one statement (a read, or one conditional
        write whose CTEs make it whole)."""
        return _autocommit(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
