"""How a task's row moves: claimed under a lease, then released with its next check in the future.

Every transition is one conditional UPDATE on ``(id, lease_token)``: a check whose lease was
taken from it (expired and re-sent) changes nothing. Whatever happens, a released task has a
``next_check`` ahead of it: success schedules the interval (and makes a stalled task active
again), failure a capped backoff, five failures in a row make it ``stalled``, a failed recovery
attempt waits for the next step of the recovery schedule, the last one makes it ``failed``, and
"no proxy free until T" reschedules at T without counting as an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.alerts import Event, Watch, failed, stalled
from shared.db import LAST_ERROR_MAX
from shared.steam import Item

if TYPE_CHECKING:
    from shared.config import Settings

MAX_CONSECUTIVE_ERRORS = 5
BACKOFF_FLOOR = 10  # seconds: the first retry of a very short interval
BACKOFF_CAP = 900  # seconds: however many errors, retry at least every 15 minutes
# The seed's recovery loop: 60 s, doubling, capped at 600 s, at most 10 attempts.
RECOVERY_BASE = 60
RECOVERY_FACTOR = 2
RECOVERY_CAP = 600
RECOVERY_ATTEMPTS = 10

# Constants are literals, not parameters, so PostgreSQL can match the partial index
# ix_tasks_due even in a generic plan; only the batch and lease length vary.
_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM tasks
        WHERE is_active AND status = 'active' AND lease_token IS NULL
          AND next_check <= now() - make_interval(secs => :overdue_by)
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

# A judged check also leaves its condition state, unless the watch's conditions changed while
# Steam answered (the API then reset the state: a judgment of the old conditions is void).
_RELEASE = """
    UPDATE tasks AS t
    SET consecutive_errors = 0, last_error = NULL, recovery_attempts = 0,
        status = CASE WHEN t.status = 'stalled' THEN 'active' ELSE t.status END,
        next_check = now() + make_interval(secs => t.check_interval),
        last_checked_at = now(), last_success_at = now(),
        condition_state = CASE
            WHEN :state IS NOT NULL AND t.conditions = :conditions THEN :state
            ELSE t.condition_state END,
        lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    FROM (SELECT id, status FROM tasks WHERE id = :id AND lease_token = :token FOR UPDATE) AS p
    WHERE t.id = p.id
    RETURNING t.next_check, p.status AS previous_status,
              t.is_active AND t.status = 'active' AS live,
              :state IS NOT NULL AND t.conditions = :conditions AS judged
