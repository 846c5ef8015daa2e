"""Malformed messages pushed straight onto the dramatiq queues while checks flow.

Missing fields, wrong types, positional arguments, an unknown task id, an unknown actor, garbage
bytes and JSON that is no dramatiq message, on the checks queue (the only one a worker reads). Each is dropped with a log line
saying why, or dead-lettered and then dropped by the watchdog with a log line; none is left
anywhere in Redis (queue, message hash, a worker's acknowledgement set, dead letters); the
workers keep checking, none restarts, and every invariant holds.

The session's PostgreSQL and Redis serve here: this test restarts neither, and the worker
processes are its own.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import dramatiq
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker

from shared.bus import CHECK_ACTOR, CHECKS_QUEUE, NAMESPACE, create_broker
from shared.db import Database
from testbed.system import System
from tests.fixtures.flow import start_flow
from tests.fixtures.invariants import verdict
from tests.fixtures.pipeline import history
from tests.fixtures.waiting import until


def _envelope(broker: RedisBroker, queue: str, actor: str, *args: Any, **kwargs: Any) -> str:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=args, kwargs=kwargs, options={}
    )
    return str(broker.enqueue(message).options["redis_message_id"])


async def _raw(client: redis.asyncio.Redis, queue: str, data: bytes) -> str:
    redis_id = str(uuid.uuid4())
    await client.hset(f"{NAMESPACE}:{queue}.msgs", redis_id, data)
    await client.rpush(f"{NAMESPACE}:{queue}", redis_id)
    return redis_id


def _count(system: System, service: str, event: str, **fields: Any) -> int:
    return sum(
        1
        for e in system.events(service)
        if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
    )


async def _anywhere(client: redis.asyncio.Redis, ids: set[str]) -> set[str]:
    """Which of ``ids`` are still somewhere in dramatiq's Redis layout."""
    found: set[str] = set()
    for queue in (CHECKS_QUEUE,):
        base = f"{NAMESPACE}:{queue}"
        found |= {m.decode() for m in await client.lrange(base, 0, -1)}
        found |= {m.decode() for m in await client.hkeys(f"{base}.msgs")}
        found |= {m.decode() for m in await client.zrange(f"{base}.XQ", 0, -1)}
    async for key in client.scan_iter(match=f"{NAMESPACE}:__acks__.*"):
        found |= {m.decode() for m in await client.smembers(key)}
    return found & ids


async def test_malformed_messages_are_dropped_or_dead_lettered_and_workers_keep_going(
    db: Database, system: System, redis_url: str
) -> None:
    flow = await start_flow(db, system, 8)
    ids = flow.ids

    async def checked(times: int) -> bool:
        runs = await history(db)
        return all(len(runs[t]) >= times for t in ids)

    assert await until(lambda: checked(2), within=60), system.logs()[-3000:]
    before = {t: len(r) for t, r in (await history(db)).items()}

    broker = create_broker(redis_url=redis_url)
    client = redis.asyncio.Redis.from_url(redis_url)
    lease = str(uuid.uuid4())
    injected = {
        # checks queue: the fetcher drops these, saying why
        _envelope(broker, CHECKS_QUEUE, CHECK_ACTOR, lease_token=lease),  # task_id missing
        _envelope(broker, CHECKS_QUEUE, CHECK_ACTOR, task_id="seven", lease_token=5),
        _envelope(broker, CHECKS_QUEUE, CHECK_ACTOR, 1, lease),  # positional
        _envelope(broker, CHECKS_QUEUE, CHECK_ACTOR, task_id=999_999, lease_token=lease),
        # checks queue: dead-lettered by the worker, dropped by the watchdog
        _envelope(broker, CHECKS_QUEUE, "no_such_actor", task_id=ids[0], lease_token=lease),
        await _raw(client, CHECKS_QUEUE, b"\x00\xff\xfe garbage bytes"),
        await _raw(client, CHECKS_QUEUE, b'{"not": "a dramatiq message"}'),
    }
    broker.close()

    async def all_gone() -> bool:
        return not await _anywhere(client, injected)

    try:
        assert await until(all_gone, within=30), await _anywhere(client, injected)
    finally:
        await client.aclose()

    def logged() -> dict[str, int]:
        dropped = Counter(
            (e.get("queue"), e.get("reason"))
            for e in system.events("watchdog")
            if e.get("event") == "dead letter dropped"
        )
        return {
            "fetcher malformed": _count(system, "fetcher", "malformed message dropped"),
            "fetcher unknown task": _count(
                system, "fetcher", "check dropped", task_id=999_999, reason="gone"
            ),
            "fetcher undecodable": _count(
                system, "fetcher", "undecodable message moved to the dead letters"
            ),
            "watchdog checks undecodable": dropped[(CHECKS_QUEUE, "undecodable")],
            "watchdog checks not a check": dropped[(CHECKS_QUEUE, "not_a_check")],
        }

    expected = {
        "fetcher malformed": 3,
        "fetcher unknown task": 1,
        "fetcher undecodable": 2,
        "watchdog checks undecodable": 2,
        "watchdog checks not a check": 1,
    }

    async def all_logged() -> bool:
        return logged() == expected

    assert await until(all_logged, within=15), logged()

    async def checked_since() -> bool:
        runs = await history(db)
        return all(len(runs[t]) >= before.get(t, 0) + 2 for t in ids)

    assert await until(checked_since, within=30), system.logs()[-3000:]
    result = await verdict(db, redis_url, system, window=10)
    print(f"7 malformed messages: {logged()}; {result}")
    assert result.problems == [], result
    assert flow.restarted(system) == {}
    assert "Consumer encountered an unexpected error" not in system.logs()
