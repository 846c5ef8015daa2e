"""Task transitions against real PostgreSQL: claims are exclusive, state always moves forward."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text

from shared.db import Database
from shared.models import Task
from shared.schedule import (
    MAX_CONSECUTIVE_ERRORS,
    claim_due,
    defer,
    release_failure,
    release_success,
)


def _rows(n: int, *, due: bool = True, **overrides: object) -> list[dict[str, object]]:
    when = datetime.now(UTC) + (timedelta(seconds=-5) if due else timedelta(hours=1))
    base = {"owner": "alice", "appid": 730, "currency": 1, "kind": "lowest_price",
            "conditions": {"max_price": 100}, "check_interval": 60, "next_check": when}  # fmt: skip
    return [
        {**base, "market_hash_name": f"Item {uuid.uuid4().hex[:10]}", **overrides} for _ in range(n)
    ]


async def _add(db: Database, rows: list[dict[str, object]]) -> list[int]:
    async with db.session_scope() as s:
        return list((await s.scalars(insert(Task).returning(Task.id), rows)).all())


async def _task(db: Database, task_id: int) -> Task:
    async with db.session_scope() as s:
        task = await s.get(Task, task_id)
        assert task is not None
        return task


async def test_claim_takes_only_due_active_unleased_tasks(db: Database) -> None:
    due = await _add(db, _rows(3))
    await _add(db, _rows(2, due=False))
    await _add(db, _rows(1, status="paused"))
    await _add(db, _rows(1, is_active=False))
    async with db.session_scope() as s:
        claims = await claim_due(s, batch=100, lease_seconds=30)
    assert sorted(c.task_id for c in claims) == sorted(due)
    task = await _task(db, due[0])
    assert task.lease_token in {c.lease_token for c in claims}
    assert task.lease_expires_at is not None
    async with db.session_scope() as s:  # leased now: not claimed again
        assert await claim_due(s, batch=100, lease_seconds=30) == []


async def test_claim_respects_the_batch_and_takes_the_oldest_first(db: Database) -> None:
    ids = await _add(db, _rows(10))
    async with db.session_scope() as s:
        await s.execute(text("UPDATE tasks SET next_check = now() - make_interval(secs => id)"))
    async with db.session_scope() as s:
        claims = await claim_due(s, batch=4, lease_seconds=30)
    assert [c.task_id for c in claims] == sorted(ids, reverse=True)[:4]
    assert all(c.lag >= 1 for c in claims)


async def test_two_concurrent_claimers_never_take_the_same_task(db: Database) -> None:
    ids = await _add(db, _rows(200))

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
        await _add(db, _rows(5000, due=False))
    await _add(db, _rows(5))
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE tasks"))
        plan = "\n".join(
            (await conn.execute(text(
                "EXPLAIN SELECT id FROM tasks WHERE is_active AND status = 'active' "
                "AND lease_token IS NULL AND next_check <= now() ORDER BY next_check LIMIT 500"
            ))).scalars()
        )  # fmt: skip
    assert "ix_tasks_due" in plan, plan


async def test_success_resets_errors_and_schedules_one_interval_ahead(db: Database) -> None:
    [task_id] = await _add(db, _rows(1, consecutive_errors=3, last_error="boom"))
    async with db.session_scope() as s:
        [claim] = await claim_due(s, batch=1, lease_seconds=30)
    async with db.session_scope() as s:
        success = await release_success(s, task_id=task_id, token=claim.lease_token)
    assert success is not None and not success.recovered
    task = await _task(db, task_id)
    assert (task.consecutive_errors, task.last_error, task.lease_token) == (0, None, None)
    ahead = (task.next_check - datetime.now(UTC)).total_seconds()
    assert 55 < ahead <= 60


async def test_a_stale_lease_changes_nothing(db: Database) -> None:
    [task_id] = await _add(db, _rows(1))
    async with db.session_scope() as s:
        [claim] = await claim_due(s, batch=1, lease_seconds=30)
    stranger = uuid.uuid4()
    async with db.session_scope() as s:
        assert await release_success(s, task_id=task_id, token=stranger) is None
        assert await release_failure(s, task_id=task_id, token=stranger, error="x") is None
        assert await defer(s, task_id=task_id, token=stranger, at=datetime.now(UTC)) is None
    assert (await _task(db, task_id)).lease_token == claim.lease_token


async def test_failures_back_off_then_stall_after_five_always_in_the_future(db: Database) -> None:
    [task_id] = await _add(db, _rows(1))
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
    task = await _task(db, task_id)
    assert (task.consecutive_errors, task.last_error, task.lease_token) == (5, "HTTP 503", None)


async def test_no_proxy_free_defers_without_counting_an_error(db: Database) -> None:
    [task_id] = await _add(db, _rows(1))
    async with db.session_scope() as s:
        [claim] = await claim_due(s, batch=1, lease_seconds=30)
    at = datetime.now(UTC) + timedelta(seconds=42)
    async with db.session_scope() as s:
        assert await defer(s, task_id=task_id, token=claim.lease_token, at=at) == at
    task = await _task(db, task_id)
    assert (task.consecutive_errors, task.lease_token, task.next_check) == (0, None, at)
    async with db.session_scope() as s:
        assert (await s.scalar(select(Task.status).where(Task.id == task_id))) == "active"
