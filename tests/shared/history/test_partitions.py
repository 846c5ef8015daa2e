"""price_history's partitions on a real PostgreSQL: the migration takes a full table over without
copying while rows keep coming, and the upkeep makes days ahead and drops them past retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, migrate
from shared.history import POINTS_MAX, Retention, history, maintain
from shared.history._partitions import partitions
from shared.history._query import _RAW
from tests.fixtures.tasks import add_tasks, insert_tasks, task_rows

ROWS = 200_000


async def _task(db: Database) -> int:
    [task_id] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AK-47 | Redline (Field-Tested)",
                "kind": "lowest_price",
                "check_interval": 60,
            }
        ],
    )
    return task_id


async def test_the_migration_keeps_every_row_and_inserts_go_on_during_it(
    fresh_database: Callable[[], str],
) -> None:
    url = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(migrate.upgrade, url=url, revision="0006")
    db = Database.create(url=url, pool_size=4, max_overflow=0)
    try:
        task = await _task(db)
        async with db.session_scope() as s:
            await s.execute(
                text(
                    "INSERT INTO price_history (task_id, lease_token, checked_at, currency, "
                    "lowest_price) SELECT :t, gen_random_uuid(), now() - make_interval(secs => g), "
                    "3, g % 1000 FROM generate_series(1, :n) g"
                ),
                {"t": task, "n": ROWS},
            )
            before = (
                await s.execute(
                    text("SELECT count(*), sum(lowest_price), max(id) FROM price_history")
                )
            ).one()
        waits: list[float] = []
        errors: list[str] = []
        running = True

        async def writer() -> None:  # a check's insert every 20 ms, as the fetcher writes it
            while running:
                began = time.perf_counter()
                try:
                    async with db.session_scope() as s:
                        await s.execute(
                            text(
                                "INSERT INTO price_history (task_id, lease_token, currency, "
                                "lowest_price) VALUES (:t, gen_random_uuid(), 3, 7)"
                            ),
                            {"t": task},
                        )
                except Exception as e:  # counted: the assertion below says what happened
                    errors.append(f"{type(e).__name__}: {e}"[:200])
                waits.append(time.perf_counter() - began)
                await asyncio.sleep(0.02)

        writing = asyncio.create_task(writer())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(migrate.upgrade, url=url)
        await asyncio.sleep(0.3)
        running = False
        await writing
        async with db.session_scope() as s:
            kind = await s.scalar(
                text("SELECT relkind::text FROM pg_class WHERE oid = 'price_history'::regclass")
            )
            after = (
                await s.execute(
                    text("SELECT count(*), sum(lowest_price) FROM price_history WHERE id <= :max"),
                    {"max": before[2]},
                )
            ).one()
            written = await s.scalar(
                text("SELECT count(*) FROM price_history WHERE id > :m"), {"m": before[2]}
            )
            fresh_id = await s.scalar(
                text(
                    "INSERT INTO price_history (task_id, lease_token, currency) "
                    "VALUES (:t, gen_random_uuid(), 3) RETURNING id"
                ),
                {"t": task},
            )
        assert kind == "p"
        assert tuple(after) == (before[0], before[1])  # every row kept, as it was
        assert written == len(waits) - len(errors) and written > 10
        # A connection's prepared statement may name the table it had before the swap: at most
        # one failed insert a connection, and never a wait of a second.
        assert len(errors) <= 4, errors
        assert max(waits) < 1.0, max(waits)
        assert fresh_id > before[2]  # ids go on from where they were
        found = await partitions(db)
        assert found is not None and "price_history_before" in {p.name for p in found}
        assert len(found) == 1 + 15  # the table before, and today's cutover plus 14 days
        # 0009: one (task_id, checked_at) index, valid, carrying the price on every partition.
        assert await _parent_indexes(db) == [("ix_price_history_task_time", True)]
        assert await _uncovered(db) == []
    finally:
        await db.dispose()


async def test_upkeep_makes_days_ahead_and_drops_days_past_retention_once_rolled_up(
    fresh_database: Callable[[], str],
) -> None:
    # A database of its own: dropping partitions 30 days on would leave the shared one without
    # a partition for today.
    url = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(migrate.upgrade, url=url)
    db = Database.create(url=url, pool_size=2, max_overflow=0)
    try:
        await _upkeep_30_days_on(db)
    finally:
        await db.dispose()


async def _upkeep_30_days_on(db: Database) -> None:
    task = await _task(db)
    found = await partitions(db)
    assert found is not None
    later = datetime.now(UTC) + timedelta(days=30)
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM history_state"))
        await s.execute(
            text("INSERT INTO history_state VALUES (1, :at)"),
            {"at": (later - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)},
        )
    done = await maintain(db, later, Retention(raw=timedelta(days=14), hours_per_pass=1))
    after = await partitions(db)
    assert after is not None
    names = {p.name for p in after}
    # Made up to 14 days after "today" (30 days on); the first partition and the first days,
    # whose last moment is before the roll-up watermark and retention, are gone.
    assert f"price_history_p{(later + timedelta(days=14)):%Y%m%d}" in names
    assert "price_history_before" not in names and done.partitions_dropped >= 2
    oldest = min(p.upper for p in after if p.upper is not None)
    assert oldest > later - timedelta(days=21)
    assert done.partitions_created == 15  # the days from "today" (30 days on) to 14 after
    assert await _uncovered(db) == []  # days made later get the covering index too
    # A check today (30 days on) has a partition to land in.
    async with db.session_scope() as s:
        await _check_at(s, task, later)


async def test_a_day_partition_goes_whole_never_a_row_at_a_time(
    fresh_database: Callable[[], str],
) -> None:
    # Deleting a day's expired minutes row by row would write every check twice; the day waits
    # until all of it is past retention and goes with its partition.
    url = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(migrate.upgrade, url=url)
    db = Database.create(url=url, pool_size=2, max_overflow=0)
    try:
        task = await _task(db)
        found = await partitions(db)
        assert found is not None
        day = min(p.upper for p in found if p.upper is not None) + timedelta(days=1)
        async with db.session_scope() as s:
            for at in (day + timedelta(hours=10), day + timedelta(hours=23)):
                await _check_at(s, task, at)
            await s.execute(text("DELETE FROM history_state"))
            await s.execute(
                text("INSERT INTO history_state VALUES (1, :at)"), {"at": day + timedelta(days=20)}
            )
        keep = Retention(raw=timedelta(days=14), hours_per_pass=0)
        # Half the day is past retention: nothing of it goes yet.
        half = await maintain(db, day + timedelta(days=14, hours=12), keep)
        name = f"price_history_p{day:%Y%m%d}"
        assert half.deleted_raw == 0
        assert name in {p.name for p in await partitions(db) or []}
        assert await _count(db, "SELECT count(*) FROM price_history") == 2
        # All of it is: the partition goes, and its checks with it.
        whole = await maintain(db, day + timedelta(days=15, hours=1), keep)
        assert whole.partitions_dropped >= 1 and whole.deleted_raw == 0
        assert await _count(db, "SELECT count(*) FROM price_history") == 0
        assert name not in {p.name for p in await partitions(db) or []}
    finally:
        await db.dispose()


async def _check_at(s: AsyncSession, task: int, at: datetime) -> None:
    await s.execute(
        text(
            "INSERT INTO price_history (task_id, lease_token, checked_at, currency) "
            "VALUES (:t, gen_random_uuid(), :at, 3)"
        ),
        {"t": task, "at": at},
    )


# Partitions of price_history whose (task_id, checked_at) index does not carry the price.
_UNCOVERED = """
    SELECT c.relname FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid
    WHERE p.inhparent = 'price_history'::regclass AND NOT EXISTS (
        SELECT 1 FROM pg_indexes i WHERE i.tablename = c.relname
          AND i.indexdef LIKE '%(task_id, checked_at) INCLUDE (lowest_price, volume)')
    ORDER BY 1
