"""seed_design: the same 2,000 tasks run by steamwatch, then by the seed's design.

The seed's design is ``bench.seed_reference``: one process, one coroutine and one session per
task. Both runs get the same simulator (4 proxies, no limits, 200 +/- 50 ms per answer, every
order book built beforehand), the same 2,000 price watches at the same interval, due spread
evenly over their first interval from the same start, the same Steam client code, and the same
clock: PostgreSQL's. A check is a price stored in ``price_history`` (both store one row per
successful check); checks per second are the rows stored in the same 30 s window, 10 s after
the start. Connections are every connection to the scenario's database but the benchmark's
own, read from ``pg_stat_activity`` every 100 ms from each design's start to the window's end.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import (
    ConnectionSampler,
    cpu_seconds,
    insert_tasks,
    item_names,
    ratio,
    sampling,
    served_between,
    sim_call,
    store_roots,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.db import Database
from testbed.system import Proc, System

TASKS = 2000
INTERVAL = 30  # seconds, the shortest the task CLI accepts: 2,000 tasks ask 66.7 checks a second
LATENCY_MS, JITTER_MS = 200, 50
LEAD = 5.0  # seconds from scheduling the tasks to the first one due
WARM = 10.0  # seconds after the first is due before counting starts
MEASURE = 30.0
STEAMWATCH_ENV = {
    "STEAMWATCH_BUDGETS": unlimited_budgets(60),
    "STEAMWATCH_FETCHER_PROCESSES": "2",  # one machine, two cores
    "STEAMWATCH_FETCHER_THREADS": "32",  # 67 checks/s x 0.25 s: ~17 in flight, 64 threads
}
# The seed's pool: create_async_engine's default (5 + 10), as the write-up's DatabaseManager
# shows nothing else; the results say how many it had checked out at most, and its errors.
SEED_POOL = (5, 10)
SERVICES = ("fetcher", "publisher", "watchdog", "scheduler")
# Task n of N (by id) due at start + interval * (n - 1) / N.
SPREAD = text(
    """
    UPDATE tasks AS t
    SET next_check = CAST(:start AS timestamptz)
                     + make_interval(secs => :interval * (r.n - 1)::float8 / :count)
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tasks) AS r
    WHERE t.id = r.id
    """
)
COUNT_CHECKS = text("SELECT count(*) FROM price_history WHERE checked_at >= :a AND checked_at < :b")

DESCRIPTION = f"{TASKS} tasks every {INTERVAL}s: steamwatch vs the seed's one-process design"
TARGETS: dict[str, tuple[str, float]] = {}  # the issue asks for the ratios, sets no bound


@dataclass
class Run:
    """One design's run: what it stored in the window, and its connections throughout."""

    checks: int = 0
    served: int = 0
    connections: ConnectionSampler | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def checks_per_s(self) -> float:
        return self.checks / MEASURE

    @property
    def connections_max(self) -> int:
        return self.connections.peak_total if self.connections else 0


async def prepare(bench: Bench, system: System, db: Database) -> dict[str, int]:
    """The simulator (4 proxies, no limits, every book built, 200 +/- 50 ms) and the tasks,
    due in a day (``spread`` makes them due once a design runs); the stores' root processes."""
    system.start_simulator("--no-limits", proxies=4)
    names = await item_names(system, TASKS)
    await warm_up(system, names)
    await sim_call(
        system, "POST", "/__sim/latency", body={"mean_ms": LATENCY_MS, "jitter_ms": JITTER_MS}
    )
    await insert_tasks(db, count=TASKS, interval=INTERVAL, start=86400, names=names)
    return await store_roots(bench.database_url, bench.redis_url)


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system()
    db = bench.database()
    try:
        roots = await prepare(bench, system, db)
        say("seed_design: steamwatch")
        steamwatch = await measure(bench, system, db, start_steamwatch, roots)
        await reset(bench, system, db)
        say("seed_design: the seed's design")
        seed = await measure(bench, system, db, start_seed, roots)
    finally:
        await db.dispose()
    sw_by_app = dict(steamwatch.connections.peak_by_app) if steamwatch.connections else {}
    return {
        "db_connections_ratio": ratio(steamwatch.connections_max, seed.connections_max),
        "checks_ratio": ratio(steamwatch.checks_per_s, seed.checks_per_s),
        "steamwatch_db_connections_max": steamwatch.connections_max,
        "seed_db_connections_max": seed.connections_max,
        "steamwatch_checks_per_s": round(steamwatch.checks_per_s, 1),
        "seed_checks_per_s": round(seed.checks_per_s, 1),
        "offered_checks_per_s": round(TASKS / INTERVAL, 1),
        "steamwatch_served_per_s": round(steamwatch.served / MEASURE, 1),
        "seed_served_per_s": round(seed.served / MEASURE, 1),
        "steamwatch_connections_by_service": sw_by_app,
        **{f"steamwatch_{k}": v for k, v in steamwatch.extra.items()},
        **{f"seed_{k}": v for k, v in seed.extra.items()},
    }


