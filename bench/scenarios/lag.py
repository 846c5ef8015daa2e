"""lag: 5,000 tasks every 60 s against a simulator answering in 50 ± 30 ms; how late, how stale.

The whole system runs as in production (scheduler, fetcher, publisher, watchdog; default
settings, budgets that never bind). The tasks' first checks are staggered evenly over one
interval, as a table built over time would be, and the run lasts until every task has had
``ROUNDS`` full intervals after its first check. Every time comes from PostgreSQL's clock: a
check's ``checked_at`` is the ``now()`` of the transaction that also set the next
``next_check`` to ``now() + interval``, so each due time is known exactly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import (
    histogram_quantiles,
    insert_tasks,
    item_names,
    metrics_url,
    quantile,
    stop,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.config import load_settings

DESCRIPTION = "5,000 tasks at 60 s, simulator 50±30 ms: lag p50/p99 and worst staleness"
TARGETS = {"lag_p99_s": ("<=", 2.0), "max_staleness_s": ("<=", 5.0)}

TASKS = 5_000
INTERVAL = 60
LEAD_S = 5.0  # the first task is due this long after the insert
ROUNDS = 2  # full intervals every task must see after its first check
SETTLE_S = 10.0  # a due time this close to the end has no verdict yet; later ones are judged
SERVICES = ("fetcher", "publisher", "scheduler", "watchdog")


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system(STEAMWATCH_BUDGETS=unlimited_budgets(1))
    settings = load_settings(system.base_env())
    # The market holds still for the run: its hourly tick would re-price every book at once,
    # a burst of the simulator's own work that Steam would not put on our machine.
    system.start_simulator(
        "--no-limits",
        "--latency-ms",
        "50",
        "--jitter-ms",
        "30",
        "--tick-seconds",
        "3600",
        proxies=2,
    )
    names = await item_names(system)
    await warm_up(system, names)
    for service in SERVICES:
        system.start(service)
    await wait_ready(
        system,
        bench.redis_url,
        {
            "fetcher": settings.fetcher_processes,
            "publisher": 1,
            "scheduler": 1,
            "watchdog": 1,
        },
    )
    db = bench.database()
    try:
        await insert_tasks(
            db, count=TASKS, interval=INTERVAL, start=LEAD_S, spread=INTERVAL, names=names
        )
        async with db.session_scope() as s:
            due = (await s.execute(text("SELECT id, next_check FROM tasks"))).all()
            first_due: dict[int, datetime] = {r.id: r.next_check for r in due}
            inserted = (await s.execute(text("SELECT now()"))).scalar_one()
        run_s = LEAD_S + INTERVAL * (ROUNDS + 1) + SETTLE_S
        say(f"lag: {TASKS} tasks staggered over {INTERVAL}s; running {run_s:.0f}s")
        deadline = time.monotonic() + run_s
        while time.monotonic() < deadline:
            await asyncio.sleep(min(30.0, deadline - time.monotonic()))
            if exits := system.unexpected_exits():
                raise RuntimeError(f"{exits}: {system.logs()[-3000:]}")
            say(f"lag: {await _checks(db)} checks so far")
        claim_lag = await _claim_lag(system)
        async with db.session_scope() as s:
            ended = (await s.execute(text("SELECT now()"))).scalar_one()
        stop(system, ["scheduler", "watchdog", "fetcher", "publisher"])
        async with db.session_scope() as s:
            rows = (
                await s.execute(
                    text(
                        "SELECT task_id, checked_at FROM price_history ORDER BY task_id, checked_at"
                    )
                )
            ).all()
            failed = int(
                (
                    await s.execute(text("SELECT count(*) FROM tasks WHERE last_error IS NOT NULL"))
                ).scalar_one()
            )
    finally:
        await db.dispose()

    checks: dict[int, list[datetime]] = defaultdict(list)
    for task_id, checked_at in rows:
        checks[task_id].append(checked_at)
    lags, staleness, counts, by_round = _judge(first_due, checks, ended)
    return {
        "lag_p50_s": round(quantile(lags, 0.5), 3),
        "lag_p99_s": round(quantile(lags, 0.99), 3),
        "max_staleness_s": round(max(staleness, default=math.nan), 3),
        "staleness_p99_s": round(quantile(staleness, 0.99), 3),
        # Lag p99 of each task's 1st, 2nd, ... check: steady, or growing as a backlog would.
        "lag_p99_by_round_s": [
            round(quantile(r, 0.99), 3) for r in by_round if len(r) >= TASKS // 2
        ],
        "claim_lag_p99_le_s": claim_lag,
        "tasks": TASKS,
        "checks": len(rows),
        "checks_judged": len(lags),
        "gaps_judged": len(staleness),
        "min_checks_per_task": min(counts),
        "checks_failed": failed,
        "run_s": round((ended - inserted).total_seconds(), 1),
        "scheduler_tick_s": settings.scheduler_tick,
        "fetcher_threads": settings.fetcher_threads,
    }


def _judge(
    first_due: dict[int, datetime], checks: dict[int, list[datetime]], ended: datetime
) -> tuple[list[float], list[float], list[int], list[list[float]]]:
    """Lag of every check due before the end (a missing one counts as late as the end is),
    and every gap between two checks of a task past its interval (an open one, likewise)."""
    lags: list[float] = []
    staleness: list[float] = []
    counts: list[int] = []
    by_round: list[list[float]] = [[] for _ in range(ROUNDS + 2)]
    for task_id, due in first_due.items():
        done = checks.get(task_id, [])
        counts.append(len(done))
        for k, at in enumerate(done):
            lag = (at - due).total_seconds()
            lags.append(lag)
            if k < len(by_round):
                by_round[k].append(lag)
            due = at + timedelta(seconds=INTERVAL)
        if (ended - due).total_seconds() >= SETTLE_S:  # due, long enough ago, and not done
            lags.append((ended - due).total_seconds())
        for a, b in zip(done, done[1:], strict=False):
            staleness.append((b - a).total_seconds() - INTERVAL)
        if done and (ended - done[-1]).total_seconds() - INTERVAL >= SETTLE_S:
            staleness.append((ended - done[-1]).total_seconds() - INTERVAL)
    return lags, staleness, counts, by_round


async def _checks(db: Any) -> int:
    async with db.session_scope() as s:
        return int((await s.execute(text("SELECT count(*) FROM price_history"))).scalar_one())


async def _claim_lag(system: Any) -> float | None:
    """The scheduler's own view: p99 of claim time minus next_check, as a histogram bucket."""
    url = metrics_url(system, "scheduler")
    if url is None:
        return None
    try:
        found = await histogram_quantiles(url, "steamwatch_schedule_lag_seconds", [0.99])
    except Exception:
        return None
    value = found[0.99]
    return None if math.isnan(value) or math.isinf(value) else value
