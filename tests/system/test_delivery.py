"""At-least-once delivery, made harmless: stale leases, redeliveries, garbage, twin schedulers.

dramatiq on Redis may deliver a message twice (upstream issues #431 and #692); every actor
must be idempotent by the lease token and the event ids.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import redis.asyncio
from sqlalchemy import func, select, text, update

from shared.alerts import Event, stage
from shared.bus import CheckMessage, create_broker, send_check
from shared.db import Database, PriceSnapshot, Task
from shared.steam import Item
from testbed.system import SESSION_STATE_ERRORS, System
from tests.fixtures.pipeline import FAST, all_events, catalogue
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until


async def test_a_check_with_a_stale_lease_is_dropped(
    db: Database, system: System, redis_url: str
) -> None:
    system.start_simulator("--no-limits")
    [name] = await catalogue(system, 1)
    later = datetime.now(UTC) + timedelta(hours=1)
    [task_id] = await add_tasks(
        db,
        [
            {
                "market_hash_name": name,
                "kind": "lowest_price",
                "check_interval": 60,
                "next_check": later,
                "conditions": {"max_price": 1},
            }
        ],
    )
    current = uuid.uuid4()
    async with db.session_scope() as s:
        await s.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(lease_token=current, lease_expires_at=later)
        )
    system.start("fetcher", **FAST)
    broker = create_broker(redis_url=redis_url)
    send_check(broker, CheckMessage(task_id=task_id, lease_token=uuid.uuid4()))  # stale
    send_check(broker, CheckMessage(task_id=task_id, lease_token=current))  # the real one

    async def checked() -> bool:
        async with db.session_scope() as s:
            return bool(await s.scalar(select(func.count()).select_from(PriceSnapshot)))

    assert await until(checked, within=60)
    assert await until(lambda: _logged(system, '"reason": "stale"'), within=30)
    async with db.session_scope() as s:
        rows = (await s.scalars(select(PriceSnapshot))).all()
    assert [(r.task_id, r.lease_token) for r in rows] == [(task_id, current)]


async def _logged(system: System, text: str) -> bool:
    return text in system.logs()


async def test_a_redelivered_check_yields_one_event_and_the_outbox_is_emptied_once(
    db: Database, system: System, redis_url: str
) -> None:
    """A check delivered twice under its lease raises its alert once (the second finds the
    lease released); events a fetcher committed and never published (killed after its commit)
    reach the stream through the publisher, once; garbage is dropped and named."""
    system.start_simulator("--no-limits")
    names = await catalogue(system, 2)
    later = datetime.now(UTC) + timedelta(hours=1)
    [task_id, orphan] = await add_tasks(
        db,
        [
            {
                "market_hash_name": name,
                "kind": "lowest_price",
                "check_interval": 60,
                "next_check": later,
                "conditions": {"max_price": 10_000_000},  # any price is under it
            }
            for name in names
        ],
    )
    token = uuid.uuid4()
    async with db.session_scope() as s:
        await s.execute(
            update(Task).where(Task.id == task_id).values(lease_token=token, lease_expires_at=later)
        )
        # What a fetcher killed between its commit and its publish leaves behind.
        left = Event.about_task(
            "stalled",
            task_id=orphan,
            owner="alice",
            item=Item(730, names[1], 3),
            occasion=uuid.uuid4(),
            at=datetime.now(UTC),
            data={"error": "HTTP 503", "consecutive_errors": 5},
        )
        await stage(s, [left])
    system.start("fetcher", **FAST)
    system.start("publisher", **FAST)
    broker = create_broker(redis_url=redis_url)
    send_check(broker, CheckMessage(task_id=task_id, lease_token=token))
    _send_raw(broker, {"task_id": "not a number", "lease_token": 7})  # malformed
    _send_raw(broker, {})  # missing every field
    send_check(broker, CheckMessage(task_id=task_id, lease_token=token))  # the redelivery

    async def outbox() -> int:
        async with db.session_scope() as s:
            return int(await s.scalar(text("SELECT count(*) FROM event_outbox")) or 0)

    async def settled() -> bool:
        logs = system.logs("fetcher")
        return logs.count('"malformed message dropped"') == 2 and '"reason": "stale"' in logs

    assert await until(settled, within=60), system.logs()[-4000:]
    assert await until(lambda: _zero(outbox), within=30)
    events = [e for e in await all_events(redis_url) if e.task_id in (task_id, orphan)]
    assert sorted((e.task_id, e.kind) for e in events) == [
        (task_id, "price_at_or_below"),
        (orphan, "stalled"),
    ]
    assert [e.id for e in events if e.task_id == orphan] == [left.id]
    logs = system.logs("fetcher")
    assert "task_id" in logs and "lease_token" in logs  # the log line names the bad fields
    assert '"outbox drained"' in system.logs("publisher")
    assert system.unexpected_exits() == []


async def _zero(count: Callable[[], Awaitable[int]]) -> bool:
    return await count() == 0


def _send_raw(broker: dramatiq.Broker, kwargs: dict[str, object]) -> None:
    broker.enqueue(
        dramatiq.Message(
            queue_name="checks", actor_name="check_task", args=(), kwargs=kwargs, options={}
        )
    )


async def test_two_schedulers_send_each_due_task_once(
    db: Database, system: System, redis_url: str
) -> None:
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": f"Item {i}",
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": {"max_price": 1},
            }
            for i in range(300)
        ],
    )
    system.start("scheduler", STEAMWATCH_SCHEDULER_TICK="0.1", STEAMWATCH_SCHEDULER_BATCH="7")
    system.start("scheduler", STEAMWATCH_SCHEDULER_TICK="0.1", STEAMWATCH_SCHEDULER_BATCH="7")
    client = redis.asyncio.Redis.from_url(redis_url)

    async def claims_sent() -> list[dict[str, Any]]:
        """Every claim of every check message queued (a message may carry several)."""
        raw = await client.hvals("steamwatch:checks.msgs")
        messages = [json.loads(m)["kwargs"] for m in raw]
        return [claim for m in messages for claim in [m, *m.get("also", [])]]

    async def all_sent() -> bool:
        return len(await claims_sent()) >= 300

    assert await until(all_sent, within=60)
    # Stop both (each finishes its pass first): from then on nothing more can be sent.
    for proc in list(system.procs):
        assert system.stop(proc) == 0
    sent = await claims_sent()
    await client.aclose()
    assert sorted(m["task_id"] for m in sent) == sorted(ids)  # every due task, exactly once
    async with db.session_scope() as s:
        leases = {
            (r.id, str(r.lease_token)) for r in await s.execute(select(Task.id, Task.lease_token))
        }
    assert {(m["task_id"], m["lease_token"]) for m in sent} == leases  # each under its one lease
    logs = [p.text() for p in system.procs]
    assert all("service ready" in text for text in logs)  # both really ran
    assert not SESSION_STATE_ERRORS.search(system.logs())


async def test_500_checks_in_flight_stay_within_the_pool_bounds(
    db: Database, system: System, redis_url: str
) -> None:
    system.start_simulator("--no-limits", "--latency-ms", "2000")
    names = await catalogue(system, 500)
    await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": {"max_price": 1},
            }
            for n in names
        ],
    )
    env = {
        **FAST,
        "STEAMWATCH_FETCHER_PROCESSES": "2",
        "STEAMWATCH_FETCHER_THREADS": "250",
        "STEAMWATCH_DB_POOL_SIZE": "4",
        "STEAMWATCH_DB_MAX_OVERFLOW": "4",
        "STEAMWATCH_SCHEDULER_BATCH": "1000",
    }
    system.start("fetcher", **env)
    system.start("publisher", **env)
    # Let the fetchers boot before anything is due, so the 500 arrive together.
    assert await until(lambda: _logged(system, "worker ready"), within=60)
    system.start("scheduler", **env)
    peak = 0
    started = time.monotonic()
    async with db.engine.connect() as conn:
        while time.monotonic() - started < 60:
            in_use = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'steamwatch-fetcher' "
                    "AND datname = current_database()"
                )
            )
            peak = max(peak, int(in_use or 0))
            done = await conn.scalar(text("SELECT count(*) FROM price_history"))
            await conn.commit()
            if done == 500:
                break
            await asyncio.sleep(0.05)
    took = time.monotonic() - started
    print(f"500 checks of 2 s latency done in {took:.1f} s; peak fetcher connections {peak}/16")
    assert done == 500
    # 500 checks of 2 s each in ~seconds means they really were in flight together.
    assert took < 20, took
    assert 1 <= peak <= 2 * (4 + 4), peak  # two fetcher processes, each pool 4 + 4
    assert "QueuePool limit" not in system.logs()
    assert not SESSION_STATE_ERRORS.search(system.logs())