async def measure(
    bench: Bench, system: System, db: Database, start: Any, roots: dict[str, int]
) -> Run:
    """Start a design, spread the tasks over one interval, count what it stored in the window.

    CPU is counted for the design's processes, the simulator apart, and for the stores'
    process trees (``roots``: PostgreSQL, Redis), which do the design's work too.
    """
    connections = ConnectionSampler(bench.database_url)
    result = Run(connections=connections)
    async with sampling(connections):
        if start is start_seed:  # it reads its tasks, next checks included, when it starts
            started = await spread(db)
            procs, finish = await start(bench, system, db)
        else:
            procs, finish = await start(bench, system, db)
            started = await spread(db)
        result.extra["ready_before_first_due_s"] = round(
            (started - await db_now(db)).total_seconds(), 1
        )
        window = (started + timedelta(seconds=WARM), started + timedelta(seconds=WARM + MEASURE))
        await asyncio.sleep((window[0] - await db_now(db)).total_seconds())
        watched = [p.name for p in [*procs, system.procs[0]]]  # and the simulator
        before = cpu_seconds(system, watched, roots)
        sessions = connections.sessions[1]
        await asyncio.sleep((window[1] - await db_now(db)).total_seconds() + 1)
        after = cpu_seconds(system, watched, roots)
        cpu = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in [*watched, *roots]}
        sessions = connections.sessions[1] - sessions
        async with db.session_scope() as s:
            result.checks = int(await s.scalar(COUNT_CHECKS, {"a": window[0], "b": window[1]}) or 0)
        stats = await sim_call(system, "GET", "/__sim/stats")
        result.served = served_between(stats, window[0].timestamp(), window[1].timestamp())
    # Stopping is watched apart: the peak above is the design at work.
    stopping = ConnectionSampler(bench.database_url)
    async with sampling(stopping):
        await asyncio.gather(*(asyncio.to_thread(system.stop, proc) for proc in procs))
    result.extra["db_connections_max_while_stopping"] = stopping.peak_total
    # CPU per check, by process (tree): what each design spends, the simulator's share apart;
    # in all (the stores included) and in the design's own processes.
    per_check = {name: 1000 * seconds / max(result.checks, 1) for name, seconds in cpu.items()}
    result.extra["cpu_ms_per_check"] = round(
        sum(ms for name, ms in per_check.items() if name != "sim"), 2
    )
    result.extra["client_cpu_ms_per_check"] = round(
        sum(ms for name, ms in per_check.items() if name not in ("sim", *roots)), 2
    )
    # Connections PostgreSQL saw opened in the window: a pool that keeps closing and reopening
    # them pays a backend start each time.
    result.extra["db_sessions_opened_in_window"] = sessions
    result.extra["cpu_ms_per_check_by_process"] = {k: round(v, 2) for k, v in per_check.items()}
    result.extra |= finish()
    return result


async def start_steamwatch(
    bench: Bench, system: System, db: Database, env: dict[str, str] | None = None
) -> tuple[list[Proc], Any]:
    env = STEAMWATCH_ENV if env is None else env
    procs = [system.start(service, **env) for service in SERVICES]
    fetchers = int(env.get("STEAMWATCH_FETCHER_PROCESSES", "1"))
    await wait_ready(system, bench.redis_url, {"fetcher": fetchers, "publisher": 1}, within=90)

    def finish() -> dict[str, Any]:
        logs = system.logs("fetcher")
        return {"check_errors": logs.count('"event": "check failed"')}

    return procs, finish


async def start_seed(bench: Bench, system: System, db: Database) -> tuple[list[Proc], Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.seed_reference",
        "--database-url",
        bench.database_url,
        "--redis-url",
        bench.redis_url,
        "--sim",
        system.sim_url,
        "--pool-size",
        str(SEED_POOL[0]),
        "--max-overflow",
        str(SEED_POOL[1]),
    ]
    for proxy in system.proxy_urls:
        argv += ["--proxy", proxy]
    proc = system.spawn("seed", argv, system.base_env())
    deadline = time.monotonic() + 60
    while "seed ready" not in proc.text():
        if proc.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the seed reference did not start: {proc.text()[-2000:]}")
        await asyncio.sleep(0.1)

    def finish() -> dict[str, Any]:
        import json

        found = re.findall(r"^\{.*\}$", proc.text(), flags=re.MULTILINE)
        report = json.loads(found[-1]) if found else {}
        counts = report.get("counts", {})
        return {
            "check_errors": counts.get("error", 0),
            "pool_checked_out_max": report.get("max_checked_out"),
            "pool_limit": report.get("pool_limit"),
        }

    return [proc], finish


async def db_now(db: Database) -> datetime:
    async with db.session_scope() as s:
        now: datetime = await s.scalar(text("SELECT now()"))
    return now


async def spread(db: Database) -> datetime:
    """Make the tasks due evenly over one interval from LEAD seconds on; returns the first due."""
    async with db.session_scope() as s:
        started: datetime = await s.scalar(
            text("SELECT now() + make_interval(secs => :lead)"), {"lead": LEAD}
        )
        await s.execute(SPREAD, {"start": started, "interval": INTERVAL, "count": TASKS})
    return started


async def reset(bench: Bench, system: System, db: Database) -> None:
    """Between the runs: no stored prices, no leases or errors, no messages, fresh stats, and
    the tables vacuumed and a checkpoint taken, so no design pays for the one before it."""
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM price_history"))
        await s.execute(
            text(
                "UPDATE tasks SET lease_token = NULL, lease_expires_at = NULL, status = 'active', "
                "consecutive_errors = 0, last_error = NULL, recovery_attempts = 0, "
                "condition_state = NULL, next_check = now() + interval '1 day'"
            )
        )
    async with db.autocommit() as conn:
        await conn.execute(text("VACUUM (ANALYZE) tasks, price_history"))
        await conn.execute(text("CHECKPOINT"))
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(bench.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    await sim_call(system, "POST", "/__sim/reset")
