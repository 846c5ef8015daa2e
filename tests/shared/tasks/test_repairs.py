"""The watchdog's transitions against real PostgreSQL: each re-checks the row as it changes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text

from shared.db import Database, Task
from shared.tasks import claim_recovery, count_stalled, reclaim_expired, release_dead_letter
from tests.fixtures.tasks import insert_tasks, lease_task, read_task, task_rows

PAST = datetime.now(UTC) - timedelta(minutes=5)


async def test_expired_leases_of_live_tasks_are_renewed_and_the_others_released(
    db: Database,
) -> None:
    active, stalled, paused, failed, inactive, fresh = await insert_tasks(
        db,
        [
            *task_rows(1),
            *task_rows(1, status="stalled", recovery_attempts=3),
            *task_rows(1, status="paused"),
            *task_rows(1, status="failed"),
            *task_rows(1, is_active=False),
            *task_rows(1),
        ],
    )
    old = {
        t: await lease_task(db, t, expired=t != fresh)
        for t in (active, stalled, paused, failed, inactive, fresh)
    }
    async with db.session_scope() as s:
        leases = await reclaim_expired(s, batch=100, lease_seconds=30)
    by_task = {lease.task_id: lease for lease in leases}
    assert sorted(by_task) == sorted([active, stalled, paused, failed, inactive])  # not `fresh`
    for task_id in (active, stalled):
        lease = by_task[task_id]
        assert lease.token is not None and lease.token != old[task_id]
        row = await read_task(db, task_id)
        assert row.lease_token == lease.token
        assert row.lease_expires_at is not None and row.lease_expires_at > datetime.now(UTC)
    # A re-sent recovery attempt is the same attempt: not counted again.
    assert by_task[stalled].recovery_attempts == 3
    for task_id, why in ((paused, "paused"), (failed, "failed"), (inactive, "deactivated")):
        assert by_task[task_id].token is None and by_task[task_id].why_released == why
        row = await read_task(db, task_id)
        assert (row.lease_token, row.lease_expires_at) == (None, None)
    assert (await read_task(db, fresh)).lease_token == old[fresh]


async def test_stalled_tasks_are_claimed_for_recovery_only_when_due_and_live(db: Database) -> None:
    due = await insert_tasks(
        db, task_rows(2, status="stalled", next_check=PAST, recovery_attempts=1)
    )
    await insert_tasks(
        db,
        [
            *task_rows(1, status="stalled", next_check=datetime.now(UTC) + timedelta(minutes=1)),
            *task_rows(1, status="paused", next_check=PAST),
            *task_rows(1, status="failed", next_check=PAST),
            *task_rows(1, status="stalled", is_active=False, next_check=PAST),
            *task_rows(1, status="active", next_check=PAST),
        ],
    )
    [leased] = await insert_tasks(db, task_rows(1, status="stalled", next_check=PAST))
    await lease_task(db, leased, expired=False)
    async with db.session_scope() as s:
        leases = await claim_recovery(s, batch=100, lease_seconds=30)
    assert [lease.task_id for lease in leases] == due
    assert all(lease.recovery_attempts == 2 and lease.token for lease in leases)
    async with db.session_scope() as s:  # leased now: not claimed again
        assert await claim_recovery(s, batch=100, lease_seconds=30) == []
    async with db.session_scope() as s:
        assert await count_stalled(s) == 4  # due, not yet due and leased: inactive is not counted


async def test_two_watchdogs_never_take_the_same_expired_lease(db: Database) -> None:
    ids = await insert_tasks(db, task_rows(200))
    for task_id in ids:
        await lease_task(db, task_id, expired=True)

    async def sweeper() -> list[int]:
        got = []
        for _ in range(10):
            async with db.session_scope() as s:
                got += [
                    lease.task_id for lease in await reclaim_expired(s, batch=15, lease_seconds=30)
                ]
        return got

    first, second = await asyncio.gather(sweeper(), sweeper())
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == ids


async def test_a_dead_lettered_check_is_leased_afresh_only_while_its_lease_is_current(
    db: Database,
) -> None:
    live, stale, paused, failed, inactive, gone = await insert_tasks(
        db,
        [
            *task_rows(1),
            *task_rows(1),
            *task_rows(1, status="paused"),
            *task_rows(1, status="failed"),
            *task_rows(1, is_active=False),
            *task_rows(1),
        ],
    )
    tokens = {
        t: await lease_task(db, t, expired=False)
        for t in (live, stale, paused, failed, inactive, gone)
    }
    async with db.session_scope() as s:
        await s.execute(delete(Task).where(Task.id == gone))
        await s.execute(
            text("UPDATE tasks SET lease_token = gen_random_uuid() WHERE id = :id"), {"id": stale}
        )
    answers = {}
    for task_id, token in tokens.items():
        async with db.session_scope() as s:
            answers[task_id] = await release_dead_letter(
                s, task_id=task_id, token=token, lease_seconds=30
            )
    lease = answers.pop(live)
    assert not isinstance(lease, str) and lease.token not in (None, tokens[live])
    assert (await read_task(db, live)).lease_token == lease.token
    assert answers == {
        stale: "superseded",
        paused: "paused",
        failed: "failed",
        inactive: "deactivated",
        gone: "gone",
    }
    assert (await read_task(db, paused)).lease_token == tokens[paused]  # untouched
