"""The watchdog's transitions: checks that were sent and never finished, and stalled tasks' retries.

Like the claims and releases (``_transitions.py``), each is one statement that re-reads the
row's state as it changes it, under ``FOR UPDATE SKIP LOCKED`` where it sweeps, so two
watchdogs never repair the same row twice and none ever revives a task that was paused, failed
or deactivated in the meantime.
Overdue tasks need no statement of their own: they are :func:`shared.tasks.claim_due` with
a grace period.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Task

# A lease that outlived its expiry: re-leased when the task may still be checked, otherwise
# (paused, failed, deactivated meanwhile) released so the row holds no lease at all. The SET
# expressions see the row as it was locked.
_RECLAIM_EXPIRED = text(
    """
    WITH expired AS (
        SELECT id FROM tasks
        WHERE lease_token IS NOT NULL AND lease_expires_at < now()
        ORDER BY lease_expires_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks AS t
    SET lease_token = CASE WHEN t.is_active AND t.status IN ('active', 'stalled')
                           THEN gen_random_uuid() END,
        lease_expires_at = CASE WHEN t.is_active AND t.status IN ('active', 'stalled')
                                THEN now() + make_interval(secs => :lease_seconds) END,
        updated_at = now()
    FROM expired
    WHERE t.id = expired.id
    RETURNING t.id, t.lease_token, t.status, t.is_active, t.recovery_attempts, now() AS at
    """
)

# Stalled tasks whose next recovery attempt is due; the attempt is counted as it is claimed,
# so the failure of the last one (see shared.tasks._transitions) makes the task failed.
_CLAIM_RECOVERY = text(
    """
    WITH due AS (
        SELECT id FROM tasks
        WHERE is_active AND status = 'stalled' AND lease_token IS NULL AND next_check <= now()
        ORDER BY next_check
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks AS t
    SET lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => :lease_seconds),
        recovery_attempts = t.recovery_attempts + 1,
        updated_at = now()
    FROM due
    WHERE t.id = due.id
    RETURNING t.id, t.lease_token, t.status, t.is_active, t.recovery_attempts, now() AS at
    """
)

# A check message dramatiq gave up on: if its lease is still the row's and the task may still
# be checked, lease it afresh for a new message.
_RELEASE_DEAD_LETTER = text(
    """
    UPDATE tasks AS t
    SET lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => :lease_seconds),
        updated_at = now()
    WHERE t.id = :id AND t.lease_token = :token
      AND t.is_active AND t.status IN ('active', 'stalled')
    RETURNING t.id, t.lease_token, t.status, t.is_active, t.recovery_attempts, now() AS at
    """
)

_COUNT_STALLED = text("SELECT count(*) FROM tasks WHERE is_active AND status = 'stalled'")
_COUNT_BY_STATUS = text(
    "SELECT CASE WHEN is_active THEN status ELSE 'deactivated' END AS status, count(*) AS n "
    "FROM tasks GROUP BY 1"
)
TASK_STATES = ("active", "paused", "stalled", "failed", "deactivated")

Refusal = Literal["gone", "paused", "failed", "deactivated", "superseded"]


@dataclass(frozen=True)
class Lease:
    """A task the watchdog holds now: ``token`` is None when the lease was released instead."""

    task_id: int
    token: uuid.UUID | None
    status: str
    is_active: bool
    recovery_attempts: int
    at: datetime

    @property
    def why_released(self) -> Refusal:
        return refusal(self.is_active, self.status)


def refusal(is_active: bool, status: str) -> Refusal:
    """Why a task in this state must not be checked (it is not ``active`` or ``stalled``)."""
    if not is_active:
        return "deactivated"
    return "paused" if status == "paused" else "failed"


def _leases(rows: object) -> list[Lease]:
    leases = [
        Lease(r.id, r.lease_token, r.status, r.is_active, r.recovery_attempts, r.at)
        for r in rows  # type: ignore[attr-defined]
    ]
    return sorted(leases, key=lambda lease: lease.task_id)


async def reclaim_expired(
    session: AsyncSession, *, batch: int, lease_seconds: float
) -> list[Lease]:
    """Take over up to ``batch`` expired leases: a new lease, or none if the task is not live."""
    params = {"batch": batch, "lease_seconds": lease_seconds}
    return _leases(await session.execute(_RECLAIM_EXPIRED, params))


async def claim_recovery(session: AsyncSession, *, batch: int, lease_seconds: float) -> list[Lease]:
    """Lease up to ``batch`` stalled tasks whose recovery attempt is due, counting the attempt."""
    params = {"batch": batch, "lease_seconds": lease_seconds}
    return _leases(await session.execute(_CLAIM_RECOVERY, params))


async def release_dead_letter(
    session: AsyncSession, *, task_id: int, token: uuid.UUID, lease_seconds: float
) -> Lease | Refusal:
    """A new lease for a dead-lettered check, or why there must be no new check."""
    params = {"id": task_id, "token": token, "lease_seconds": lease_seconds}
    row = (await session.execute(_RELEASE_DEAD_LETTER, params)).first()
    if row is not None:
        return _leases([row])[0]
    task = await session.get(Task, task_id)
    if task is None:
        return "gone"
    if task.is_active and task.status in ("active", "stalled"):
        return "superseded"  # re-leased since (expired and re-sent, or checked): nothing lost
    return refusal(task.is_active, task.status)


async def count_stalled(session: AsyncSession) -> int:
    """Tasks stalled now (walks the partial index ``ix_tasks_stalled``)."""
    return int(await session.scalar(_COUNT_STALLED) or 0)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """Tasks per status, deactivated ones apart; every state present, zero if none."""
    counts = dict.fromkeys(TASK_STATES, 0)
    for row in await session.execute(_COUNT_BY_STATUS):
        counts[row.status] = int(row.n)
    return counts
