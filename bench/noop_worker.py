"""A no-op actor on the fetcher's broker and middleware: the bus's own cost, for the benchmarks.

Run like the fetcher (``python -m dramatiq bench.noop_worker:setup --processes P --threads T``):
the same broker, the same middleware in the same order (``setup_worker``), the
same ``guarded`` actor body validating a :class:`shared.bus.CheckMessage` and awaiting its
handler on the worker's event loop. Only the handler does nothing.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import dramatiq
from prometheus_client import Counter

from shared.bus import (
    CheckMessage,
    WorkerResources,
    WorkerSpec,
    declare_actor,
    guarded,
    setup_worker,
)
from shared.config import load_settings, store_urls
from shared.observability import configure_logging
from shared.runtime import pool_spec

SERVICE = "bench-noop"
QUEUE = "bench_noop"
ACTOR = "bench_noop"
DROPPED = Counter("bench_noop_malformed", "Malformed no-op messages")


def setup() -> None:
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    resources = WorkerResources(
        pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    )
    broker = setup_worker(
        WorkerSpec(service=SERVICE, redis_url=redis_url, queues=(QUEUE,)), resources=resources
    )

    async def nothing(message: CheckMessage) -> None:
        return None

    declare_actor(
        broker,
        guarded(CheckMessage, nothing, malformed=DROPPED),
        name=ACTOR,
        queue=QUEUE,
        time_limit_ms=60_000,
    )


def noop_message(task_id: int) -> dramatiq.Message[Any]:
    """A message shaped like a check (same payload), addressed to the no-op actor."""
    payload = CheckMessage(task_id=task_id, lease_token=uuid.uuid4())
    return dramatiq.Message(
        queue_name=QUEUE,
        actor_name=ACTOR,
        args=(),
        kwargs=payload.model_dump(mode="json"),
        options={},
    )
