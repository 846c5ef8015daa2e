"""The fetcher's dramatiq worker: its broker, middleware and the check actor.

Built by :func:`services.fetcher.main.setup` in each worker process; importing it starts nothing.
"""

from __future__ import annotations

from services.fetcher import metrics
from services.fetcher.check import Fetcher, check_message
from services.fetcher.steam import SteamResources
from shared.bus import (
    CHECK_ACTOR,
    CHECKS_QUEUE,
    CheckMessage,
    WorkerResources,
    declare_actor,
    guarded,
    setup_worker,
    worker_spec,
)
from shared.config import Settings
from shared.runtime import pool_spec
from shared.tasks import backoff_of

SERVICE = "fetcher"


def build(
    settings: Settings, *, database_url: str, redis_url: str, progress_dir: str | None = None
) -> None:
    """Set up this worker process: pools, the Steam client and the check actor."""
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    # Every thread may hold a connection at once (a check's load, then its write): overflow
    # connections would be opened and closed all the time, so as many as the threads can use
    # are kept instead, within the same bound (pool size + overflow).
    limit = spec.pool_size + spec.max_overflow
    kept = max(spec.pool_size, min(settings.fetcher_threads, limit))
    spec = spec.with_pool(size=kept, overflow=limit - kept)
    resources = WorkerResources(spec)
    steam = SteamResources(settings=settings, resources=resources)
    broker = setup_worker(
        worker_spec(
            settings,
            service=SERVICE,
            redis_url=redis_url,
            queues=(CHECKS_QUEUE,),
            progress_dir=progress_dir,
        ),
        resources=resources,
        middleware=[steam],
    )
    backoff = backoff_of(settings)
    metrics.seed()

    async def check(message: CheckMessage) -> None:
        fetcher = Fetcher(
            db=resources.pools.db,
            redis=resources.pools.redis,
            steam=steam.client,
            backoff=backoff,
            stopping=lambda: steam.stopping,
        )
        await check_message(fetcher, message)

    declare_actor(
        broker,
        guarded(CheckMessage, check, malformed=metrics.CHECKS.labels(outcome="dropped_malformed")),
        name=CHECK_ACTOR,
        queue=CHECKS_QUEUE,
        time_limit_ms=int((settings.http_timeout * 3 + 30) * 1000),
    )
