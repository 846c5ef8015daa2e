"""history: 60 simulated days of checks under the upkeep, then a watch's price over a day, a
month and a year.

``WATCHES`` watches checked every 60 s (``STEAMWATCH_BENCH_HISTORY_WATCHES``, default 100; the
issue's figure is 5,000: 7.2 million checks a day). Each simulated day's checks are written
into ``price_history`` in one ``INSERT ... SELECT generate_series`` (the write path's rows, at
that density, without waiting a day), then one upkeep pass (:func:`shared.history.maintain`)
runs at that day's end as the watchdog would: it rolls the day up into hourly roll-ups and
drops the day partitions past retention (14 days). Per day: the size of the raw checks (table
and indexes) and of the roll-ups, the pass's time, and the slowest write of a probe storing a
check row every 10 ms while the pass runs (how long a check waited on the upkeep's locks).

Then a year of roll-ups before the first day is added (so a year's range has data) and
:func:`shared.history.history`, the query the API and ``steamwatch history`` ask, is timed for
random watches, as of the last day's end, over 1 day (raw checks), 30 days (hours: roll-ups
and the raw tail) and a year (6 h buckets from the roll-ups), ``QUERIES`` times each, one at a
time, on this process's own pool: p50 and p99 per range.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import quantile
from shared.db import Database
from shared.history import Retention, history, maintain

DESCRIPTION = "60 days of checks under the upkeep (sizes per day), history p99 over 1d/30d/1y"
TARGETS = {
    "p99_1d_ms": ("<=", 50.0),
    "p99_30d_ms": ("<=", 50.0),
    "p99_1y_ms": ("<=", 50.0),
    "probe_max_wait_ms": ("<=", 1000.0),
}

WATCHES = int(os.environ.get("STEAMWATCH_BENCH_HISTORY_WATCHES", "100"))
DAYS = int(os.environ.get("STEAMWATCH_BENCH_HISTORY_DAYS", "60"))
QUERIES = 200
RAW_DAYS = 14
INTERVAL = 60

_TASKS = text(
    """
    INSERT INTO tasks (owner, appid, market_hash_name, currency, kind, conditions,
                       check_interval, next_check)
    SELECT 'bench', 730, 'History Item ' || g, 3, 'lowest_price', '{"max_price": 1250}', :iv,
           now() + interval '1000 days'
    FROM generate_series(1, :count) AS g
    """
)
# A day of every watch's checks, a minute apart, each watch at its own second; stored in the
# order checks arrive (minute by minute, all watches: a nested loop over the minutes, the tasks
# inside), so one watch's rows are spread over the table as they are in production.
_DAY = text(
    """
    INSERT INTO price_history (task_id, lease_token, checked_at, currency, lowest_price,
                               volume, source)
    SELECT t.id, gen_random_uuid(),
           CAST(:begin AS timestamptz) + make_interval(secs => g * :iv + t.id % :iv), 3,
           1000 + ((g * 7919 + t.id) % 300), g % 50, 'priceoverview'
    FROM generate_series(0, :n - 1) AS g, tasks t
    """
)
_PROBE = text(
    """
    INSERT INTO price_history (task_id, lease_token, checked_at, currency, lowest_price,
                               volume, source)
    VALUES (:task, gen_random_uuid(), :at, 3, 1000, 1, 'probe')
    """
)
# Hour by hour, all watches, as the upkeep writes them (the same nested loop).
_ROLLUPS = text(
    """
    INSERT INTO price_rollups (task_id, hour, currency, checks, first, min, max, last, volume)
    SELECT t.id, CAST(:start AS timestamptz) + make_interval(hours => g), 3, 60,
           1000 + ((g * 31 + t.id) % 300), 990 + ((g * 17 + t.id) % 300),
           1010 + ((g * 13 + t.id) % 300), 1000 + ((g * 11 + t.id) % 300), g % 50
    FROM generate_series(0, :n - 1) AS g, tasks t
    """
)
_SIZES = text(
    """
    SELECT coalesce(sum(pg_table_size(inhrelid)), 0), coalesce(sum(pg_indexes_size(inhrelid)), 0),
           count(*), pg_table_size('price_rollups'), pg_indexes_size('price_rollups')
    FROM pg_inherits WHERE inhparent = 'price_history'::regclass
    """
)


async def run(bench: Bench) -> dict[str, Any]:
    db = bench.database()
    try:
        async with db.session_scope() as s:
            await s.execute(_TASKS, {"count": WATCHES, "iv": INTERVAL})
            ids = list((await s.execute(text("SELECT id FROM tasks ORDER BY id"))).scalars())
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        days, probe = await _days(db, ids, start)
        now = start + timedelta(days=DAYS)
        began = time.perf_counter()
        async with db.session_scope() as s:
            hours = 24 * (365 - DAYS)
            await s.execute(_ROLLUPS, {"start": start - timedelta(hours=hours), "n": hours})
            rollup_rows = (await s.execute(text("SELECT count(*) FROM price_rollups"))).scalar()
        # What autovacuum does to a table that only grows (its insert threshold), without
        # waiting for it: the visibility map the roll-ups' index-only scans need.
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE price_rollups"))
        say(f"  a year of roll-ups ({rollup_rows:,}) in {time.perf_counter() - began:.0f}s")
        timings, resolutions = await _queries(db, ids, now)
    finally:
        await db.dispose()
    last = days[-1]
    figures: dict[str, Any] = {}
    for name, values in timings.items():
        figures[f"p50_{name}_ms"] = round(1000 * quantile(values, 0.5), 1)
        figures[f"p99_{name}_ms"] = round(1000 * quantile(values, 0.99), 1)
        figures[f"resolution_{name}"] = resolutions[name]
    figures |= {
        "watches": WATCHES,
        "checks_per_day": WATCHES * 86_400 // INTERVAL,
        "rollup_rows": rollup_rows,
        "raw_mb_last_day": last["raw_mb"] + last["raw_index_mb"],
        "raw_mb_max": max(d["raw_mb"] + d["raw_index_mb"] for d in days),
        "upkeep_s_max": max(d["upkeep_s"] for d in days),
        "probe_max_wait_ms": round(1000 * max(probe), 1),
        "probe_p99_wait_ms": round(1000 * quantile(probe, 0.99), 1),
        "probe_writes": len(probe),
        # Per simulated day: raw MB (table, indexes, partitions), roll-ups MB (table, indexes),
        # the upkeep pass in s, and the probe's slowest write during it in ms.
        "by_day": [
            [
                d["day"],
                d["raw_mb"],
                d["raw_index_mb"],
                d["partitions"],
                d["rollups_mb"],
                d["rollups_index_mb"],
                d["upkeep_s"],
                d["probe_max_ms"],
            ]
            for d in days
        ],
        "by_day_columns": [
            "day",
            "raw_mb",
            "raw_index_mb",
            "partitions",
            "rollups_mb",
            "rollups_index_mb",
            "upkeep_s",
            "probe_max_ms",
        ],
    }
    return figures


async def _days(
    db: Database, ids: list[int], start: datetime
) -> tuple[list[dict[str, Any]], list[float]]:
    """``DAYS`` simulated days: a day's checks, then the upkeep at its end with the probe
    writing beside it; the sizes after each."""
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM history_state"))
        await s.execute(text("INSERT INTO history_state VALUES (1, :at)"), {"at": start})
    say(
        f"history: {DAYS} days of {WATCHES:,} watches every {INTERVAL}s "
        f"({WATCHES * 86_400 // INTERVAL:,} checks a day), the upkeep after each"
    )
    retention = Retention(raw=timedelta(days=RAW_DAYS), hours_per_pass=48, batches=1_000)
    out: list[dict[str, Any]] = []
    waits: list[float] = []
    t_all = time.perf_counter()
    for day in range(DAYS):
        begin = start + timedelta(days=day)
        end = begin + timedelta(days=1)
        await maintain(db, begin, Retention(hours_per_pass=0))  # partitions ahead
        async with db.session_scope() as s:
            await s.execute(_DAY, {"begin": begin, "iv": INTERVAL, "n": 86_400 // INTERVAL})
            await s.execute(text("ANALYZE price_history"))
            # The day's inserts counted now, as they would be by the time a real day closed:
            # the upkeep vacuums a closed day that has rows inserted since its last vacuum.
            await s.execute(text("SELECT pg_stat_force_next_flush()"))
        day_waits: list[float] = []
        done = asyncio.Event()
        prober = asyncio.create_task(
            _probe(db, ids[0], end + timedelta(minutes=5), day_waits, done)
        )
        t0 = time.perf_counter()
        try:
            await maintain(db, end + timedelta(minutes=10), retention)
        finally:
            upkeep_s = time.perf_counter() - t0
            done.set()
            await prober
        waits += day_waits
        async with db.session_scope() as s:
            raw, raw_index, parts, rollups, rollups_index = (await s.execute(_SIZES)).one()
        out.append(
            {
                "day": day + 1,
                "raw_mb": round(float(raw) / 2**20, 1),
                "raw_index_mb": round(float(raw_index) / 2**20, 1),
                "partitions": parts,
                "rollups_mb": round(rollups / 2**20, 1),
                "rollups_index_mb": round(rollups_index / 2**20, 1),
                "upkeep_s": round(upkeep_s, 2),
                "probe_max_ms": round(1000 * max(day_waits, default=0.0), 1),
            }
        )
        d = out[-1]
        if (day + 1) % 5 == 0 or WATCHES >= 1000:
            say(
                f"  day {day + 1}: raw {d['raw_mb']} + {d['raw_index_mb']} MB "
                f"({parts} partitions), roll-ups {d['rollups_mb']} + {d['rollups_index_mb']} MB, "
                f"upkeep {d['upkeep_s']}s, probe max {d['probe_max_ms']} ms "
                f"[{time.perf_counter() - t_all:.0f}s]"
            )
    return out, waits


async def _probe(
    db: Database, task: int, at: datetime, waits: list[float], done: asyncio.Event
) -> None:
    """A check row every 10 ms until ``done``: how long each write took."""
    while not done.is_set():
        t0 = time.perf_counter()
        async with db.session_scope() as s:
            await s.execute(_PROBE, {"task": task, "at": at})
        waits.append(time.perf_counter() - t0)
        await asyncio.sleep(0.01)


async def _queries(
    db: Database, ids: list[int], now: datetime
) -> tuple[dict[str, list[float]], dict[str, str]]:
    # As the API does once started (services/api/app.py): what start-up made is frozen out of
    # the collector's way, so a collection pass walks only what requests made since.
    gc.collect()
    gc.freeze()
    rng = random.Random(18)
    timings: dict[str, list[float]] = {"1d": [], "30d": [], "1y": []}
    resolutions: dict[str, str] = {}
    spans = {"1d": timedelta(days=1), "30d": timedelta(days=30), "1y": timedelta(days=365)}
    for _ in range(QUERIES):
        for name, span in spans.items():
            task = rng.choice(ids)
            t0 = time.perf_counter()
            async with db.session_scope() as s:
                found = await history(
                    s,
                    task_id=task,
                    interval=INTERVAL,
                    since=now - span,
                    until=now,
                    raw_kept_from=now - timedelta(days=RAW_DAYS),
                )
            timings[name].append(time.perf_counter() - t0)
            resolutions[name] = found.resolution
            assert found.points, f"no points for {name}"
    return timings, resolutions
