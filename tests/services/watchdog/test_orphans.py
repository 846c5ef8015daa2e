"""Results held by a dead worker go back on their queue, against a real Redis.

The layout is dramatiq's (``dramatiq/brokers/redis/dispatch.lua``): ``<ns>:<queue>`` a list of
ids, ``<ns>:<queue>.msgs`` a hash of id -> data, ``<ns>:__acks__.<worker>.<queue>`` the ids a
worker fetched and has not acknowledged, ``<ns>:__heartbeats__`` workers scored by their last
command, in milliseconds. The last test checks the same against a real dramatiq ``Worker``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import dramatiq
import pytest
import redis.asyncio

from services.watchdog.orphans import Requeued, requeue_orphans
from shared.bus import NAMESPACE, RESULTS_QUEUE, create_broker

DQ = f"{RESULTS_QUEUE}.DQ"
NOW = 1_700_000_000.0  # the pass's clock, in seconds; heartbeats are relative to it
SILENT_FOR = 30.0


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    r = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield r
    finally:
        await r.aclose()


def acks(worker: str, queue: str = RESULTS_QUEUE) -> str:
    return f"{NAMESPACE}:__acks__.{worker}.{queue}"


async def heartbeat(r: redis.asyncio.Redis, worker: str, seconds_ago: float) -> None:
    await r.zadd(f"{NAMESPACE}:__heartbeats__", {worker: int((NOW - seconds_ago) * 1000)})


async def hold(
    r: redis.asyncio.Redis, worker: str, ids: list[str], queue: str = RESULTS_QUEUE
) -> None:
    """``worker`` fetched ``ids`` from ``queue`` (their data still stored) and never acked them."""
    await r.hset(f"{NAMESPACE}:{queue}.msgs", mapping={i: f"data of {i}" for i in ids})
    await r.sadd(acks(worker, queue), *ids)


async def ready(r: redis.asyncio.Redis, queue: str = RESULTS_QUEUE) -> list[str]:
    return await r.lrange(f"{NAMESPACE}:{queue}", 0, -1)


async def test_a_silent_workers_results_and_delayed_results_go_back_on_their_queues(
    client: redis.asyncio.Redis,
) -> None:
    await client.rpush(f"{NAMESPACE}:{RESULTS_QUEUE}", "waiting")  # queued, held by nobody
    await heartbeat(client, "dead", seconds_ago=SILENT_FOR + 1)
    await hold(client, "dead", ["r1", "r2", "r3"])
    await hold(client, "dead", ["d1"], queue=DQ)
    await hold(client, "dead", ["c1"], queue="checks")  # not a queue this sweep owns

    requeued = await requeue_orphans(client, silent_for=SILENT_FOR, now=NOW)

    assert requeued == [Requeued("dead", RESULTS_QUEUE, 3), Requeued("dead", DQ, 1)]
    results = await ready(client)
    assert len(results) == 4 and set(results) == {"waiting", "r1", "r2", "r3"}
    assert await ready(client, DQ) == ["d1"]
    assert not await client.exists(acks("dead"), acks("dead", DQ))
    # The data stays for the worker that fetches them next; checks are left to their leases.
    assert await client.hlen(f"{NAMESPACE}:{RESULTS_QUEUE}.msgs") == 3
    assert await client.smembers(acks("dead", "checks")) == {"c1"}
    assert await ready(client, "checks") == []


async def test_a_live_worker_keeps_what_it_holds(client: redis.asyncio.Redis) -> None:
    await heartbeat(client, "live", seconds_ago=SILENT_FOR - 1)
    await hold(client, "live", ["l1", "l2"])
    await hold(client, "live", ["l3"], queue=DQ)
    await heartbeat(client, "dead", seconds_ago=SILENT_FOR + 1)  # so the pass does run
    await hold(client, "dead", ["x1"])

    requeued = await requeue_orphans(client, silent_for=SILENT_FOR, now=NOW)

    assert requeued == [Requeued("dead", RESULTS_QUEUE, 1)]
    assert await ready(client) == ["x1"]
    assert await ready(client, DQ) == []
    assert await client.smembers(acks("live")) == {"l1", "l2"}
    assert await client.smembers(acks("live", DQ)) == {"l3"}


async def test_an_id_whose_message_is_gone_is_not_pushed_back_but_its_ack_set_goes(
    client: redis.asyncio.Redis,
) -> None:
    await heartbeat(client, "dead", seconds_ago=SILENT_FOR + 1)
    await hold(client, "dead", ["kept"])
    await client.sadd(acks("dead"), "acked-elsewhere")  # its data already deleted (acked)

    requeued = await requeue_orphans(client, silent_for=SILENT_FOR, now=NOW)

    assert requeued == [Requeued("dead", RESULTS_QUEUE, 1)]
    assert await ready(client) == ["kept"]
    assert not await client.exists(acks("dead"))


async def test_limit_bounds_the_silent_workers_looked_at_most_recently_silent_first(
    client: redis.asyncio.Redis,
) -> None:
    await heartbeat(client, "live", seconds_ago=1)  # more recent than all, not counted
    await hold(client, "live", ["l1"])
    for worker, ago in (("oldest", 300), ("recent", 100), ("older", 200)):
        await heartbeat(client, worker, seconds_ago=ago)
        await hold(client, worker, [f"{worker}-1"])

    requeued = await requeue_orphans(client, silent_for=SILENT_FOR, now=NOW, limit=2)

    assert requeued == [Requeued("recent", RESULTS_QUEUE, 1), Requeued("older", RESULTS_QUEUE, 1)]
    assert set(await ready(client)) == {"recent-1", "older-1"}
    assert await client.smembers(acks("oldest")) == {"oldest-1"}
    assert await client.smembers(acks("live")) == {"l1"}


async def test_a_real_worker_processes_every_requeued_message_exactly_once(
    redis_url: str, client: redis.asyncio.Redis
) -> None:
    broker = create_broker(redis_url=redis_url)
    seen: list[int] = []
    lock = threading.Lock()

    def publish_result_test(n: int) -> None:
        with lock:
            seen.append(n)

    actor = dramatiq.actor(
        publish_result_test,
        actor_name="publish_result_test",
        queue_name=RESULTS_QUEUE,
        broker=broker,
        max_retries=0,
    )
    for n in range(1, 7):
        actor.send(n)
    actor.send_with_options(args=(7,), delay=1)  # a retry waiting in results.DQ
    # A worker fetched 1-4 and the delayed 7, then died: its ids sit in its ack sets, its
    # heartbeat stops. Silent for 10 s only, so dramatiq's own maintenance (after its 60 s
    # heartbeat timeout) cannot be what hands them back: only requeue_orphans can.
    queue, delayed = f"{NAMESPACE}:{RESULTS_QUEUE}", f"{NAMESPACE}:{DQ}"
    held = [await client.lpop(queue) for _ in range(4)]
    await client.sadd(acks("dead"), *held)
    await client.sadd(acks("dead", DQ), await client.lpop(delayed))
    await client.zadd(f"{NAMESPACE}:__heartbeats__", {"dead": int((time.time() - 10) * 1000)})

    requeued = await requeue_orphans(client, silent_for=5)
    assert requeued == [Requeued("dead", RESULTS_QUEUE, 4), Requeued("dead", DQ, 1)]

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        # Done when nothing is stored any more: every message acked, none left to run again.
        deadline = time.monotonic() + 10
        while await client.hlen(f"{queue}.msgs") or await client.hlen(f"{delayed}.msgs"):
            assert time.monotonic() < deadline, f"not all processed: {sorted(seen)}"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        broker.close()
    assert sorted(seen) == [1, 2, 3, 4, 5, 6, 7]
    assert not await client.keys(f"{NAMESPACE}:__acks__.dead.*")
