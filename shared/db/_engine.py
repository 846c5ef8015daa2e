"""The database toolkit: an engine factory, a session maker and ``session_scope``.

One engine (and so one pool) per process and event loop, made in a startup hook; one
``AsyncSession`` per unit of work (a message, a tick, a pass), opened with
``async with db.session_scope() as s:``. A session is never shared between coroutines
and never kept on an object: that sharing is the incident this project was born from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import (
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
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # A connection the server dropped (restart, failover) is noticed before use, not mid-query.
        pool_pre_ping=True,
        pool_recycle=1800,
        echo=echo,
        # UTC sessions: times PostgreSQL writes out itself (the API's JSON pages, day buckets)
        # read the same wherever the server's own zone is set.
        connect_args={"server_settings": {"application_name": application_name, "timezone": "UTC"}},
    )


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

    async def dispose(self) -> None:
        await self.engine.dispose()
