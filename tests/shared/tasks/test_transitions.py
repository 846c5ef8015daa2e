"""Task transitions against real PostgreSQL: claims are exclusive, state always moves forward."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from shared.db import Database, Task
from shared.tasks import (
    MAX_CONSECUTIVE_ERRORS,
    Backoff,
    claim_due,
    claim_recovery,
    defer,
    release_failure,
    release_success,
)
from tests.fixtures.tasks import insert_tasks, lease_task, read_task, task_rows


async def test_claim_takes_only_due_active_unleased_tasks(db: Database) -> None:
    due = await insert_tasks(db, task_rows(3))
    await insert_tasks(db, task_rows(2, due=False))
    await insert_tasks(db, task_rows(1, status="paused"))
    await insert_tasks(db, task_rows(1, is_active=False))
    async with db.session_scope() as s:
        claims = await claim_due(s, batch=100, lease_seconds=30)
    assert sorted(c.task_id for c in claims) == sorted(due)
    task = await read_task(db, due[0])
    assert task.lease_token in {c.lease_token for c in claims}
    assert task.lease_expires_at is not None
    async with db.session_scope() as s:  # leased now: not claimed again
        assert await claim_due(s, batch=100, lease_seconds=30) == []


async def test_claim_respects_the_batch_and_takes_the_oldest_first(db: Database) -> None:
    ids = await insert_tasks(db, task_rows(10))
    async with db.session_scope() as s:
        await s.execute(text("UPDATE tasks SET next_check = now() - make_interval(secs => id)"))
    async with db.session_scope() as s:
        claims = await claim_due(s, batch=4, lease_seconds=30)
    assert [c.task_id for c in claims] == sorted(ids, reverse=True)[:4]
    assert all(c.lag >= 1 for c in claims)


async def test_two_concurrent_claimers_never_take_the_same_task(db: Database) -> None:
    ids = await insert_tasks(db, task_rows(200))

    async def claimer() -> list[int]:
        got = []
        for _ in range(10):
            async with db.session_scope() as s:
                got += [c.task_id for c in await claim_due(s, batch=15, lease_seconds=30)]
        return got

    first, second = await asyncio.gather(claimer(), claimer())
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == sorted(ids)


async def test_due_claim_uses_the_partial_index(db: Database) -> None:
    for _ in range(4):  # 20,000 tasks not due, 5 due
        await insert_tasks(db, task_rows(5000, due=False))
    await insert_tasks(db, task_rows(5))
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE tasks"))
        plan = "\n".join(
            (
                await conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM tasks WHERE is_active AND status = 'active' "
                        "AND lease_token IS NULL AND next_check <= now() ORDER BY next_check LIMIT 500"
                    )
                )
            ).scalars()
        )
    assert "ix_tasks_due" in plan, plan


async def test_success_resets_errors_and_schedules_one_interval_ahead(db: Database) -> None:
    [task_id] = await insert_tasks(db, task_rows(1, consecutive_errors=3, last_error="boom"))
    async with db.session_scope() as s:
        [claim] = await claim_due(s, batch=1, lease_seconds=30)
    async with db.session_scope() as s:
        success = await release_success(s, task_id=task_id, token=claim.lease_token)
    assert success is not None and not success.recovered
    task = await read_task(db, task_id)
    assert (task.consecutive_errors, task.last_error, task.lease_token) == (0, None, None)
    ahead = (task.next_check - datetime.now(UTC)).total_seconds()
    assert 55 < ahead <= 60


async def test_a_stale_lease_changes_nothing(db: Database) -> None:
    [task_id] = await insert_tasks(db, task_rows(1))
    async with db.session_scope() as s:
        [claim] = await claim_due(s, batch=1, lease_seconds=30)
    stranger = uuid.uuid4()
    async with db.session_scope() as s:
        assert await release_success(s, task_id=task_id, token=stranger) is None
        assert await release_failure(s, task_id=task_id, token=stranger, error="x") is None
        assert await defer(s, task_id=task_id, token=stranger, at=datetime.now(UTC)) is None
    assert (await read_task(db, task_id)).lease_token == claim.lease_token


async def test_failures_back_off_then_stall_after_five_always_in_the_future(db: Database) -> None:
    [task_id] = await insert_tasks(db, task_rows(1))
    delays, statuses = [], []
    for _ in range(MAX_CONSECUTIVE_ERRORS):
        async with db.session_scope() as s:
            await s.execute(
                text("UPDATE tasks SET next_check = now() WHERE id = :id"), {"id": task_id}
            )
            [claim] = await claim_due(s, batch=1, lease_seconds=30)
        async with db.session_scope() as s:
            failure = await release_failure(
                s, task_id=task_id, token=claim.lease_token, error="HTTP 503"
            )
        assert failure is not None
        delays.append(round((failure.next_check - datetime.now(UTC)).total_seconds()))
        statuses.append(failure.status)
    assert delays == [60, 120, 240, 480, 60]  # the fifth: stalled, first recovery in 60 s
    assert statuses == ["active"] * 4 + ["stalled"]
    assert failure.became_stalled
    task = await read_task(db, task_id)
    assert (task.consecutive_errors, task.last_error, task.lease_token) == (5, "HTTP 503", None)


async def test_no_proxy_free_defers_without_counting_an_error(db: Database) -> None:
    [task_id] = await insert_tasks(db, task_rows(1))
    async with db.session_scope() as s:
        [claim] = await claim_due(s, batch=1, lease_seconds=30)
    at = datetime.now(UTC) + timedelta(seconds=42)
    async with db.session_scope() as s:
        assert await defer(s, task_id=task_id, token=claim.lease_token, at=at) == at
    task = await read_task(db, task_id)
    assert (task.consecutive_errors, task.lease_token, task.next_check) == (0, None, at)
    async with db.session_scope() as s:
        assert (await s.scalar(select(Task.status).where(Task.id == task_id))) == "active"


async def _stall(db: Database, task_id: int) -> None:
    """Five failed checks in a row: the task is stalled with its first recovery attempt ahead."""
    for _ in range(MAX_CONSECUTIVE_ERRORS):
        async with db.session_scope() as s:
            await s.execute(
                text("UPDATE tasks SET next_check = now() WHERE id = :id"), {"id": task_id}
            )
            [claim] = await claim_due(s, batch=1, lease_seconds=30)
        async with db.session_scope() as s:
            await release_failure(s, task_id=task_id, token=claim.lease_token, error="HTTP 503")


async def _recovery_attempt(db: Database, task_id: int) -> uuid.UUID:
    async with db.session_scope() as s:
        await s.execute(text("UPDATE tasks SET next_check = now() WHERE id = :id"), {"id": task_id})
        [lease] = await claim_recovery(s, batch=1, lease_seconds=30)
    assert lease.token is not None
    return lease.token


def test_the_recovery_schedule_is_the_seeds_by_default() -> None:
    backoff = Backoff()
    assert [backoff.recovery_delay(k) for k in range(1, 11)] == [
        60,
        120,
        240,
        480,
        600,
        600,
        600,
        600,
        600,
        600,
    ]
    scaled = Backoff(recovery_base=0.5, recovery_factor=3, recovery_cap=10, recovery_attempts=4)
    assert [scaled.recovery_delay(k) for k in range(1, 5)] == [0.5, 1.5, 4.5, 10]


async def test_failed_recovery_attempts_follow_the_schedule_and_the_tenth_fails_the_task(
    db: Database,
) -> None:
    [task_id] = await insert_tasks(db, task_rows(1))
    await _stall(db, task_id)
    backoff = Backoff()
    delays, outcomes = [], []
    for attempt in range(1, backoff.recovery_attempts + 1):
        token = await _recovery_attempt(db, task_id)
        assert (await read_task(db, task_id)).recovery_attempts == attempt  # counted when claimed
        async with db.session_scope() as s:
            failure = await release_failure(s, task_id=task_id, token=token, error="HTTP 503")
        assert failure is not None
        delays.append(round((failure.next_check - datetime.now(UTC)).total_seconds()))
        outcomes.append((failure.status, failure.became_stalled, failure.became_failed))
    # After attempt k fails, attempt k+1 waits the schedule's next step; the tenth gives up.
    assert delays[:-1] == [backoff.recovery_delay(k) for k in range(2, 11)]
    assert outcomes[:-1] == [("stalled", False, False)] * 9
    assert outcomes[-1] == ("failed", False, True)
    task = await read_task(db, task_id)
    assert (task.status, task.recovery_attempts, task.lease_token) == ("failed", 10, None)
    assert task.consecutive_errors == MAX_CONSECUTIVE_ERRORS + 10
    async with db.session_scope() as s:  # a failed task is claimed by nobody
        assert await claim_due(s, batch=10, lease_seconds=30) == []
        await s.execute(text("UPDATE tasks SET next_check = now() - interval '1 hour'"))
        assert await claim_recovery(s, batch=10, lease_seconds=30) == []


async def test_a_permanent_failure_fails_an_active_task_at_once(db: Database) -> None:
    [task_id] = await insert_tasks(db, task_rows(1))
    token = await lease_task(db, task_id, expired=False)
    async with db.session_scope() as s:
        failure = await release_failure(
            s, task_id=task_id, token=token, error="ItemNotFound: x", permanent=True
        )
    assert failure is not None
    assert (failure.status, failure.became_failed, failure.became_stalled) == (
        "failed",
        True,
        False,
    )
    async with db.session_scope() as s:  # and nobody claims it any more
        await s.execute(text("UPDATE tasks SET next_check = now() - interval '1 hour'"))
        assert await claim_due(s, batch=10, lease_seconds=30) == []


async def test_a_successful_recovery_attempt_makes_the_task_active_with_counters_reset(
    db: Database,
) -> None:
    [task_id] = await insert_tasks(db, task_rows(1))
    await _stall(db, task_id)
    token = await _recovery_attempt(db, task_id)
    async with db.session_scope() as s:
        failure = await release_failure(s, task_id=task_id, token=token, error="HTTP 503")
    assert failure is not None and failure.status == "stalled"
    token = await _recovery_attempt(db, task_id)
    async with db.session_scope() as s:
        success = await release_success(s, task_id=task_id, token=token)
    assert success is not None and success.recovered
    task = await read_task(db, task_id)
    assert (task.status, task.consecutive_errors, task.recovery_attempts, task.last_error) == (
        "active",
        0,
        0,
        None,
    )
    assert 55 < (task.next_check - datetime.now(UTC)).total_seconds() <= 60


async def test_a_task_paused_during_recovery_stays_paused_whatever_its_check_says(
    db: Database,
) -> None:
    first, second = await insert_tasks(db, task_rows(2, due=False))
    for task_id in (first, second):
        await _stall(db, task_id)
    tokens = {task_id: await _recovery_attempt(db, task_id) for task_id in (first, second)}
    async with db.session_scope() as s:
        await s.execute(text("UPDATE tasks SET status = 'paused'"))
    async with db.session_scope() as s:
        assert await release_success(s, task_id=first, token=tokens[first]) is not None
        failure = await release_failure(s, task_id=second, token=tokens[second], error="x")
    assert failure is not None and not failure.became_failed
    assert [(await read_task(db, t)).status for t in (first, second)] == ["paused", "paused"]


async def test_an_overdue_claim_takes_only_tasks_due_longer_ago_than_the_grace(
    db: Database,
) -> None:
    late = await insert_tasks(
        db, task_rows(2, next_check=datetime.now(UTC) - timedelta(seconds=90))
    )
    await insert_tasks(db, task_rows(3, next_check=datetime.now(UTC) - timedelta(seconds=10)))
    async with db.session_scope() as s:
        claims = await claim_due(s, batch=100, lease_seconds=30, overdue_by=30)
    assert sorted(c.task_id for c in claims) == late
    assert all(c.lag >= 90 for c in claims)
