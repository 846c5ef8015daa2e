"""How a task's row moves: claimed under a lease, then released with its next check in the future.

Every transition is one conditional UPDATE on ``(id, lease_token)``: a check whose lease was
taken from it (expired and re-sent) changes nothing. Whatever happens, a released task has a
``next_check`` ahead of it: success schedules the interval, failure a capped backoff, five
failures in a row make it ``stalled`` (the watchdog's to recover), and "no proxy free until T"
reschedules at T without counting as an error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import LAST_ERROR_MAX

MAX_CONSECUTIVE_ERRORS = 5
BACKOFF_FLOOR = 10  # seconds: the first retry of a very short interval
BACKOFF_CAP = 900  # seconds: however many errors, retry at least every 15 minutes
STALLED_FIRST_RETRY = 60  # seconds: the seed's first recovery delay; the watchdog takes over

# Constants are literals, not parameters, so PostgreSQL can match the partial index
# ix_tasks_due even in a generic plan; only the batch and lease length vary.
_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM tasks
        WHERE is_active AND status = 'active' AND lease_token IS NULL AND next_check <= now()
        ORDER BY next_check
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks AS t
    SET lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => :lease_seconds),
        updated_at = now()
    FROM due
    WHERE t.id = due.id
    RETURNING t.id, t.lease_token, t.next_check, now() AS claimed_at
    """
)

_SUCCEED = text(
    """
    UPDATE tasks AS t
    SET consecutive_errors = 0, last_error = NULL, recovery_attempts = 0,
        status = CASE WHEN t.status = 'stalled' THEN 'active' ELSE t.status END,
        next_check = now() + make_interval(secs => t.check_interval),
        last_checked_at = now(), last_success_at = now(),
        lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    FROM (SELECT id, status FROM tasks WHERE id = :id AND lease_token = :token FOR UPDATE) AS p
    WHERE t.id = p.id
    RETURNING t.next_check, p.status AS previous_status
    """
)

# consecutive_errors on the right-hand side is the value before this failure.
_FAIL = text(
    """
    UPDATE tasks
    SET consecutive_errors = consecutive_errors + 1,
        last_error = :error,
        status = CASE WHEN consecutive_errors + 1 >= :max_errors AND status = 'active'
                      THEN 'stalled' ELSE status END,
        next_check = now() + make_interval(secs => CASE
            WHEN consecutive_errors + 1 >= :max_errors AND status = 'active' THEN :stalled_retry
            ELSE LEAST(GREATEST(check_interval, :floor) * power(2, consecutive_errors), :cap)
        END),
        last_checked_at = now(),
        lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id = :id AND lease_token = :token
    RETURNING consecutive_errors, status, next_check
    """
)

_DEFER = text(
    """
    UPDATE tasks
    SET next_check = GREATEST(:at, now()), lease_token = NULL, lease_expires_at = NULL,
        updated_at = now()
    WHERE id = :id AND lease_token = :token
    RETURNING next_check
    """
)


@dataclass(frozen=True)
class Claim:
    task_id: int
    lease_token: uuid.UUID
    next_check: datetime
    claimed_at: datetime

    @property
    def lag(self) -> float:
        """Seconds between when the check was due and when it was claimed."""
        return max(0.0, (self.claimed_at - self.next_check).total_seconds())


@dataclass(frozen=True)
class Failure:
    consecutive_errors: int
    status: str
    next_check: datetime

    @property
    def became_stalled(self) -> bool:
        return self.status == "stalled" and self.consecutive_errors == MAX_CONSECUTIVE_ERRORS


async def claim_due(session: AsyncSession, *, batch: int, lease_seconds: float) -> list[Claim]:
    """Lease up to ``batch`` due tasks, oldest first; rows another claimer holds are skipped."""
    rows = await session.execute(_CLAIM, {"batch": batch, "lease_seconds": lease_seconds})
    claims = [Claim(r.id, r.lease_token, r.next_check, r.claimed_at) for r in rows]
    # UPDATE ... RETURNING keeps no order: the most overdue are sent first.
    return sorted(claims, key=lambda c: (c.next_check, c.task_id))


@dataclass(frozen=True)
class Success:
    next_check: datetime
    previous_status: str

    @property
    def recovered(self) -> bool:
        return self.previous_status == "stalled"


async def release_success(
    session: AsyncSession, *, task_id: int, token: uuid.UUID
) -> Success | None:
    """The check succeeded: reset the error count, next check one interval from now.

    Returns None when the lease was no longer ours (the row is then left alone).
    """
    row = (await session.execute(_SUCCEED, {"id": task_id, "token": token})).first()
    return None if row is None else Success(row.next_check, row.previous_status)


@dataclass(frozen=True)
class Backoff:
    """Retry delays after failures: max(interval, floor) * 2^(errors-1), capped; then stalled."""

    floor: float = BACKOFF_FLOOR
    cap: float = BACKOFF_CAP
    stalled_retry: float = STALLED_FIRST_RETRY


async def release_failure(
    session: AsyncSession,
    *,
    task_id: int,
    token: uuid.UUID,
    error: str,
    backoff: Backoff = Backoff(),
) -> Failure | None:
    """The check failed: count it, retry after a capped backoff, stall after five in a row."""
    params = {
        "id": task_id,
        "token": token,
        "error": error[:LAST_ERROR_MAX],
        "max_errors": MAX_CONSECUTIVE_ERRORS,
        "stalled_retry": backoff.stalled_retry,
        "floor": backoff.floor,
        "cap": backoff.cap,
    }
    row = (await session.execute(_FAIL, params)).first()
    return None if row is None else Failure(row.consecutive_errors, row.status, row.next_check)


async def defer(
    session: AsyncSession, *, task_id: int, token: uuid.UUID, at: datetime
) -> datetime | None:
    """No proxy may call Steam before ``at``: try again then; not an error."""
    row = (await session.execute(_DEFER, {"id": task_id, "token": token, "at": at})).first()
    return None if row is None else row.next_check
