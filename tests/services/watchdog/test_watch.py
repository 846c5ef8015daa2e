"""One watchdog pass at a time, in process, against real PostgreSQL, Redis and a dramatiq broker.

Given rows in every state, when a pass runs, I expect exactly the stalled work re-sent (each
under the lease the row now holds), nothing else touched, and the metrics to say so.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from services.watchdog.watch import Watchdog
from shared.bus import (
    CHECKS_QUEUE,
    REQUEUES_OPTION,
    RESULTS_QUEUE,
    CheckMessage,
    create_broker,
)
from shared.db import Database, Task
from shared.runtime import Pools
from tests.fixtures.tasks import insert_tasks, lease_task, read_task, task_rows

PAST = datetime.now(UTC) - timedelta(minutes=5)


def make_watchdog(redis_url: str, **overrides: Any) -> Watchdog:
    settings: dict[str, Any] = {
        "lease_seconds": 30,
        "grace": 30,
        "batch": 100,
        "high_water": 10_000,
        "dead_letter_batch": 100,
        "dead_letter_requeues": 3,
    }
    return Watchdog(broker=create_broker(redis_url=redis_url), **{**settings, **overrides})


async def queued(pools: Pools, queue: str = CHECKS_QUEUE) -> list[dict[str, Any]]:
    """The messages waiting in ``queue``: kwargs plus the options they carry."""
    raw = await pools.redis.hvals(f"steamwatch:{queue}.msgs")
    return [{**json.loads(m)["kwargs"], "options": json.loads(m)["options"]} for m in raw]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dead_letter(
    broker: dramatiq.Broker, queue: str, actor: str, kwargs: dict[str, Any], **options: Any
) -> None:
    """Enqueue a message and nack it, as a worker does when the message's retries run out."""
    sent = broker.enqueue(
        dramatiq.Message(
            queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options=dict(options)
        )
    )
    consumer = broker.consume(queue, prefetch=1, timeout=1000)
    try:
        for proxy in consumer:
            if proxy is not None and proxy.message_id == sent.message_id:
                consumer.nack(proxy)
                return
    finally:
        consumer.close()


async def test_one_pass_resends_expired_overdue_and_due_recovery_work_and_nothing_else(
    db: Database, pools: Pools, redis_url: str
) -> None:
    expired, overdue, recovering = await insert_tasks(
        db,
        [
            *task_rows(1),
            *task_rows(1, next_check=PAST),
            *task_rows(
                1, status="stalled", next_check=PAST, recovery_attempts=2, consecutive_errors=7
            ),
        ],
    )
    (
        paused_expired,
        recent,
        stalled_later,
        paused_stalled,
        inactive_overdue,
        held,
    ) = await insert_tasks(
        db,
        [
            *task_rows(1, status="paused"),
            *task_rows(1, next_check=datetime.now(UTC) - timedelta(seconds=5)),  # within the grace
            *task_rows(1, status="stalled", next_check=datetime.now(UTC) + timedelta(minutes=1)),
            *task_rows(1, status="paused", next_check=PAST, recovery_attempts=2),
            *task_rows(1, is_active=False, next_check=PAST),
            *task_rows(1, next_check=PAST),
        ],
    )
    old_token = await lease_task(db, expired, expired=True)
    await lease_task(db, paused_expired, expired=True)
    held_token = await lease_task(db, held, expired=False)
    before = {
        r: metric("steamwatch_watchdog_resent_total", reason=r)
        for r in ("lease_expired", "overdue", "recovery")
    }
    released_before = metric("steamwatch_watchdog_released_total", why="paused")

    report = await make_watchdog(redis_url).run_pass(pools)

    assert report.sent("lease_expired") == [expired]
    assert report.sent("overdue") == [overdue]
    assert report.sent("recovery") == [recovering]
    assert [s.attempt for s in report.sends if s.reason == "recovery"] == [3]
    assert [(lease.task_id, lease.why_released) for lease in report.released] == [
        (paused_expired, "paused")
    ]
    sent = await queued(pools)
    async with db.session_scope() as s:
        rows = {t.id: t for t in (await s.scalars(select(Task))).all()}
    # One message per repaired task, under the lease its row holds now.
    assert sorted((m["task_id"], m["reason"]) for m in sent) == sorted(
        [(expired, "lease_expired"), (overdue, "overdue"), (recovering, "recovery")]
    )
    assert all(m["lease_token"] == str(rows[m["task_id"]].lease_token) for m in sent)
    assert rows[expired].lease_token != old_token
    assert rows[recovering].recovery_attempts == 3
    assert rows[paused_expired].lease_token is None
    assert rows[held].lease_token == held_token
    for untouched in (recent, stalled_later, paused_stalled, inactive_overdue):
        assert rows[untouched].lease_token is None, untouched
    assert rows[paused_stalled].recovery_attempts == 2
    assert report.stalled == 2  # recovering and stalled_later; the paused one is not stalled
    assert metric("steamwatch_tasks_stalled") == 2
    assert report.tasks == {"active": 4, "paused": 2, "stalled": 2, "failed": 0, "deactivated": 1}
    assert metric("steamwatch_tasks", status="paused") == 2
    for reason, value in before.items():
        assert metric("steamwatch_watchdog_resent_total", reason=reason) == value + 1
    assert metric("steamwatch_watchdog_released_total", why="paused") == released_before + 1

    # Everything repaired now holds a fresh lease: a second pass has nothing to do.
    again = await make_watchdog(redis_url).run_pass(pools)
    assert again.sends == [] and again.released == []
    assert len(await queued(pools)) == 3