"""
_JSON_PARAMS = (
    bindparam("state", type_=JSONB(none_as_null=True)),
    bindparam("conditions", type_=JSONB(none_as_null=True)),
)
_SUCCEED = text(_RELEASE).bindparams(*_JSON_PARAMS)

# What a check saw, stored by the statement that releases its lease (one round trip, and only
# if the lease was still the check's).
SNAPSHOT_COLUMNS: dict[str, str] = {
    "currency": "smallint",
    "lowest_price": "bigint",
    "median_price": "bigint",
    "volume": "integer",
    "highest_buy": "bigint",
    "lowest_sell": "bigint",
    "buy_count": "integer",
    "sell_count": "integer",
    "listings": "jsonb",
    "book": "jsonb",
    "source": "text",
}
_SUCCEED_AND_STORE = text(
    f"""
    WITH released AS ({_RELEASE}),
    stored AS (
        INSERT INTO price_history (task_id, lease_token, {", ".join(SNAPSHOT_COLUMNS)})
        SELECT CAST(:id AS bigint), CAST(:token AS uuid), {
        ", ".join(f"CAST(:{name} AS {kind})" for name, kind in SNAPSHOT_COLUMNS.items())
    }
        FROM released
    )
    SELECT * FROM released
    """
).bindparams(
    *_JSON_PARAMS,
    bindparam("listings", type_=JSONB(none_as_null=True)),
    bindparam("book", type_=JSONB(none_as_null=True)),
)

# The right-hand sides see the row before this failure. A permanent failure (an item Steam
# confirmed it does not know) fails the task at once. Otherwise an active task backs off until
# its fifth failure stalls it; a stalled one waits for the next recovery step, and its last
# recovery attempt (counted when the watchdog claimed it) makes it failed.
_FAIL = text(
    """
    UPDATE tasks AS t
    SET consecutive_errors = t.consecutive_errors + 1,
        last_error = :error,
        status = CASE
            WHEN :permanent THEN 'failed'
            WHEN t.status = 'active' AND t.consecutive_errors + 1 >= :max_errors THEN 'stalled'
            WHEN t.status = 'stalled' AND t.recovery_attempts >= :max_attempts THEN 'failed'
            ELSE t.status END,
        next_check = now() + make_interval(secs => CASE
            WHEN t.status = 'active' AND t.consecutive_errors + 1 >= :max_errors
                THEN :recovery_base
            WHEN t.status = 'stalled' AND t.recovery_attempts >= :max_attempts
                THEN :recovery_cap
            WHEN t.status = 'stalled'
                THEN LEAST(:recovery_base
                           * power(CAST(:recovery_factor AS float8), t.recovery_attempts),
                           :recovery_cap)
            ELSE LEAST(GREATEST(t.check_interval, :floor) * power(2, t.consecutive_errors), :cap)
        END),
        last_checked_at = now(),
        lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    FROM (SELECT id, status FROM tasks WHERE id = :id AND lease_token = :token FOR UPDATE) AS p
    WHERE t.id = p.id
    RETURNING t.consecutive_errors, t.status, t.next_check, t.recovery_attempts,
              p.status AS previous_status, t.is_active
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
    recovery_attempts: int
    previous_status: str
    is_active: bool = True

    @property
    def became_stalled(self) -> bool:
        return self.previous_status == "active" and self.status == "stalled"

    @property
    def became_failed(self) -> bool:
        return self.previous_status != "failed" and self.status == "failed"


async def claim_due(
    session: AsyncSession, *, batch: int, lease_seconds: float, overdue_by: float = 0
) -> list[Claim]:
    """Lease up to ``batch`` due tasks, oldest first; rows another claimer holds are skipped.

    ``overdue_by`` takes only tasks due at least that many seconds ago (the watchdog's catch-up
    for a scheduler that is down or held back).
    """
    params = {"batch": batch, "lease_seconds": lease_seconds, "overdue_by": overdue_by}
    rows = await session.execute(_CLAIM, params)
    claims = [Claim(r.id, r.lease_token, r.next_check, r.claimed_at) for r in rows]
    # UPDATE ... RETURNING keeps no order: the most overdue are sent first.
    return sorted(claims, key=lambda c: (c.next_check, c.task_id))


@dataclass(frozen=True)
class Success:
    next_check: datetime
    previous_status: str
    live: bool = True  # active, not paused or deleted while Steam answered
    judged: bool = False  # the condition state given was stored

    @property
    def recovered(self) -> bool:
        return self.previous_status == "stalled"


async def release_success(
    session: AsyncSession | AsyncConnection,
    *,
    task_id: int,
    token: uuid.UUID,
    state: Mapping[str, Any] | None = None,
    conditions: Mapping[str, Any] | None = None,
    snapshot: Mapping[str, Any] | None = None,
) -> Success | None:
    """The check succeeded: reset the error count, next check one interval from now.

    ``state`` (the judgment of ``conditions``, the watch's conditions when the check began) is
    stored only if the conditions are still those. ``snapshot`` (what the check saw, keyed by
    :data:`SNAPSHOT_COLUMNS`; missing ones stored as NULL) is stored in the same statement.
    Returns None when the lease was no longer ours (then nothing is written).
    """
    params = {"id": task_id, "token": token, "state": state, "conditions": conditions}
    statement = _SUCCEED
    if snapshot is not None:
        params |= {name: snapshot.get(name) for name in SNAPSHOT_COLUMNS}
        statement = _SUCCEED_AND_STORE
    row = (await session.execute(statement, params)).first()
    if row is None:
        return None
    return Success(row.next_check, row.previous_status, bool(row.live), bool(row.judged))


