"""proxy_budget: do the shared budgets use what Steam allows, and never more?

Four local proxies, each seen by the simulator as its own client allowed 20 price requests a
minute; steamwatch's budgets say the same. Two fetcher processes (with the scheduler and the
publisher) check 200 watches due every 30 s, five times what the proxies may carry, for three
minutes. The simulator is the judge: what it served, what it refused with a 429.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import func, select

from bench.harness import Bench, say
from bench.scenarios.common import (
    check_health,
    insert_tasks,
    item_names,
    served_between,
    sim_call,
    start_pipeline,
    wait_ready,
    warm_up,
)
from shared.db import PriceSnapshot

DESCRIPTION = "4 proxies x 20 req/min, budgets to match, 2 fetchers, 3 min: budget used, 429s"
TARGETS = {"used_fraction": (">=", 0.95), "share_429": ("<=", 0.005)}

PROXIES = 4
LIMIT = 20  # requests per proxy (client) ...
WINDOW = 60.0  # ... in any this many seconds, at the simulator and in the budgets alike
DURATION = 180.0
TASKS = 200
INTERVAL = 30  # seconds: 200 tasks ask 400 checks a minute of a pool that carries 80


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system()
    system.start_simulator("--limit", f"priceoverview={LIMIT}/{WINDOW:g}", proxies=PROXIES)
    env = {
        "STEAMWATCH_BUDGETS": f"priceoverview={LIMIT}/{WINDOW:g}",
        "STEAMWATCH_FETCHER_PROCESSES": "2",
    }
    start_pipeline(system, **env)
    db = bench.database()
    try:
        names = await item_names(system, TASKS)
        await warm_up(system, names)
        await wait_ready(system, bench.redis_url, {"fetcher": 2, "publisher": 1}, within=90)
        # Nothing has asked the simulator anything yet; from here on everything counts.
        await sim_call(system, "POST", "/__sim/reset")
        started = (await sim_call(system, "GET", "/__sim/stats", params={"timestamps": "0"}))["now"]
        await insert_tasks(db, count=TASKS, interval=INTERVAL, names=names)
        say(f"proxy_budget: {TASKS} tasks due, running {DURATION:.0f}s")
        await asyncio.sleep(DURATION + 1)  # and the last answers land
        stats = await sim_call(system, "GET", "/__sim/stats", params={"window": f"{WINDOW:g}"})
        (bench.folder / "sim-stats.json").write_text(json.dumps(stats))  # for a post-mortem
        async with db.session_scope() as s:
            stored = await s.scalar(select(func.count()).select_from(PriceSnapshot))
    finally:
        await db.dispose()
    return figures(stats, started, stored or 0) | check_health(system)


def figures(stats: dict[str, Any], started: float, stored: int) -> dict[str, Any]:
    """The simulator's counts since ``started`` turned into the scenario's figures.

    Served requests are counted by their timestamps inside the run's own 180 s, the span the
    allowance is computed for (a sliding window lets a span a hair longer than three windows
    hold a fourth burst). 429s are the simulator's total since ``started``.
    """
    ended = started + DURATION
    clients = stats["clients"]

    served = served_between(stats, started, ended)
    allowed = PROXIES * LIMIT * DURATION / WINDOW
    # After the first minute: the steady state, where only prompt reuse of freed slots counts.
    steady = served_between(stats, started + WINDOW, ended)
    steady_allowed = PROXIES * LIMIT * (DURATION - WINDOW) / WINDOW
    # How long after the sliding window allowed it each slot was used again: what the long run
    # costs, since every such second is lost for good (the budget's slack is in it too).
    lags = []
    for c in clients.values():
        times = sorted(c["endpoints"].get("priceoverview", {}).get("served_at", []))
        lags += [b - a - WINDOW for a, b in zip(times, times[LIMIT:], strict=False)]
    lag = sum(lags) / len(lags) if lags else None
    # How close each proxy came to Steam's limit, as Steam counts (by arrival): the least time
    # between a request and the 21st after it, less the window. Below 0 there was a 429.
    margins = []
    for c in clients.values():
        times = sorted(c["endpoints"].get("priceoverview", {}).get("seen_at", []))
        margins += [b - a - WINDOW for a, b in zip(times, times[LIMIT:], strict=False)]
    totals = stats["totals"]["priceoverview"]
    seen, limited = totals["seen"], totals["rate_limited"]
    return {
        "used_fraction": round(served / allowed, 4),
        "share_429": round(limited / seen, 4) if seen else 0.0,
        "served": served,
        "allowed": int(allowed),
        "rate_limited": limited,
        "used_fraction_after_1st_min": round(steady / steady_allowed, 4),
        "slot_reuse_lag_s": None if lag is None else round(lag, 2),
        "long_run_used_fraction": None if lag is None else round(WINDOW / (WINDOW + lag), 4),
        "window_margin_min_s": round(min(margins), 3) if margins else None,
        "busiest_proxy_minute": max(
            (c.get("max_in_window", {}).get("priceoverview", 0) for c in clients.values()),
            default=0,
        ),
        "proxies_used": sum(1 for c in clients.values() if "priceoverview" in c["endpoints"]),
        "checks_stored": stored,
    }
