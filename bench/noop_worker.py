"""A no-op actor on the fetcher's broker and middleware: the bus's own cost, for the benchmarks.

Run like the fetcher (``python -m dramatiq bench.noop_worker:setup --processes P --threads T``):
the same broker, the same middleware in the same order (``setup_worker`` and ``HandBack``), the
same ``guarded`` actor body validating a :class:`shared.messages.CheckMessage` and awaiting its
handler on the worker's event loop. Only the handler does nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq

from shared.handback import HandBack
from shared.messages import CheckMessage, guarded
from shared.resources import setup_worker

SERVICE = "bench-noop"
QUEUE = "bench_noop"
ACTOR = "bench_noop"


def setup() -> None:
    broker, _resources, _settings = setup_worker(service=SERVICE, queues=(QUEUE,))
    broker.add_middleware(HandBack())

    async def nothing(message: CheckMessage) -> None:
        return None

    dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=5,
                   min_backoff=1_000, max_backoff=30_000, time_limit=60_000,
                   )(guarded(CheckMessage, nothing, count=lambda _outcome: None))  # fmt: skip


def noop_message(task_id: int) -> dramatiq.Message[Any]:
    """A message shaped like a check (same payload), addressed to the no-op actor."""
    payload = CheckMessage(task_id=task_id, lease_token=uuid.uuid4())
    return dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(),
                            kwargs=payload.model_dump(mode="json"), options={})  # fmt: skip