@dataclass(frozen=True)
class Backoff:
    """Retry delays after failures.

    An active task retries after max(interval, floor) * 2^(errors-1) seconds, capped, and stalls
    at its fifth failure. A stalled task's recovery attempt k (1-based) comes
    :meth:`recovery_delay` (k) seconds after the failure before it; the failure of attempt
    ``recovery_attempts`` makes the task failed.
    """

    floor: float = BACKOFF_FLOOR
    cap: float = BACKOFF_CAP
    recovery_base: float = RECOVERY_BASE
    recovery_factor: float = RECOVERY_FACTOR
    recovery_cap: float = RECOVERY_CAP
    recovery_attempts: int = RECOVERY_ATTEMPTS

    def recovery_delay(self, attempt: int) -> float:
        """Seconds from the failure before recovery attempt ``attempt`` to that attempt."""
        return float(
            min(self.recovery_base * self.recovery_factor ** (attempt - 1), self.recovery_cap)
        )


def backoff_of(settings: Settings) -> Backoff:
    """The retry and recovery schedule a process's settings ask for."""
    return Backoff(
        floor=settings.backoff_floor,
        cap=settings.backoff_cap,
        recovery_base=settings.recovery_base,
        recovery_factor=settings.recovery_factor,
        recovery_cap=settings.recovery_cap,
        recovery_attempts=settings.recovery_attempts,
    )


async def release_failure(
    session: AsyncSession,
    *,
    task_id: int,
    token: uuid.UUID,
    error: str,
    backoff: Backoff = Backoff(),
    permanent: bool = False,
) -> Failure | None:
    """The check failed: count it and schedule the retry (backoff, stall, recovery or failed).

    ``permanent``: asking again cannot help (an item Steam confirmed it does not know): the
    task is failed at once. Returns None when the lease was no longer ours (the row is then
    left alone).
    """
    params = {
        "id": task_id,
        "token": token,
        "permanent": permanent,
        "error": error[:LAST_ERROR_MAX],
        "max_errors": MAX_CONSECUTIVE_ERRORS,
        "floor": backoff.floor,
        "cap": backoff.cap,
        "recovery_base": backoff.recovery_base,
        "recovery_factor": backoff.recovery_factor,
        "recovery_cap": backoff.recovery_cap,
        "max_attempts": backoff.recovery_attempts,
    }
    row = (await session.execute(_FAIL, params)).first()
    if row is None:
        return None
    return Failure(
        row.consecutive_errors,
        row.status,
        row.next_check,
        row.recovery_attempts,
        row.previous_status,
        bool(row.is_active),
    )


async def defer(
    session: AsyncSession | AsyncConnection, *, task_id: int, token: uuid.UUID, at: datetime
) -> datetime | None:
    """No proxy may call Steam before ``at``: try again then; not an error."""
    row = (await session.execute(_DEFER, {"id": task_id, "token": token, "at": at})).first()
    return None if row is None else row.next_check


def transition_events(
    watch: Watch, failure: Failure, *, lease_token: uuid.UUID, at: datetime, error: str
) -> tuple[Event, ...]:
    """What the owner hears of a failed check: that the watch stalled, or that it gave up."""
    if not failure.is_active:  # deleted while it was checked: nobody to tell
        return ()
    if failure.became_failed:
        return (
            failed(
                watch,
                lease_token=lease_token,
                at=at,
                error=error[:LAST_ERROR_MAX],
                recovery_attempts=failure.recovery_attempts,
                consecutive_errors=failure.consecutive_errors,
            ),
        )
    if failure.became_stalled:
        return (
            stalled(
                watch,
                lease_token=lease_token,
                at=at,
                error=error[:LAST_ERROR_MAX],
                consecutive_errors=failure.consecutive_errors,
            ),
        )
    return ()


_WATCH = text(
    """
    SELECT id, owner, kind, appid, market_hash_name, currency, conditions, condition_state
    FROM tasks WHERE id = :id
    """
)


async def watch_of(session: AsyncSession, task_id: int) -> Watch | None:
    """The task as its events describe it (None if it is gone)."""
    row = (await session.execute(_WATCH, {"id": task_id})).first()
    if row is None:
        return None
    return Watch(
        task_id=row.id,
        owner=row.owner,
        kind=row.kind,
        item=Item(row.appid, row.market_hash_name, row.currency),
        conditions=row.conditions or {},
        condition_state=row.condition_state,
    )
