"""memory: what do one machine's fetcher processes cost while 500 checks are in flight?

The simulator answers after 2 s and has no limits; the fetchers (2 processes x 64 threads: a
thread checks the claims of one message at once, 8 by default, and either process may take the
whole wave of 63 messages, its prefetch being 80) are fed by the scheduler from 500 tasks due
together every 10 s. Before check batches it took 2 x 250 threads (one check a thread). The
publisher is not started: it is not a fetcher, and its queue may grow for a minute. Sampled
throughout: the resident memory of every fetcher process and its children, the fetchers'
PostgreSQL connections, and the requests waiting in the simulator's latency (how many checks
really were at Steam together).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select

from bench.harness import Bench, say
from bench.scenarios.common import (
    ConnectionSampler,
    InFlightSampler,
    MemorySampler,
    check_health,
    insert_tasks,
    item_names,
    sampling,
    sim_call,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.config import Settings
from shared.db import PriceSnapshot

PROCESSES = 2
THREADS = 64
# The project's defaults of STEAMWATCH_DB_POOL_SIZE and _MAX_OVERFLOW, passed on explicitly.
POOL_SIZE = int(Settings.model_fields["db_pool_size"].default)
MAX_OVERFLOW = int(Settings.model_fields["db_max_overflow"].default)
POOL_BOUND = PROCESSES * (POOL_SIZE + MAX_OVERFLOW)
IN_FLIGHT = 500
LATENCY_MS = 2000
TASKS = IN_FLIGHT
INTERVAL = 10  # seconds: a wave of 500 checks, answered 2 s later, then a pause
LOAD_SECONDS = 40.0
MB = 1024 * 1024

DESCRIPTION = f"fetchers ({PROCESSES}x{THREADS}) with {IN_FLIGHT} checks in flight, 2 s latency"
TARGETS = {
    "rss_mb": ("<=", 300),
    "db_connections_max": ("<=", POOL_BOUND),
    # Not a target of the issue but its premise: the figures above mean little without it.
    "in_flight_max": (">=", IN_FLIGHT),
}


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system()
    system.start_simulator("--no-limits", proxies=4)
    env = {
        "STEAMWATCH_BUDGETS": unlimited_budgets(60),
        "STEAMWATCH_FETCHER_PROCESSES": str(PROCESSES),
        "STEAMWATCH_FETCHER_THREADS": str(THREADS),
        "STEAMWATCH_DB_POOL_SIZE": str(POOL_SIZE),
        "STEAMWATCH_DB_MAX_OVERFLOW": str(MAX_OVERFLOW),
        "STEAMWATCH_SCHEDULER_TICK": "0.25",
    }
    fetcher = system.start("fetcher", **env)
    db = bench.database()
    try:
        names = await item_names(system, TASKS)
        await warm_up(system, names)
        await sim_call(system, "POST", "/__sim/latency", body={"mean_ms": LATENCY_MS})
        await wait_ready(system, bench.redis_url, {"fetcher": PROCESSES}, within=90)
        idle = MemorySampler([fetcher.process.pid])
        await asyncio.to_thread(idle.read)
        # The scheduler only now: the fetchers' idle memory is read before any message.
        system.start("scheduler", **env)
        await insert_tasks(db, count=TASKS, interval=INTERVAL, names=names)
        memory = MemorySampler([fetcher.process.pid])
        connections = ConnectionSampler(bench.database_url)
        in_flight = InFlightSampler(system)
        say(f"memory: {TASKS} tasks due every {INTERVAL}s, {LOAD_SECONDS:.0f}s of load")
        async with sampling(memory, connections, in_flight):
            started = time.monotonic()
            await asyncio.sleep(LOAD_SECONDS)
            ended = time.monotonic()
        async with db.session_scope() as s:
            checks = await s.scalar(select(func.count()).select_from(PriceSnapshot)) or 0
    finally:
        await db.dispose()
    return {
        "rss_mb": round(memory.peak_rss / MB, 1),
        "db_connections_max": connections.peak_by_app["steamwatch-fetcher"],
        "in_flight_max": in_flight.peak,
        "in_flight_mean": round(in_flight.mean_between(started + 5, ended), 1),
        "pss_mb": round(memory.peak_pss / MB, 1),
        "rss_mb_idle": round(idle.peak_rss / MB, 1),
        "fetcher_processes_seen": memory.processes,
        "rss_mb_each_at_peak": sorted(
            (round(v / MB, 1) for v in memory.at_peak.values()), reverse=True
        ),
        "threads_max": memory.peak_threads,
        "pool_bound": POOL_BOUND,
        "db_connections_health_max": connections.peak_by_app["steamwatch-fetcher-health"],
        "db_sessions_opened": connections.sessions_opened,
        "checks_per_s": round(checks / LOAD_SECONDS, 1),
        **check_health(system),
    }
