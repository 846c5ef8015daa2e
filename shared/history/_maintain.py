"""One pass of history upkeep: roll up closed hours, then delete what retention lets go.

Safe with several watchdog replicas: the watermark row is locked ``FOR UPDATE SKIP LOCKED``, so
one replica does a pass while the others skip it. Every step is bounded (hours rolled per pass,
rows deleted per batch, batches per pass), so a pass never holds a lock the checks wait on for
long: whole days of raw checks go with their partition; the rest in small batches by ``ctid``,
each its own short transaction.

Nothing is deleted before it is rolled up: raw checks go only when they are past retention
*and* before the watermark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.history._partitions import PREFIX, Partition, keep_partitions

ROLLED_HOURS = Counter(
    "steamwatch_history_rolled_up", "Hours of checks rolled up into price_rollups (one per hour)"
)
DELETED = Counter(
    "steamwatch_history_deleted_rows",
    "Rows history upkeep deleted past retention, by table",
    ["table"],
)
ROLLUP_LAG = Gauge(
    "steamwatch_history_rollup_lag_seconds",
    "How far the roll-up watermark is behind now: hours not yet rolled up (an hour and a few "
    "minutes is normal)",
)

# The hour is rolled up this long after it closes: a check whose transaction began before the
# hour ended (its checked_at) may commit a little after.
SETTLE = timedelta(minutes=5)


@dataclass(frozen=True)
class Retention:
    """How long each kind of history is kept; see ``STEAMWATCH_HISTORY_*``."""

    raw: timedelta = timedelta(days=14)
    rollups: timedelta = timedelta(days=365)
    seen_listings: timedelta = timedelta(days=3)
    hours_per_pass: int = 24  # hours rolled up per pass at most (catching up after downtime)
    batch: int = 5_000  # rows deleted per statement
    batches: int = 20  # statements per table and pass


@dataclass(frozen=True)
class Maintenance:
    """What one pass did."""

    rolled_hours: int = 0
    deleted_raw: int = 0
    deleted_rollups: int = 0
    deleted_seen: int = 0
    partitions_created: int = 0
    partitions_dropped: int = 0
    partitions_vacuumed: int = 0  # closed days vacuumed once (see shared.history._partitions)
    skipped: bool = False  # another replica held the watermark


_ROLL = text(
    """
    INSERT INTO price_rollups (task_id, hour, currency, checks, first, min, max, last, volume)
    SELECT task_id, date_trunc('hour', checked_at), max(currency), count(*),
           (array_agg(lowest_price ORDER BY checked_at)
              FILTER (WHERE lowest_price IS NOT NULL))[1],
           min(lowest_price), max(lowest_price),
           (array_agg(lowest_price ORDER BY checked_at DESC)
              FILTER (WHERE lowest_price IS NOT NULL))[1],
           (array_agg(volume ORDER BY checked_at DESC) FILTER (WHERE volume IS NOT NULL))[1]
    FROM price_history
    WHERE checked_at >= :start AND checked_at < :end
    GROUP BY 1, 2
    ON CONFLICT (task_id, hour) DO UPDATE SET
        currency = excluded.currency, checks = excluded.checks, first = excluded.first,
        min = excluded.min, max = excluded.max, last = excluded.last, volume = excluded.volume
    """
)


async def _roll(session: AsyncSession, now: datetime, retention: Retention) -> int | None:
    """Roll up closed hours past the watermark; None if another replica holds it."""
    row = (
        await session.execute(
            text("SELECT rolled_until FROM history_state WHERE id = 1 FOR UPDATE SKIP LOCKED")
        )
    ).one_or_none()
    if row is None:
        exists = await session.scalar(text("SELECT count(*) FROM history_state"))
        if exists:
            return None
        await session.execute(
            text("INSERT INTO history_state (id, rolled_until) VALUES (1, :at)"),
            {"at": _hour(now)},
        )
        return 0
    start: datetime = row.rolled_until
    end = min(_hour(now - SETTLE), start + timedelta(hours=retention.hours_per_pass))
    ROLLUP_LAG.set(max(0.0, (now - start).total_seconds()))
    if end <= start:
        return 0
    await session.execute(_ROLL, {"start": start, "end": end})
    await session.execute(
        text("UPDATE history_state SET rolled_until = :end WHERE id = 1"), {"end": end}
    )
    hours = int((end - start) / timedelta(hours=1))
    ROLLED_HOURS.inc(hours)
    ROLLUP_LAG.set(max(0.0, (now - end).total_seconds()))
    return hours


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


# Raw checks past retention go in batches only where a whole day cannot go at once: the table
# before it was partitioned (the first partition, from migration 0007, or the table itself on a
# database not migrated yet). Daily partitions go whole once their day is past retention, so a
# check is kept between RAW_DAYS and a day more. Deleting the expired minutes of a day partition
# in batches would rewrite every check a second time, and each batch naming rows by (tableoid,
# ctid) across partitions scans them all: at 5,000 watches, 100 million rows per batch.
_DELETE_RAW = """
    DELETE FROM {table} WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM {table}
        WHERE checked_at < least(CAST(:before AS timestamptz),
                                 (SELECT rolled_until FROM history_state WHERE id = 1))
        LIMIT :batch))
