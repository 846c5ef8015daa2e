"""How full dramatiq's queues are, read from its Redis layout in one atomic round trip.

For a queue ``q`` dramatiq keeps (``dispatch.lua``): the list ``<ns>:q`` of ready message ids,
the hash ``<ns>:q.msgs`` of every message not yet acknowledged (ready or in a worker's hands),
the same pair for ``q.DQ`` (delayed: retries and ``send_with_options(delay=…)``, held by a
worker until their time), and the dead letters ``<ns>:q.XQ``. So: ready = LLEN q, in progress
= HLEN q.msgs − LLEN q, delayed = HLEN q.DQ.msgs, dead = ZCARD q.XQ.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import dramatiq
from redis.asyncio import Redis

from shared.bus._broker import CHECKS_QUEUE, RESULTS_QUEUE
from shared.bus._keys import NAMESPACE, dead_letter_key, delayed_name, messages_key, queue_key

QUEUES: tuple[str, ...] = (CHECKS_QUEUE, RESULTS_QUEUE)
STATES: tuple[str, ...] = ("ready", "delayed", "in_progress", "dead")


@dataclass(frozen=True)
class QueueStats:
    queue: str
    ready: int
    delayed: int
    in_progress: int
    dead: int
    oldest_ready_age: float | None  # seconds since the message next in line was sent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def queue_stats(
    redis: Redis, queue: str, *, namespace: str = NAMESPACE, now: float | None = None
) -> QueueStats:
    """The counts of ``queue`` as of one instant (read in a MULTI block)."""
    ready_key = queue_key(queue, namespace=namespace)
    stored_key = messages_key(queue, namespace=namespace)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.llen(ready_key)
        pipe.hlen(stored_key)
        pipe.hlen(messages_key(delayed_name(queue), namespace=namespace))
        pipe.zcard(dead_letter_key(queue, namespace=namespace))
        pipe.lindex(ready_key, 0)
        ready, unacked, delayed, dead, head = await pipe.execute()
    age = None
    if head is not None:
        raw = await redis.hget(stored_key, head)
        age = _age(raw, now if now is not None else time.time())
    return QueueStats(
        queue=queue,
        ready=int(ready),
        delayed=int(delayed),
        # A message moves from the list to a worker between the two reads only outside MULTI.
        in_progress=max(int(unacked) - int(ready), 0),
        dead=int(dead),
        oldest_ready_age=age,
    )


def _age(raw: bytes | str | None, now: float) -> float | None:
    if raw is None:
        return None  # taken by a worker between the two reads
    try:
        sent_ms = dramatiq.Message.decode(raw.encode() if isinstance(raw, str) else raw)
    except Exception:
        return None  # not dramatiq's: nothing to say about its age
    return max(now - sent_ms.message_timestamp / 1000, 0.0)


async def all_queue_stats(redis: Redis, *, namespace: str = NAMESPACE) -> list[QueueStats]:
    return [await queue_stats(redis, queue, namespace=namespace) for queue in QUEUES]
