"""The publisher's dramatiq worker: its broker, middleware and the result actor.

Built by :func:`services.publisher.main.setup` in each worker process; importing it starts
nothing.
"""

from __future__ import annotations

from services.publisher import metrics
from services.publisher.publish import Publisher, publish_result
from shared.bus import (
    RESULT_ACTOR,
    RESULTS_QUEUE,
    ResultMessage,
    WorkerResources,
    declare_actor,
    guarded,
    setup_worker,
    worker_spec,
)
from shared.config import Settings
from shared.runtime import pool_spec

SERVICE = "publisher"


def build(
    settings: Settings, *, database_url: str, redis_url: str, progress_dir: str | None = None
) -> None:
    """Set up this worker process: pools and the result actor."""
    resources = WorkerResources(
        pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    )
    broker = setup_worker(
        worker_spec(
            settings,
            service=SERVICE,
            redis_url=redis_url,
            queues=(RESULTS_QUEUE,),
            progress_dir=progress_dir,
        ),
        resources=resources,
    )
    metrics.seed()

    async def publish(message: ResultMessage) -> None:
        pools = resources.pools
        await publish_result(Publisher(db=pools.db, redis=pools.redis), message)

    declare_actor(
        broker,
        guarded(
            ResultMessage, publish, malformed=metrics.RESULTS.labels(outcome="dropped_malformed")
        ),
        name=RESULT_ACTOR,
        queue=RESULTS_QUEUE,
        time_limit_ms=60_000,
    )
