"""floor: CPU per check of steamwatch, of the least a check can cost, and of the seed's design.

Four runs, one after the other, on the same 2,000 price watches every 30 s, the same simulator
(4 proxies, no limits, 200 +/- 50 ms per answer, every order book built beforehand) and the same
stores, counted the same way (``seed_design``'s window: the rows stored in 30 s, 10 s after the
first task is due):

- steamwatch on its defaults: scheduler, fetcher (one process of 16 threads, 8 checks a
  message), publisher, watchdog;
- steamwatch again with one check a message, as before batches: what the bus costs;
- the floor, ``bench.floor_reference``: one process claiming due tasks in a batch, the budget
  Lua, one GET through a proxy, the parser, one statement storing the check;
- the seed's design, ``bench.seed_reference``.

CPU per check counts every process that does the design's work: its own, PostgreSQL's server
processes (the postmaster's tree, exited backends included) and Redis; the simulator and its
proxies stand in for Steam and are left out. The stores count only when the benchmark has them
to itself: the embedded ones ``make bench`` starts when no URLs are set. Between the runs the
tables are emptied, vacuumed and checkpointed, and Redis flushed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from typing import Any

from bench.harness import Bench, say
from bench.scenarios.common import ratio, unlimited_budgets
from bench.scenarios.seed_design import (
    INTERVAL,
    TASKS,
    Run,
    measure,
    prepare,
    reset,
    start_seed,
    start_steamwatch,
)
from shared.db import Database
from testbed.system import Proc, System

#: steamwatch on its defaults (one fetcher process of 16 threads, 8 checks a message), no
#: budget in the way.
STEAMWATCH_ENV = {"STEAMWATCH_BUDGETS": unlimited_budgets(60)}
#: The same, one check a message (as before batches): what the bus costs per message.
UNBATCHED_ENV = STEAMWATCH_ENV | {"STEAMWATCH_SCHEDULER_CHECKS_PER_MESSAGE": "1"}

DESCRIPTION = (
    f"CPU per check, stores included: steamwatch vs the minimal loop vs the seed "
    f"({TASKS} tasks every {INTERVAL}s)"
)
TARGETS = {"floor_ratio": ("<=", 2.0), "seed_ratio": ("<=", 0.5)}


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system()
    db = bench.database()
    try:
        roots = await prepare(bench, system, db)
        runs: dict[str, Run] = {}
        for name, start in DESIGNS:
            if name not in ONLY:
                continue
            say(f"floor: {name}")
            runs[name] = await measure(bench, system, db, start, roots)
            say(
                f"floor: {name} {runs[name].checks_per_s:.1f} checks/s, "
                f"{runs[name].extra['cpu_ms_per_check']} ms CPU each"
            )
            await reset(bench, system, db)
    finally:
        await db.dispose()
    cpu = {name: r.extra["cpu_ms_per_check"] for name, r in runs.items()}
    out: dict[str, Any] = {"offered_checks_per_s": round(TASKS / INTERVAL, 1)}
    if "steamwatch" in cpu:
        for other in ("floor", "seed", "unbatched"):
            if other in cpu:
                out[f"{other}_ratio"] = ratio(cpu["steamwatch"], cpu[other])
    for name, r in runs.items():
        out[f"{name}_checks_per_s"] = round(r.checks_per_s, 1)
        out[f"{name}_cpu_ms_per_check"] = r.extra.pop("cpu_ms_per_check")
        out |= {f"{name}_{k}": v for k, v in r.extra.items()}
    return out


async def start_steamwatch_here(
    bench: Bench, system: System, db: Database
) -> tuple[list[Proc], Any]:
    return await start_steamwatch(bench, system, db, STEAMWATCH_ENV)


async def start_unbatched(bench: Bench, system: System, db: Database) -> tuple[list[Proc], Any]:
    return await start_steamwatch(bench, system, db, UNBATCHED_ENV)


async def start_floor(bench: Bench, system: System, db: Database) -> tuple[list[Proc], Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.floor_reference",
        "--database-url",
        bench.database_url,
        "--redis-url",
        bench.redis_url,
        "--sim",
        system.sim_url,
    ]
    for proxy in system.proxy_urls:
        argv += ["--proxy", proxy]
    proc = system.spawn("floor", argv, system.base_env())
    deadline = time.monotonic() + 60
    while "floor ready" not in proc.text():
        if proc.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the floor reference did not start: {proc.text()[-2000:]}")
        await asyncio.sleep(0.1)

    def finish() -> dict[str, Any]:
        found = re.findall(r"^\{.*\}$", proc.text(), flags=re.MULTILINE)
        report = json.loads(found[-1]) if found else {}
        return {
            "check_errors": report.get("counts", {}).get("error", 0),
            "claim_batches": report.get("claim_batches"),
            "claimed_max": report.get("claimed_max"),
        }

    return [proc], finish


DESIGNS = (
    ("steamwatch", start_steamwatch_here),
    ("unbatched", start_unbatched),
    ("floor", start_floor),
    ("seed", start_seed),
)
#: ``STEAMWATCH_BENCH_FLOOR_DESIGNS``: the designs to run (comma-separated), all by default; a
#: ratio needs steamwatch and the design it compares with.
ONLY = os.environ.get("STEAMWATCH_BENCH_FLOOR_DESIGNS", ",".join(n for n, _ in DESIGNS)).split(",")