"""


async def _uncovered(db: Database) -> list[str]:
    async with db.session_scope() as s:
        return list((await s.execute(text(_UNCOVERED))).scalars())


async def _parent_indexes(db: Database) -> list[tuple[str, bool]]:
    async with db.session_scope() as s:
        rows = await s.execute(
            text(
                "SELECT c.relname, x.indisvalid FROM pg_index x "
                "JOIN pg_class c ON c.oid = x.indexrelid "
                "WHERE x.indrelid = 'price_history'::regclass ORDER BY 1"
            )
        )
        return [(name, valid) for name, valid in rows]


async def _count(db: Database, sql: str) -> int:
    async with db.session_scope() as s:
        return int((await s.execute(text(sql))).scalar_one())


async def test_dropping_and_making_partitions_never_holds_a_check_up_for_a_second(
    fresh_database: Callable[[], str],
) -> None:
    """Issue 18: partition upkeep while checks are stored: every insert is timed."""
    url = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(migrate.upgrade, url=url)
    db = Database.create(url=url, pool_size=4, max_overflow=0)
    try:
        task = await _task(db)
        now = datetime.now(UTC)
        # Pretend the database is older: the first partition and 10 old days past retention,
        # all rolled up, to be dropped while a check is stored every 10 ms.
        async with db.session_scope() as s:
            await s.execute(text("ALTER TABLE price_history DETACH PARTITION price_history_before"))
            await s.execute(text("DROP TABLE price_history_before"))
            first = (now - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
            for day in range(10):
                start = first + timedelta(days=day)
                await s.execute(
                    text(
                        f"CREATE TABLE price_history_p{start:%Y%m%d} PARTITION OF price_history "
                        f"FOR VALUES FROM ('{start.isoformat()}') "
                        f"TO ('{(start + timedelta(days=1)).isoformat()}')"
                    )
                )
                await s.execute(
                    text(
                        "INSERT INTO price_history (task_id, lease_token, checked_at, currency) "
                        "SELECT :t, gen_random_uuid(), "
                        "CAST(:at AS timestamptz) + make_interval(secs => g), 3 "
                        "FROM generate_series(1, 20000) g"
                    ),
                    {"t": task, "at": start},
                )
            today = now.replace(hour=0, minute=0, second=0, microsecond=0)
            await s.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS price_history_p{today:%Y%m%d} PARTITION OF "
                    f"price_history FOR VALUES FROM ('{today.isoformat()}') "
                    f"TO ('{(today + timedelta(days=1)).isoformat()}')"
                )
            )
            await s.execute(text("DELETE FROM history_state"))
            await s.execute(
                text("INSERT INTO history_state VALUES (1, :at)"),
                {"at": now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)},
            )
            # ... and the last days ahead not made yet: the pass makes them.
            for ahead in range(10, 16):
                day = today + timedelta(days=ahead)
                await s.execute(text(f"DROP TABLE IF EXISTS price_history_p{day:%Y%m%d}"))
        waits: list[float] = []
        running = True

        async def writer() -> None:
            while running:
                began = time.perf_counter()
                async with db.session_scope() as s:
                    await s.execute(
                        text(
                            "INSERT INTO price_history (task_id, lease_token, currency) "
                            "VALUES (:t, gen_random_uuid(), 3)"
                        ),
                        {"t": task},
                    )
                waits.append(time.perf_counter() - began)
                await asyncio.sleep(0.01)

        writing = asyncio.create_task(writer())
        await asyncio.sleep(0.2)
        done = await maintain(db, now, Retention(raw=timedelta(days=14), hours_per_pass=1))
        await asyncio.sleep(0.2)
        running = False
        await writing
        assert done.partitions_dropped == 10 and done.partitions_created >= 4
        assert len(waits) > 20 and max(waits) < 1.0, max(waits)
    finally:
        await db.dispose()


def _scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's leaf nodes (the scans), depth first."""
    children = plan.get("Plans", [])
    return [scan for child in children for scan in _scans(child)] if children else [plan]


