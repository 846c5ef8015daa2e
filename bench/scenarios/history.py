"""history: a watch's price over a day, a month and a year, with a year of history stored.

``WATCHES`` watches checked every 60 s, each with the history the upkeep keeps: 14 days of raw
checks (20,160 rows a watch) and a year of hourly roll-ups (8,760 a watch), generated in
PostgreSQL at that density (``generate_series``; the write path's rows, without waiting a year).
Then :func:`shared.history.history`, the query the API and ``steamwatch history`` ask, is timed
for random watches over the last day (raw checks), 30 days (hours: roll-ups and the raw tail)
and a year (6 h buckets from the roll-ups), ``QUERIES`` times each, one at a time, in this
process on its own pool: p50 and p99 per range. Also measured: the time of one upkeep pass that
rolls up an hour of all watches' checks and deletes a day past retention.

Per-watch queries touch one watch's rows through ``(task_id, checked_at)`` and
``(task_id, hour)``, so their cost follows the rows a watch has, which is what is generated
in full; the number of watches (``STEAMWATCH_BENCH_HISTORY_WATCHES``, default 200) sets the
tables' size and the generation time.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import quantile
from shared.history import Retention, history, maintain

DESCRIPTION = "history queries over 1 day, 30 days and 1 year with a year of history stored"
TARGETS = {
    "p99_1d_ms": ("<=", 50.0),
    "p99_30d_ms": ("<=", 50.0),
    "p99_1y_ms": ("<=", 50.0),
}

WATCHES = int(os.environ.get("STEAMWATCH_BENCH_HISTORY_WATCHES", "200"))
QUERIES = 200
RAW_DAYS = 14
INTERVAL = 60

_TASKS = text(
    """
    INSERT INTO tasks (owner, appid, market_hash_name, currency, kind, conditions,
                       check_interval, next_check)
    SELECT 'bench', 730, 'History Item ' || g, 3, 'lowest_price', '{"max_price": 1250}', :iv,
           now() + interval '1 day'
    FROM generate_series(1, :count) AS g
    """
)
# One watch's raw checks at a time (a statement per watch keeps memory flat).
_RAW = text(
    """
    INSERT INTO price_history (task_id, lease_token, checked_at, currency, lowest_price,
                               volume, source)
    SELECT :task, gen_random_uuid(),
           CAST(:start AS timestamptz) + make_interval(secs => g * :iv), 3,
           1000 + ((g * 7919 + :task) % 300), (g % 50), 'priceoverview'
    FROM generate_series(0, :n - 1) AS g
    """
)
_ROLLUPS = text(
    """
    INSERT INTO price_rollups (task_id, hour, currency, checks, first, min, max, last, volume)
    SELECT t.id, CAST(:start AS timestamptz) + make_interval(hours => g), 3, 60,
           1000 + ((g * 31 + t.id) % 300), 990 + ((g * 17 + t.id) % 300),
           1010 + ((g * 13 + t.id) % 300), 1000 + ((g * 11 + t.id) % 300), g % 50
    FROM tasks t, generate_series(0, :n - 1) AS g
    """
)


async def run(bench: Bench) -> dict[str, Any]:
    db = bench.database()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    hour = now.replace(minute=0)
    raw_from = hour - timedelta(days=RAW_DAYS)
    rollups_from = hour - timedelta(days=365)
    try:
        say(f"history: {WATCHES} watches, {RAW_DAYS} days of raw checks, a year of roll-ups")
        began = time.perf_counter()
        async with db.session_scope() as s:
            await s.execute(_TASKS, {"count": WATCHES, "iv": INTERVAL})
            ids = list((await s.execute(text("SELECT id FROM tasks ORDER BY id"))).scalars())
        per_watch = int((now - raw_from) / timedelta(seconds=INTERVAL))
        for done, task in enumerate(ids, start=1):
            async with db.session_scope() as s:
                await s.execute(
                    _RAW, {"task": task, "start": raw_from, "iv": INTERVAL, "n": per_watch}
                )
            if done % 50 == 0:
                say(f"  raw checks of {done}/{len(ids)} watches")
        async with db.session_scope() as s:
            hours = int((raw_from - rollups_from) / timedelta(hours=1))
            await s.execute(_ROLLUPS, {"start": rollups_from, "n": hours})
            # Everything before the raw tail's last hours is rolled up, as the upkeep leaves it.
            await s.execute(text("DELETE FROM history_state"))
            await s.execute(
                text("INSERT INTO history_state VALUES (1, :at)"), {"at": hour - timedelta(hours=2)}
            )
            await s.execute(text("ANALYZE price_history"))
            await s.execute(text("ANALYZE price_rollups"))
            sizes = (
                await s.execute(
                    text(
                        "SELECT pg_total_relation_size('price_history'), "
                        "pg_total_relation_size('price_rollups'), "
                        "(SELECT count(*) FROM price_history), (SELECT count(*) FROM price_rollups)"
                    )
                )
            ).one()
        say(
            f"  generated in {time.perf_counter() - began:.0f}s: "
            f"{sizes[2]:,} raw, {sizes[3]:,} roll-ups"
        )
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
        # One upkeep pass: an hour to roll up, a day of raw checks past retention.
        t0 = time.perf_counter()
        upkeep = await maintain(
            db,
            now + timedelta(days=1),
            Retention(raw=timedelta(days=RAW_DAYS), batch=20_000, batches=1_000, hours_per_pass=1),
        )
        upkeep_s = time.perf_counter() - t0
        days = await _sixty_days(bench)
    finally:
        await db.dispose()
    figures: dict[str, Any] = {"sizes_by_day_mb": days}
    for name, values in timings.items():
        figures[f"p50_{name}_ms"] = round(1000 * quantile(values, 0.5), 1)
        figures[f"p99_{name}_ms"] = round(1000 * quantile(values, 0.99), 1)
        figures[f"resolution_{name}"] = resolutions[name]
    figures |= {
        "watches": WATCHES,
        "raw_rows": sizes[2],
        "rollup_rows": sizes[3],
        "raw_mb": round(sizes[0] / 2**20),
        "rollups_mb": round(sizes[1] / 2**20),
        "upkeep_pass_s": round(upkeep_s, 2),
        "upkeep_rolled_hours": upkeep.rolled_hours,
        "upkeep_deleted_raw": upkeep.deleted_raw,
    }
    return figures


SIXTY_WATCHES = int(os.environ.get("STEAMWATCH_BENCH_HISTORY_SIXTY_WATCHES", "100"))


async def _sixty_days(bench: Bench) -> list[list[float]]:
    """60 simulated days, one day of checks at a time, the upkeep run after each: the size of
    price_history and price_rollups (MB) per day, flat once retention (14 days) starts."""
    from shared.db import Database

    db: Database = bench.database()
    sizes: list[list[float]] = []
    try:
        async with db.session_scope() as s:
            await s.execute(text("TRUNCATE price_history, price_rollups"))
            await s.execute(text("DELETE FROM tasks"))
            await s.execute(_TASKS, {"count": SIXTY_WATCHES, "iv": INTERVAL})
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        async with db.session_scope() as s:
            await s.execute(text("DELETE FROM history_state"))
            await s.execute(text("INSERT INTO history_state VALUES (1, :at)"), {"at": start})
        say(f"history: 60 days of {SIXTY_WATCHES} watches every {INTERVAL}s, upkeep each day")
        for day in range(60):
            begin = start + timedelta(days=day)
            end = begin + timedelta(days=1)
            await maintain(db, begin, Retention(hours_per_pass=0))  # partitions ahead
            async with db.session_scope() as s:
                await s.execute(
                    text(
                        "INSERT INTO price_history (task_id, lease_token, checked_at, currency, "
                        "lowest_price, volume, source) SELECT t.id, gen_random_uuid(), "
                        "CAST(:begin AS timestamptz) + make_interval(secs => g * :iv), 3, "
                        "1000 + (g % 300), "
                        "g % 50, "
                        "'priceoverview' FROM tasks t, generate_series(0, :n - 1) AS g"
                    ),
                    {"begin": begin, "iv": INTERVAL, "n": 86_400 // INTERVAL},
                )
            await maintain(
                db,
                end + timedelta(minutes=10),
                Retention(raw=timedelta(days=RAW_DAYS), hours_per_pass=48, batches=1_000),
            )
            async with db.session_scope() as s:
                raw, rollups = (
                    await s.execute(
                        text(
                            "SELECT (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) "
                            "FROM pg_inherits WHERE inhparent = 'price_history'::regclass), "
                            "pg_total_relation_size('price_rollups')"
                        )
                    )
                ).one()
            sizes.append([day + 1, round(raw / 2**20, 1), round(rollups / 2**20, 1)])
            if (day + 1) % 10 == 0:
                say(f"  day {day + 1}: price_history {sizes[-1][1]} MB, roll-ups {sizes[-1][2]} MB")
    finally:
        await db.dispose()
    return sizes
