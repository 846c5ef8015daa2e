"""Dramatiq's dead-letter queues in Redis: how deep they are, what is in them, taking entries out.

A message whose retries ran out is moved by dramatiq's Redis broker (``dispatch.lua``) to
``<namespace>:<queue>.XQ``, a sorted set of message ids scored by when they died, with the
encoded messages in ``<namespace>:<queue>.XQ.msgs``. dramatiq itself only drops entries older
than its ``dead_message_ttl`` (7 days); the watchdog and ``steamwatch queues dlq`` use them here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.common import current_millis
from redis.asyncio import Redis

from shared.bus._keys import dead_letter_key, dead_letter_messages_key


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message; ``message`` is None (and ``problem`` says why) if unreadable."""

    queue: str
    entry_id: str
    dead_at: float  # unix seconds
    raw: bytes
    message: dramatiq.Message[Any] | None
    problem: str | None = None


def _decode(raw: bytes) -> tuple[dramatiq.Message[Any] | None, str | None]:
    try:
        message = dramatiq.Message.decode(raw)
    except Exception as e:  # DecodeError, or fields that do not make a Message
        return None, f"undecodable ({type(e).__name__})"
    if not isinstance(message.kwargs, dict) or not isinstance(message.args, list | tuple):
        return None, "undecodable (args or kwargs of the wrong type)"
    return message, None


async def depth(redis: Redis, queue: str) -> int:
    """How many messages of ``queue`` are dead-lettered now."""
    return int(await redis.zcard(dead_letter_key(queue)))


async def oldest(redis: Redis, queue: str, *, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` (at least 1) of ``queue``'s dead letters, the longest dead first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    key = dead_letter_key(queue)
    entries: list[Any] = await redis.zrange(key, 0, limit - 1, withscores=True)
    if not entries:
        return []
    bodies: list[Any] = await redis.hmget(
        dead_letter_messages_key(queue), [entry for entry, _ in entries]
    )
    letters = []
    for (entry, score), body in zip(entries, bodies, strict=True):
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        raw = body.encode() if isinstance(body, str) else body
        problem: str | None
        if raw is None:
            message, problem = None, "no message body (removed by another reader)"
            raw = b""
        else:
            message, problem = _decode(raw)
        letters.append(DeadLetter(queue, entry_id, float(score) / 1000, raw, message, problem))
    return letters


async def remove(redis: Redis, letters: Sequence[DeadLetter]) -> None:
    """Take these entries out of their dead-letter queues (a no-op for ones already gone)."""
    if not letters:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for letter in letters:
            key = dead_letter_key(letter.queue)
            pipe.zrem(key, letter.entry_id)
            pipe.hdel(dead_letter_messages_key(letter.queue), letter.entry_id)
        await pipe.execute()


#: Options a dead message carries that must not follow it back into its queue.
_SPENT_OPTIONS = ("redis_message_id", "retries", "traceback", "eta")


async def requeue(
    redis: Redis, broker: dramatiq.Broker, letters: Sequence[DeadLetter]
) -> list[DeadLetter]:
    """Send readable letters back to their queue with fresh retries; returns those requeued.

    The copy is stamped now, so a queue's "oldest ready" age measures its wait from here, not
    from the first send days ago. Sent before it is removed: at least once, never lost. A
    requeued check whose lease moved on meanwhile is dropped by the fetcher as stale.
    """
    requeued = []
    for letter in letters:
        if letter.message is None:
            continue
        options = {k: v for k, v in letter.message.options.items() if k not in _SPENT_OPTIONS}
        fresh = letter.message.copy(queue_name=letter.queue)
        fresh = dataclasses.replace(fresh, options=options, message_timestamp=current_millis())
        await asyncio.to_thread(broker.enqueue, fresh)
        await remove(redis, [letter])
        requeued.append(letter)
    return requeued


async def purge(redis: Redis, queue: str) -> int:
    """Drop every dead letter of ``queue``; returns how many there were."""
    key = dead_letter_key(queue)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zcard(key)
        pipe.delete(key, dead_letter_messages_key(queue))
        count, _ = await pipe.execute()
    return int(count)