async def test_dead_letters_a_live_check_is_resent_and_everything_else_dropped_with_a_reason(
    db: Database, pools: Pools, redis_url: str
) -> None:
    live, paused, stale, poison = await insert_tasks(
        db,
        [
            *task_rows(1),
            *task_rows(1, status="paused"),
            *task_rows(1),
            *task_rows(1, consecutive_errors=4),  # its fifth failure in a row stalls it
        ],
    )
    tokens = {t: await lease_task(db, t, expired=False) for t in (live, paused, stale, poison)}
    broker = create_broker(redis_url=redis_url)

    def check(task_id: int, token: uuid.UUID) -> dict[str, Any]:
        return CheckMessage(task_id=task_id, lease_token=token).model_dump(mode="json")

    dead_letter(broker, CHECKS_QUEUE, "check_task", check(live, tokens[live]), retries=5)
    dead_letter(broker, CHECKS_QUEUE, "check_task", check(paused, tokens[paused]))
    dead_letter(broker, CHECKS_QUEUE, "check_task", check(stale, uuid.uuid4()))
    dead_letter(
        broker,
        CHECKS_QUEUE,
        "check_task",
        check(poison, tokens[poison]),
        traceback="Traceback ...\nOperationalError: connection refused",
        **{REQUEUES_OPTION: 3},
    )
    dead_letter(broker, CHECKS_QUEUE, "check_task", {"task_id": "seven"})
    dead_letter(broker, CHECKS_QUEUE, "some_other_actor", {})
    # A result an upgrade left behind (results went through the queue before the outbox).
    result = {"task_id": live, "lease_token": str(uuid.uuid4()), "outcome": "error"}
    dead_letter(broker, RESULTS_QUEUE, "publish_result", result)
    await pools.redis.zadd("steamwatch:checks.XQ", {"junk": 1})
    await pools.redis.hset("steamwatch:checks.XQ.msgs", "junk", b"\x00garbage")
    dropped_before = metric(
        "steamwatch_watchdog_dead_letters_dropped_total", queue="checks", reason="paused"
    )

    report = await make_watchdog(redis_url).run_pass(pools)

    assert report.sent("dead_letter") == [live]
    reasons = sorted((d.letter.queue, d.reason, d.task_id) for d in report.dropped)
    assert reasons == sorted(
        [
            ("checks", "paused", paused),
            ("checks", "superseded", stale),
            ("checks", "requeued_too_often", poison),
            ("checks", "malformed", "seven"),
            ("checks", "not_a_check", None),
            ("checks", "undecodable", None),
            ("results", "result", live),
        ]
    )
    # The live check: a fresh lease, sent with its re-send counted in the message.
    [resent] = [m for m in await queued(pools) if m["task_id"] == live]
    row = await read_task(db, live)
    assert resent["lease_token"] == str(row.lease_token) != str(tokens[live])
    assert (resent["reason"], resent["options"][REQUEUES_OPTION]) == ("dead_letter", 1)
    # The poison check became a failed check of its task: counted, released, reported.
    row = await read_task(db, poison)
    assert (row.consecutive_errors, row.status, row.lease_token) == (5, "stalled", None)
    assert row.next_check > datetime.now(UTC)
    assert "dead-lettered after 3 re-sends: OperationalError: connection refused" in (
        row.last_error or ""
    )
    # Its owner hears it stalled: the event committed with the pass, in the outbox.
    [stalled] = report.failures
    assert (stalled.kind, stalled.task_id, stalled.data["consecutive_errors"]) == (
        "stalled",
        poison,
        5,
    )
    async with db.session_scope() as s:
        outbox = (await s.execute(text("SELECT event_id FROM event_outbox"))).scalars().all()
    assert outbox == [stalled.id]
    assert (await read_task(db, paused)).lease_token == tokens[paused]  # never revived
    assert report.dead_letters == {"checks": 0, "results": 0}
    assert metric("steamwatch_queue_messages", queue="checks", state="dead") == 0
    assert (
        metric("steamwatch_watchdog_dead_letters_dropped_total", queue="checks", reason="paused")
        == dropped_before + 1
    )


