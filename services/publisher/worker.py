"""The publisher's dramatiq entry point: ``dramatiq services.publisher.worker:setup``.

``setup`` runs in each worker process; importing this module starts nothing.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from prometheus_client import Counter

from services.publisher.publish import Publisher, publish_result
from shared.broker import RESULT_ACTOR, RESULTS_QUEUE
from shared.messages import BadMessage, ResultMessage
from shared.resources import setup_worker

SERVICE = "publisher"
QUEUES = (RESULTS_QUEUE,)

log = structlog.get_logger(__name__)
RESULTS = Counter("steamwatch_results", "Results judged by outcome", ["outcome"])


def setup() -> None:
    broker, resources, _settings = setup_worker(service=SERVICE, queues=QUEUES)

    def count(outcome: str) -> None:
        RESULTS.labels(outcome=outcome).inc()

    async def publish(*args: Any, **kwargs: Any) -> None:
        try:
            message = ResultMessage.parse(args, kwargs)
        except BadMessage as e:
            log.error("malformed result message dropped", problem=str(e))
            count("dropped_malformed")
            return
        with structlog.contextvars.bound_contextvars(task_id=message.task_id):
            pools = resources.pools
            await publish_result(Publisher(db=pools.db, redis=pools.redis, count=count), message)

    dramatiq.actor(
        actor_name=RESULT_ACTOR,
        queue_name=RESULTS_QUEUE,
        broker=broker,
        max_retries=5,
        min_backoff=1_000,
        max_backoff=30_000,
        time_limit=60_000,
    )(publish)