async def test_a_watch_s_day_is_read_from_the_index_alone(
    fresh_database: Callable[[], str],
) -> None:
    """Issue 18 (migration 0009): checks are written time-major, so a watch's day lies on a
    page per check; once the day has closed the upkeep vacuums it, and the query reads it from
    the covering index, not the table."""
    url = await asyncio.to_thread(fresh_database)
    await asyncio.to_thread(migrate.upgrade, url=url)
    db = Database.create(url=url, pool_size=2, max_overflow=0)
    try:
        tasks = await insert_tasks(db, task_rows(30))
        found = await partitions(db)
        assert found is not None
        day = min(p.upper for p in found if p.upper is not None)  # the first daily partition
        async with db.session_scope() as s:
            await s.execute(
                text(
                    "INSERT INTO price_history (task_id, lease_token, checked_at, currency, "
                    "lowest_price, volume) "
                    "SELECT t, gen_random_uuid(), CAST(:day AS timestamptz) + make_interval("
                    "mins => m), 1, 100 + m % 7, m FROM generate_series(0, 1439) m, "
                    "unnest(CAST(:tasks AS bigint[])) t ORDER BY m, t"
                ),
                {"day": day, "tasks": tasks},
            )
            await s.execute(text("SELECT pg_stat_force_next_flush()"))
        keep = Retention(raw=timedelta(days=14), hours_per_pass=0)
        still_open = await maintain(db, day + timedelta(hours=23), keep)
        closed = await maintain(db, day + timedelta(days=1, minutes=6), keep)
        again = await maintain(db, day + timedelta(days=1, minutes=7), keep)
        assert (still_open.partitions_vacuumed, closed.partitions_vacuumed) == (0, 1)
        assert again.partitions_vacuumed == 0  # once
        task = tasks[len(tasks) // 2]
        since, until = day, day + timedelta(days=1)
        async with db.session_scope() as s:
            got = await history(s, task_id=task, interval=60, since=since, until=until)
            [[plan]] = (
                await s.execute(
                    text(f"EXPLAIN (ANALYZE, FORMAT JSON) {_RAW.text}"),
                    {"task": task, "since": since, "until": until, "points": POINTS_MAX},
                )
            ).one()
        assert got.resolution == "raw" and len(got.points) == 1440
        assert [p.volume for p in got.points[:3]] == [0, 1, 2]
        scans = [scan for scan in _scans(plan["Plan"]) if scan.get("Actual Loops")]
        assert scans and {scan["Node Type"] for scan in scans} == {"Index Only Scan"}, scans
        assert sum(scan["Heap Fetches"] for scan in scans) == 0
    finally:
        await db.dispose()
