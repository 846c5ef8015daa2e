"""migration: price_history partitioned (migration 0007) under a million rows, checks running.

The database starts at 0006 (one plain price_history) holding ``ROWS`` checks of ``TASKS``
watches over the last 13 days (inside the raw retention, so the upkeep keeps them). The whole
system runs (simulator, scheduler, fetcher, publisher, watchdog) and checks those watches every
``INTERVAL`` s; once checks flow, the migration to head runs beside it, as ``steamwatch
migrate`` would in a rollout. Measured:

- the migration's time, and whether every row is still there afterwards (the generated rows
  and every check stored before it started), in a table that is now partitioned;
- the real checks: how many were stored while it ran, and the worst gap between two checks of
  a watch past its interval, for gaps ending in the half-minute before the migration (the
  baseline) and for those ending during it or in the half-minute after;
- a probe writing a check row every 10 ms the way the fetcher stores one, one statement per
  transaction on its own connection: its slowest write is the longest any check waited on a
  lock the migration held.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import (
    insert_tasks,
    item_names,
    quantile,
    stop,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.config import load_settings
from shared.db import migrate

DESCRIPTION = "migration 0007 on a million-row price_history with the system checking"
TARGETS = {"probe_max_wait_ms": ("<=", 1000.0), "rows_lost": ("<=", 0.0)}

ROWS = 1_000_000
TASKS = 1_000
INTERVAL = 15
AROUND_S = 30.0  # the system runs this long before the migration and after it
SERVICES = ("fetcher", "publisher", "scheduler", "watchdog")

_FILL = text(
    """
    INSERT INTO price_history (task_id, lease_token, checked_at, currency, lowest_price,
                               volume, source)
    SELECT t.id, gen_random_uuid(),
           now() - interval '13 days' + make_interval(secs => g * :step), 3,
           1000 + ((g * 7919 + t.id) % 300), g % 50, 'priceoverview'
    FROM tasks t, generate_series(0, :per_task - 1) AS g
    WHERE t.id <= (SELECT min(id) FROM tasks) + :tasks - 1
    """
)
_PROBE = text(
    """
    INSERT INTO price_history (task_id, lease_token, checked_at, currency, lowest_price,
                               volume, source)
    VALUES (:task, gen_random_uuid(), now(), 3, 1000, 1, 'probe')
    """
)


async def run(bench: Bench) -> dict[str, Any]:
    url = bench.database_url
    await asyncio.to_thread(migrate.downgrade, url=url, revision="0006")
    system = bench.system(STEAMWATCH_BUDGETS=unlimited_budgets(1))
    settings = load_settings(system.base_env())
    system.start_simulator("--no-limits", "--tick-seconds", "3600", proxies=2)
    names = await item_names(system)
    await warm_up(system, names)
    db = bench.database()
    try:
        # Far in the future: no check before the rows are made and the services are up.
        await insert_tasks(db, count=TASKS, interval=INTERVAL, start=3600, names=names)
        per_task = ROWS // TASKS
        began = time.perf_counter()
        async with db.session_scope() as s:
            await s.execute(
                _FILL, {"tasks": TASKS, "per_task": per_task, "step": 13 * 86_400 // per_task}
            )
            await s.execute(text("ANALYZE price_history"))
            filled_before = (await s.execute(text("SELECT now()"))).scalar_one()
            filled = (await s.execute(text("SELECT count(*) FROM price_history"))).scalar_one()
        say(f"migration: {filled:,} rows at 0006 in {time.perf_counter() - began:.0f}s")
        for service in SERVICES:
            system.start(service)
        await wait_ready(
            system,
            bench.redis_url,
            {"fetcher": settings.fetcher_processes, "publisher": 1, "scheduler": 1, "watchdog": 1},
        )
        async with db.session_scope() as s:
            await s.execute(
                text("UPDATE tasks SET next_check = now() + (id % :iv) * interval '1 second' "),
                {"iv": INTERVAL},
            )
            probe_task = (await s.execute(text("SELECT min(id) FROM tasks"))).scalar_one()
        await asyncio.sleep(AROUND_S)
        _alive(system)
        async with db.session_scope() as s:
            started_at = (await s.execute(text("SELECT now()"))).scalar_one()
            stored = set(
                (
                    await s.execute(
                        text("SELECT id FROM price_history WHERE checked_at > :at"),
                        {"at": filled_before},
                    )
                ).scalars()
            )
        say(f"migration: {filled:,} rows and {len(stored):,} checks; migrating to head")
        waits: list[float] = []
        done = asyncio.Event()
        prober = asyncio.create_task(_probe(db, probe_task, waits, done))
        t0 = time.perf_counter()
        try:
            await asyncio.to_thread(migrate.upgrade, url=url)
        finally:
            migration_s = time.perf_counter() - t0
            done.set()
            await prober
        async with db.session_scope() as s:
            ended_at = (await s.execute(text("SELECT now()"))).scalar_one()
        say(f"migration: done in {migration_s:.1f}s; the system runs {AROUND_S:.0f}s more")
        await asyncio.sleep(AROUND_S)
        _alive(system)
        stop(system, ["scheduler", "watchdog", "fetcher", "publisher"])
        async with db.session_scope() as s:
            kind = (
                await s.execute(
                    text("SELECT relkind::text FROM pg_class WHERE oid = 'price_history'::regclass")
                )
            ).scalar_one()
            filled_kept = (
                await s.execute(
                    text("SELECT count(*) FROM price_history WHERE checked_at <= :at"),
                    {"at": filled_before},
                )
            ).scalar_one()
            stored_kept = (
                await s.execute(
                    text("SELECT count(*) FROM price_history WHERE id = ANY(:ids)"),
                    {"ids": sorted(stored)},
                )
            ).scalar_one()
            checks = (
                await s.execute(
                    text(
                        "SELECT task_id, checked_at FROM price_history "
                        "WHERE checked_at > now() - make_interval(secs => :window) "
                        "AND source <> 'probe' ORDER BY task_id, checked_at"
                    ),
                    {"window": 3 * AROUND_S + migration_s + 60},
                )
            ).all()
            failed = (
                await s.execute(text("SELECT count(*) FROM tasks WHERE last_error IS NOT NULL"))
            ).scalar_one()
    finally:
        await db.dispose()
    during = sum(1 for _, at in checks if started_at <= at <= ended_at)
    return {
        "rows_at_start": filled + len(stored),
        "rows_lost": filled - filled_kept + len(stored) - stored_kept,
        "partitioned": kind == "p",
        "migration_s": round(migration_s, 2),
        "checks_during_migration": during,
        "checks_per_s_during": round(during / max(migration_s, 1e-9), 1),
        "checks_per_s_expected": round(TASKS / INTERVAL, 1),
        "max_gap_past_interval_before_s": round(
            _worst_gap(checks, started_at - timedelta(seconds=AROUND_S), started_at), 2
        ),
        "max_gap_past_interval_s": round(
            _worst_gap(checks, started_at, ended_at + timedelta(seconds=AROUND_S)), 2
        ),
        "checks_failed": failed,
        "probe_writes": len(waits),
        "probe_p99_wait_ms": round(1000 * quantile(waits, 0.99), 1),
        "probe_max_wait_ms": round(1000 * max(waits, default=math.nan), 1),
    }


def _alive(system: Any) -> None:
    if exits := system.unexpected_exits():
        raise RuntimeError(f"{exits}: {system.logs()[-3000:]}")


async def _probe(db: Any, task: int, waits: list[float], done: asyncio.Event) -> None:
    """A check row every 10 ms until the migration ends: how long each write took."""
    while not done.is_set():
        t0 = time.perf_counter()
        async with db.session_scope() as s:
            await s.execute(_PROBE, {"task": task})
        waits.append(time.perf_counter() - t0)
        await asyncio.sleep(0.01)


def _worst_gap(checks: Sequence[Any], since: datetime, until: datetime) -> float:
    """The longest wait between two checks of one watch past its interval, for gaps that end
    from ``since`` to ``until`` (the check just before ``since`` starts the first gap)."""
    by_task: dict[int, list[datetime]] = defaultdict(list)
    for task_id, at in checks:
        by_task[task_id].append(at)
    worst = 0.0
    for times in by_task.values():
        for a, b in zip(times, times[1:], strict=False):
            if since <= b < until:
                worst = max(worst, (b - a).total_seconds() - INTERVAL)
    return worst