async def test_a_deep_checks_queue_holds_the_watchdog_back_until_it_drains(
    db: Database, pools: Pools, redis_url: str
) -> None:
    [overdue] = await insert_tasks(db, task_rows(1, next_check=PAST))
    broker = create_broker(redis_url=redis_url)
    watchdog = make_watchdog(redis_url, high_water=5)
    for _ in range(5):
        broker.enqueue(
            dramatiq.Message(
                queue_name=CHECKS_QUEUE, actor_name="check_task", args=(), kwargs={}, options={}
            )
        )
    report = await watchdog.run_pass(pools)
    assert report.held_back and report.sends == []
    assert (await read_task(db, overdue)).lease_token is None
    await pools.redis.delete("steamwatch:checks", "steamwatch:checks.msgs")
    report = await watchdog.run_pass(pools)
    assert report.sent("overdue") == [overdue]


async def test_two_watchdogs_passing_at_once_send_each_task_once(
    db: Database, pools: Pools, redis_url: str, database_url: str
) -> None:
    expired = await insert_tasks(db, task_rows(60))
    for task_id in expired:
        await lease_task(db, task_id, expired=True)
    overdue = await insert_tasks(db, task_rows(60, next_check=PAST))
    stalled = await insert_tasks(db, task_rows(30, status="stalled", next_check=PAST))
    other_db = Database.create(url=database_url, pool_size=2, max_overflow=0, pool_timeout=30)
    try:
        small = {"batch": 7}
        reports = []
        for _ in range(12):
            reports += await asyncio.gather(
                make_watchdog(redis_url, **small).run_pass(pools),
                make_watchdog(redis_url, **small).run_pass(Pools(db=other_db, redis=pools.redis)),
            )
    finally:
        await other_db.dispose()
    sent = sorted(s.task_id for report in reports for s in report.sends)
    assert sent == sorted(expired + overdue + stalled)  # each exactly once
    assert sorted(m["task_id"] for m in await queued(pools)) == sent


async def test_each_pass_keeps_history_bounded_and_a_failure_there_stops_no_repair(
    pools: Pools, db: Database, redis_url: str
) -> None:
    """Issue 18: the watchdog's pass rolls up closed hours and applies retention; when that
    upkeep fails (here its table is gone), the repairs still run and the failure is counted."""
    (task,) = await insert_tasks(db, task_rows(1, next_check=PAST))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    async with db.session_scope() as s:
        await s.execute(text("INSERT INTO history_state VALUES (1, :at)"), {"at": hour})
        await s.execute(
            text(
                "INSERT INTO price_history (task_id, lease_token, checked_at, currency, "
                "lowest_price) VALUES (:t, gen_random_uuid(), :at, 3, 700)"
            ),
            {"t": task, "at": hour + timedelta(minutes=20)},
        )
    report = await make_watchdog(redis_url).run_pass(pools)
    assert report.history is not None and report.history.rolled_hours >= 2
    async with db.session_scope() as s:
        rolled = (await s.execute(text("SELECT checks, last FROM price_rollups"))).all()
        assert rolled == [(1, 700)]
        await s.execute(text("ALTER TABLE history_state RENAME TO history_state_away"))
    failures = metric("steamwatch_history_upkeep_failures_total")
    try:
        broken = await make_watchdog(redis_url).run_pass(pools)
    finally:
        async with db.session_scope() as s:
            await s.execute(text("ALTER TABLE history_state_away RENAME TO history_state"))
    assert broken.history is None
    assert metric("steamwatch_history_upkeep_failures_total") == failures + 1
    assert broken.tasks  # the pass itself went on: it counted the tasks


async def test_a_dead_lettered_batch_comes_back_one_check_per_live_claim(
    db: Database, pools: Pools, redis_url: str
) -> None:
    first, paused, second, gone_a, gone_b = await insert_tasks(
        db, [*task_rows(1), *task_rows(1, status="paused"), *task_rows(3)]
    )
    tokens = {t: await lease_task(db, t, expired=False) for t in (first, paused, second)}
    broker = create_broker(redis_url=redis_url)
    batch = CheckMessage.batch(
        [(first, tokens[first]), (paused, tokens[paused]), (second, tokens[second])]
    )
    dead_letter(broker, CHECKS_QUEUE, "check_task", batch.model_dump(mode="json"))
    # Every claim of this one has moved on: the letter is dropped, naming each.
    moved_on = CheckMessage.batch([(gone_a, uuid.uuid4()), (gone_b, uuid.uuid4())])
    dead_letter(broker, CHECKS_QUEUE, "check_task", moved_on.model_dump(mode="json"))

    report = await make_watchdog(redis_url).run_pass(pools)

    assert sorted(report.sent("dead_letter")) == sorted([first, second])
    resent = {m["task_id"]: m for m in await queued(pools)}
    assert sorted(resent) == sorted([first, second])
    for task_id in (first, second):
        row = await read_task(db, task_id)
        assert resent[task_id]["lease_token"] == str(row.lease_token) != str(tokens[task_id])
        assert "also" not in resent[task_id]  # one check each: a poison claim dies alone
        assert resent[task_id]["options"][REQUEUES_OPTION] == 1
    assert (await read_task(db, paused)).lease_token == tokens[paused]  # never revived
    [dropped] = report.dropped
    assert (dropped.reason, dropped.task_id) == ("superseded", gone_a)
    assert f"{gone_a}: " in dropped.detail and f"{gone_b}: " in dropped.detail
