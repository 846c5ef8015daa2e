"""A process's pools (database engine, async Redis): one each per process and event loop.

Asyncio services (scheduler, watchdog) open them with :func:`open_resources`; dramatiq workers
get them from ``shared.bus.WorkerResources``, which builds them on the worker's own loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import redis.asyncio

from shared.config import Settings
from shared.observability import CHECK_TIMEOUT, probe_all
from shared.runtime._redis import async_client

if TYPE_CHECKING:  # SQLAlchemy is imported when pools are opened: the health fork stays light
    from shared.db import Database


@dataclass(frozen=True)
class Pools:
    """What one process shares across its units of work: pools, never sessions."""

    db: Database
    redis: redis.asyncio.Redis


@dataclass(frozen=True)
class PoolSpec:
    """How to build :class:`Pools`, from the settings of the process's entry point."""

    database_url: str
    redis_url: str
    pool_size: int
    max_overflow: int
    pool_timeout: float
    application_name: str

    def with_pool(self, *, size: int, overflow: int) -> PoolSpec:
        """The same spec with other pool bounds (a helper process needs one connection)."""
        return replace(self, pool_size=size, max_overflow=overflow)

    async def open(self) -> Pools:
        from shared.db import Database

        db = Database.create(
            url=self.database_url,
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            pool_timeout=self.pool_timeout,
            application_name=self.application_name,
        )
        client = async_client(self.redis_url, health_check_interval=30)
        return Pools(db=db, redis=client)


async def close_pools(pools: Pools) -> None:
    await pools.db.dispose()
    await pools.redis.aclose()


@asynccontextmanager
async def open_resources(spec: PoolSpec) -> AsyncIterator[Pools]:
    """Pools for an asyncio service, made on the running loop and closed on the way out."""
    pools = await spec.open()
    try:
        yield pools
    finally:
        await close_pools(pools)


def pool_spec(settings: Settings, *, service: str, database_url: str, redis_url: str) -> PoolSpec:
    """The pool spec of ``service`` from a :class:`shared.config.Settings`."""
    return PoolSpec(
        database_url=database_url,
        redis_url=redis_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        application_name=f"steamwatch-{service}",
    )


async def check_stores(pools: Pools, *, within: float = CHECK_TIMEOUT) -> dict[str, str]:
    """Do the process's PostgreSQL and Redis answer within ``within`` seconds?"""

    async def database() -> None:
        async with pools.db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    return await probe_all({"database": database, "redis": pools.redis.ping}, within=within)