"""
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _batched_tables(found: list[Partition] | None) -> list[str]:
    """The tables raw checks are deleted from in batches (see ``_DELETE_RAW``), of
    price_history's partitions (None: not partitioned)."""
    if found is None:
        return ["price_history"]
    return [p.name for p in found if not p.name.startswith(PREFIX) and _SAFE_NAME.match(p.name)]


_DELETE_ROLLUPS = text(
    """
    DELETE FROM price_rollups WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM price_rollups WHERE hour < CAST(:before AS timestamptz) LIMIT :batch))
    """
)
# An announced listing is forgotten once no check has seen it for the longer of the retention
# and two of its watch's intervals: a listing still for sale keeps being seen (and refreshed).
_DELETE_SEEN = text(
    """
    DELETE FROM seen_listings WHERE ctid = ANY(ARRAY(
        SELECT s.ctid FROM seen_listings s JOIN tasks t ON t.id = s.task_id
        WHERE s.seen_at < CAST(:now AS timestamptz)
              - greatest(CAST(:keep AS interval), make_interval(secs => 2 * t.check_interval))
        LIMIT :batch))
    """
)


async def _delete(db: Database, statement: object, params: dict[str, object], batches: int) -> int:
    """Run a bounded DELETE until it deletes less than a batch, each in its own transaction."""
    total = 0
    for _ in range(batches):
        async with db.session_scope() as session:
            await session.execute(text("SET LOCAL lock_timeout = '1s'"))
            result = await session.execute(statement, params)  # type: ignore[call-overload]
            deleted = int(result.rowcount or 0)
        total += deleted
        if deleted < int(params["batch"]):  # type: ignore[call-overload]
            break
    return total


async def maintain(db: Database, now: datetime, retention: Retention = Retention()) -> Maintenance:
    """One pass: roll up, then delete past retention (raw only once rolled up)."""
    async with db.session_scope() as session:
        await session.execute(text("SET LOCAL lock_timeout = '1s'"))
        rolled = await _roll(session, now, retention)
    if rolled is None:
        return Maintenance(skipped=True)
    async with db.session_scope() as session:
        rolled_until = await session.scalar(
            text("SELECT rolled_until FROM history_state WHERE id = 1")
        )
    # Whole days go with their partition; rows of the first partition (the table before it
    # was partitioned) go in batches below, until it too can be dropped whole.
    parts = await keep_partitions(db, now, drop_before=min(now - retention.raw, rolled_until))
    batch, batches = retention.batch, retention.batches
    raw = 0
    for table in _batched_tables(parts.remaining):
        raw += await _delete(
            db,
            text(_DELETE_RAW.format(table=table)),
            {"before": now - retention.raw, "batch": batch},
            batches,
        )
    rollups = await _delete(
        db, _DELETE_ROLLUPS, {"before": now - retention.rollups, "batch": batch}, batches
    )
    seen = await _delete(
        db,
        _DELETE_SEEN,
        {"now": now, "keep": retention.seen_listings, "batch": batch},
        batches,
    )
    DELETED.labels(table="price_history").inc(raw)
    DELETED.labels(table="price_rollups").inc(rollups)
    DELETED.labels(table="seen_listings").inc(seen)
    return Maintenance(
        rolled_hours=rolled,
        deleted_raw=raw,
        deleted_rollups=rollups,
        deleted_seen=seen,
        partitions_created=parts.created,
        partitions_dropped=parts.dropped,
        partitions_vacuumed=len(parts.vacuumed or []),
    )
