"""``price_history``'s daily partitions: made ahead, dropped past retention, never blocking checks.

Partitions are named ``price_history_pYYYYMMDD`` and hold one UTC day; the first partition
(``price_history_before``, from migration 0007) holds everything before the cutover. A
partition is dropped once its last moment is past the raw retention *and* rolled up, by
``DETACH PARTITION … CONCURRENTLY`` (a SHARE UPDATE EXCLUSIVE lock on the table: inserts go on)
and then ``DROP TABLE`` of the detached table, which no check touches any more. Every statement
runs with a one-second ``lock_timeout``: a pass that cannot have its lock at once gives up and
the next one tries again.

A day that has closed is vacuumed once (one a pass, the newest first): its rows never change
again, and with its visibility map set a watch's day is read from the covering index alone
(migration 0009). Autovacuum would leave the last hours of each day unmarked: it follows
inserts, and a closed day gets none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import Database

log = structlog.get_logger(__name__)

PREFIX = "price_history_p"
DAYS_AHEAD = 14

PARTITIONS = Gauge("steamwatch_history_partitions", "Partitions of price_history")
DAYS_READY = Gauge(
    "steamwatch_history_partitions_ahead",
    "Days after today that already have a price_history partition (checks after the last one "
    "could not be stored)",
)
DROPPED = Counter("steamwatch_history_partitions_dropped", "price_history partitions dropped")
VACUUMED = Counter(
    "steamwatch_history_partitions_vacuumed",
    "Closed days of price_history vacuumed once (their visibility map set for index-only reads)",
)
#: A day is vacuumed this long after it closed: a check that began before midnight is stored.
CLOSED_AFTER = timedelta(minutes=5)

_LIST = text(
    """
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
           i.inhdetachpending AS pending
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'price_history'::regclass
    """
)
_UPPER = re.compile(r"TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    upper: datetime | None  # None: MAXVALUE or unreadable
    pending: bool  # a DETACH CONCURRENTLY that did not finish


@dataclass(frozen=True)
class PartitionWork:
    created: int = 0
    dropped: int = 0
    vacuumed: list[str] | None = None  # closed days vacuumed by this pass
    # The partitions after the pass; None when price_history is not partitioned.
    remaining: list[Partition] | None = None


def _parse(row: tuple[str, str | None, bool | None]) -> Partition:
    name, bound, pending = row
    match = _UPPER.search(bound or "")
    upper = None
    if match:
        upper = datetime.fromisoformat(match[1]).astimezone(UTC)
    return Partition(name, upper, bool(pending))


async def partitions(db: Database) -> list[Partition] | None:
    """The partitions of price_history, or None when it is not partitioned."""
    async with db.session_scope() as s:
        kind = await s.scalar(
            text("SELECT relkind::text FROM pg_class WHERE oid = 'price_history'::regclass")
        )
        if kind != "p":
            return None
        rows = (await s.execute(_LIST)).all()
        return [_parse((str(r.name), r.bound, r.pending)) for r in rows]


async def keep_partitions(
    db: Database, now: datetime, *, drop_before: datetime, ahead: int = DAYS_AHEAD
) -> PartitionWork:
    """Make the days up to ``ahead`` after today; drop partitions ending at or before
    ``drop_before``."""
    found = await partitions(db)
    if found is None:
        return PartitionWork()
    created = await _create_ahead(db, now, found, ahead)
    dropped = await _drop_old(db, found, drop_before)
    remaining = await partitions(db) or []
    vacuumed = await _vacuum_closed(db, now, remaining)
    PARTITIONS.set(len(remaining))
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = max((p.upper for p in remaining if p.upper is not None), default=today)
    DAYS_READY.set(max(0, (last - today).days - 1))
    return PartitionWork(created=created, dropped=dropped, vacuumed=vacuumed, remaining=remaining)


async def _create_ahead(db: Database, now: datetime, found: list[Partition], ahead: int) -> int:
    covered_to = max((p.upper for p in found if p.upper is not None), default=None)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(today, covered_to) if covered_to is not None else today
    made = 0
    day = start
    while day <= today + timedelta(days=ahead):
        name = f"{PREFIX}{day:%Y%m%d}"
        try:
            async with db.session_scope() as s:
                await s.execute(text("SET LOCAL lock_timeout = '1s'"))
                await s.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF price_history "
                        f"FOR VALUES FROM ('{day.isoformat()}') "
                        f"TO ('{(day + timedelta(days=1)).isoformat()}')"
                    )
                )
            made += 1
        except DBAPIError as e:
            log.warning(
                "partition not made; the next pass tries again",
                partition=name,
                error=str(e.orig)[:200],
            )
            break
        day += timedelta(days=1)
    return made


async def _drop_old(db: Database, found: list[Partition], drop_before: datetime) -> int:
    dropped = 0
    for part in sorted(found, key=lambda p: p.upper or datetime.max.replace(tzinfo=UTC)):
        if part.upper is None or part.upper > drop_before:
            continue
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                await auto.execute(text("SET lock_timeout = '1s'"))
                how = "FINALIZE" if part.pending else "CONCURRENTLY"
                await auto.execute(
                    text(f"ALTER TABLE price_history DETACH PARTITION {part.name} {how}")
                )
                await auto.execute(text(f"DROP TABLE {part.name}"))
            except DBAPIError as e:
                log.warning(
                    "partition not dropped; the next pass tries again",
                    partition=part.name,
                    error=str(e.orig)[:200],
                )
                break
        dropped += 1
        DROPPED.inc()
        log.info("partition dropped", partition=part.name, ended=part.upper.isoformat())
    return dropped


# Closed days with rows inserted since their last vacuum (by the upkeep or autovacuum).
_UNVACUUMED = text(
    """
    SELECT relname FROM pg_stat_user_tables
    WHERE relname = ANY(:names) AND n_ins_since_vacuum > 0
    """
)


async def _vacuum_closed(db: Database, now: datetime, found: list[Partition]) -> list[str]:
    """VACUUM (ANALYZE) the newest closed day with rows inserted since its last vacuum (one a
    pass)."""
    closed = {
        p.name: p.upper for p in found if p.upper is not None and p.upper + CLOSED_AFTER <= now
    }
    if not closed:
        return []
    async with db.autocommit() as conn:
        todo = (await conn.execute(_UNVACUUMED, {"names": list(closed)})).scalars().all()
    if not todo:
        return []
    newest = max(todo, key=lambda name: closed[name])
    async with db.autocommit() as conn:
        try:
            # SHARE UPDATE EXCLUSIVE: checks and history queries go on meanwhile.
            await conn.execute(text(f"VACUUM (ANALYZE) {newest}"))
        except DBAPIError as e:
            log.warning(
                "closed day not vacuumed; the next pass tries again",
                partition=newest,
                error=str(e.orig)[:200],
            )
            return []
    VACUUMED.inc()
    log.info("closed day vacuumed", partition=newest, days_left=len(todo) - 1)
    return [newest]
