"""The dramatiq broker: Redis-backed, with the AsyncIO middleware for async actors.

Queue and actor names live here because services never import each other: the scheduler
sends to the fetcher's actor by name, the fetcher to the publisher's.
"""

from __future__ import annotations

from collections.abc import Iterable

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, Middleware

NAMESPACE = "steamwatch"
CHECKS_QUEUE = "checks"
RESULTS_QUEUE = "results"
CHECK_ACTOR = "check_task"
RESULT_ACTOR = "publish_result"


def create_broker(
    *,
    redis_url: str,
    namespace: str = NAMESPACE,
    middleware: Iterable[Middleware] = (),
    heartbeat_timeout_ms: int = 60_000,
) -> RedisBroker:
    """A Redis broker with AsyncIO first, then the given middleware in order.

    Middleware that needs the worker's event loop (database, Redis, HTTP pools) must come
    after AsyncIO, so that its ``after_worker_boot`` runs once that loop exists.
    """
    broker = RedisBroker(
        url=redis_url,
        namespace=namespace,
        # Messages of a worker that stopped heart-beating go back to the queue after this.
        heartbeat_timeout=heartbeat_timeout_ms,
    )
    broker.add_middleware(AsyncIO())
    for m in middleware:
        broker.add_middleware(m)
    return broker


def queue_key(queue: str, *, namespace: str = NAMESPACE) -> str:
    """The Redis list holding ``queue``'s ready messages (dramatiq's own layout)."""
    return f"{namespace}:{queue}"
