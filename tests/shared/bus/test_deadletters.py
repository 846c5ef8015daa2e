"""Dead letters as dramatiq's own Redis broker makes them: nacked messages, read back and removed."""

from __future__ import annotations

import time

import dramatiq
import pytest
import redis
import redis.asyncio

from shared.bus import CHECKS_QUEUE, create_broker, deadletters


def dead_letter(broker: dramatiq.Broker, kwargs: dict[str, object], **options: object) -> str:
    """Enqueue a check and nack it the way a worker does when its retries run out."""
    sent = broker.enqueue(
        dramatiq.Message(
            queue_name=CHECKS_QUEUE,
            actor_name="check_task",
            args=(),
            kwargs=kwargs,
            options=dict(options),
        )
    )
    consumer = broker.consume(CHECKS_QUEUE, prefetch=1, timeout=1000)
    try:
        for proxy in consumer:
            if proxy is not None and proxy.message_id == sent.message_id:
                consumer.nack(proxy)
                return str(sent.options["redis_message_id"])
    finally:
        consumer.close()
    raise AssertionError("the message never came back")


async def test_nacked_messages_are_read_oldest_first_and_removed(redis_url: str) -> None:
    broker = create_broker(redis_url=redis_url)
    broker.declare_queue(CHECKS_QUEUE)
    first = dead_letter(broker, {"task_id": 1, "lease_token": "x"}, retries=5)
    second = dead_letter(broker, {"task_id": 2, "lease_token": "y"})
    raw = redis.Redis.from_url(redis_url)
    # Two nacks may share a millisecond (then Redis orders them by id): a minute apart instead.
    now_ms = time.time() * 1000
    raw.zadd("steamwatch:checks.XQ", {first: now_ms - 60_000, second: now_ms}, xx=True)
    raw.zadd("steamwatch:checks.XQ", {"garbage": now_ms + 10_000})
    raw.hset("steamwatch:checks.XQ.msgs", "garbage", b"\xff\x00 not json")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await deadletters.depth(client, CHECKS_QUEUE) == 3
        letters = await deadletters.oldest(client, CHECKS_QUEUE, limit=10)
        assert [letter.entry_id for letter in letters] == [first, second, "garbage"]
        assert letters[0].message is not None
        assert letters[0].message.kwargs == {"task_id": 1, "lease_token": "x"}
        assert letters[0].message.options["retries"] == 5
        assert letters[1].dead_at - letters[0].dead_at == pytest.approx(60, abs=0.01)
        assert letters[2].message is None and "undecodable" in (letters[2].problem or "")
        assert [x.entry_id for x in await deadletters.oldest(client, CHECKS_QUEUE, limit=1)] == [
            first
        ]
        await deadletters.remove(client, letters[:2])
        assert await deadletters.depth(client, CHECKS_QUEUE) == 1
        assert raw.hkeys("steamwatch:checks.XQ.msgs") == [b"garbage"]
        await deadletters.remove(client, letters)  # removing twice is harmless
        assert await deadletters.depth(client, CHECKS_QUEUE) == 0
    finally:
        await client.aclose()
        raw.close()
