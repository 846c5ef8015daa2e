"""The per-process pools (database engine, async Redis) and who owns their lifetime.

Dramatiq workers get them from :class:`WorkerResources`, a middleware that builds them on the
worker's own event loop and disposes of them at shutdown (a warm-up with ``asyncio.run()``
would bind them to a loop that is gone by the first message). It builds in
``before_worker_boot``, not ``after_worker_boot``: dramatiq starts the worker threads between
the two, so a message could arrive before an ``after`` hook ran, and ``after_*`` hooks run in
reverse middleware order. ``before_*`` hooks run in order, after ``AsyncIO`` made the loop;
``after_worker_shutdown`` runs in reverse, so whatever was built on the pools closes first.
Asyncio services (scheduler, watchdog) use :func:`open_resources`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import redis.asyncio
import structlog
from dramatiq import Broker, Middleware, Worker
from dramatiq.asyncio import get_event_loop_thread

from shared.config import Settings
from shared.db import Database
from shared.heartbeat import Heart, HeartbeatThread
from shared.redis_clients import async_client, sync_client

log = structlog.get_logger(__name__)


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


class WorkerResources(Middleware):
    """Builds a worker process's pools on its event loop thread and closes them at shutdown.

    Add it after ``AsyncIO``. Actors reach the pools through :attr:`pools`.
    """

    def __init__(self, spec: PoolSpec) -> None:
        self.spec = spec
        self._pools: Pools | None = None

    @property
    def pools(self) -> Pools:
        if self._pools is None:
            raise RuntimeError("worker pools are used before before_worker_boot built them")
        return self._pools

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._pools = get_event_loop_thread().run_coroutine(self.spec.open())  # type: ignore[union-attr]
        log.info("worker pools ready", pool_limit=self._pools.db.pool_limit)

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._pools is None:
            return
        pools, self._pools = self._pools, None
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(close_pools(pools))


class WorkerHeartbeat(Middleware):
    """Marks a dramatiq worker process ready once it has booted, and gone when it stops."""

    def __init__(self, *, service: str, redis_url: str) -> None:
        self.service = service
        self.redis_url = redis_url
        self._thread: HeartbeatThread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        heart = Heart(service=self.service)
        heart.state = "ready"
        self._thread = HeartbeatThread(heart, sync_client(self.redis_url))
        self._thread.start()
        log.info("service ready", worker_threads=worker.worker_threads)

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._thread is not None:
            self._thread.heart.state = "stopping"

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        log.info("service stopped")


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


def setup_worker(
    *, service: str, queues: tuple[str, ...]
) -> tuple[Broker, WorkerResources, Settings]:
    """Everything a dramatiq worker process of ``service`` needs, from its environment.

    Called from the ``setup`` function the dramatiq CLI imports; sets the global broker. The
    setup adds its own middleware, then :class:`shared.handback.HandBack` last of all.
    """
    import dramatiq

    from shared.broker import create_broker
    from shared.config import load_settings
    from shared.logs import configure_logging

    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=service)
    if settings.database_url is None or settings.redis_url is None:
        raise SystemExit(
            f"{service}: STEAMWATCH_DATABASE_URL and STEAMWATCH_REDIS_URL must be set "
            "(`steamwatch dev` sets them for its children)"
        )
    database_url, redis_url = settings.database_url.reveal(), settings.redis_url.reveal()
    from dramatiq.middleware import CurrentMessage

    from shared.message_metrics import MessageMetrics

    resources = WorkerResources(
        pool_spec(settings, service=service, database_url=database_url, redis_url=redis_url)
    )
    broker = create_broker(
        redis_url=redis_url,
        middleware=[
            CurrentMessage(),  # the message id on every log line of the actor
            MessageMetrics(),
            resources,
            WorkerHeartbeat(service=service, redis_url=redis_url),
        ],
    )
    for queue in queues:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    return broker, resources, settings
