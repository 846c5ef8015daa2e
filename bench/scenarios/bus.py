"""bus: what dramatiq alone moves, against what the whole pipeline checks, in the same run.

Raw: a queue pre-filled with check-shaped messages, drained by a no-op actor in real dramatiq
processes (the fetcher's broker, middleware, processes and threads). End to end: tasks all due,
scheduler -> fetcher -> simulator (through proxies, no latency, no limits) -> publisher, each
check counted once the publisher has judged it. Both rates are taken between 10% and 90% done
(or a fixed window after 10%), so start-up and the tail are left out.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import Bench, say
from bench.noop_worker import QUEUE, noop_message
from bench.scenarios.common import (
    Rate,
    cpu_seconds,
    insert_tasks,
    item_names,
    noop_unacked,
    pipeline_rate,
    start_noop_worker,
    start_pipeline,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.bus import create_broker
from shared.config import load_settings
from testbed.system import System

DESCRIPTION = "raw dramatiq no-op msgs/s vs end-to-end checks/s (scheduler->fetcher->publisher)"
# No target: the ratio set a whole check against a message that does nothing. The floor
# scenario's floor_ratio (the whole system against the least a check can cost) replaced it.
TARGETS: dict[str, tuple[str, float]] = {}

RAW_MESSAGES = 30_000
E2E_TASKS = 12_000
WINDOW_S = 20.0  # longest measuring window, after the first 10% are done


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system(STEAMWATCH_BUDGETS=unlimited_budgets(1))
    settings = load_settings(system.base_env())
    raw, raw_cpu = await _raw(bench, system)
    say(f"bus: raw {raw:.0f} msgs/s")
    checks, checks_cpu, failed = await _end_to_end(bench, system)
    say(f"bus: end to end {checks:.0f} checks/s")
    return {
        "raw_msgs_per_s": round(raw, 1),
        "checks_per_s": round(checks, 1),
        "ratio": round(checks / raw, 3),
        "checks_failed": failed,
        # CPU per message or check, by process tree, over the same windows: what each costs
        # whatever else the machine was doing.
        "cpu_ms_per_raw_msg": raw_cpu,
        "cpu_ms_per_check": checks_cpu,
        "fetcher_processes": settings.fetcher_processes,
        "fetcher_threads": settings.fetcher_threads,
    }


async def _raw(bench: Bench, system: System) -> tuple[float, dict[str, float]]:
    broker = create_broker(redis_url=bench.redis_url)
    broker.declare_queue(QUEUE)
    messages = [noop_message(i + 1) for i in range(RAW_MESSAGES)]
    say(f"bus: sending {RAW_MESSAGES} no-op messages")
    await asyncio.to_thread(lambda: [broker.enqueue(m) for m in messages])
    worker = start_noop_worker(bench, system)

    async def done() -> int:
        return RAW_MESSAGES - await asyncio.to_thread(noop_unacked, bench.redis_url)

    meter = Rate(probe=lambda: cpu_seconds(system, ["noop"]))
    rate = await meter.watch(done, total=RAW_MESSAGES, window=WINDOW_S, within=120)
    system.stop(worker)
    broker.flush_all()
    broker.close()
    return rate, meter.cpu_ms_each(meter.done_in_window(0.1 * RAW_MESSAGES))


async def _end_to_end(bench: Bench, system: System) -> tuple[float, dict[str, float], int]:
    # Answering at once, and holding still: no latency, no limits, and no hourly re-pricing
    # of every order book (the simulator's own work, which Steam would not put on our CPU).
    system.start_simulator("--no-limits", "--tick-seconds", "3600", proxies=2)
    names = await item_names(system)
    await warm_up(system, names)
    db = bench.database()
    try:
        # Due a second ago, and not again for an hour: each task is checked exactly once.
        await insert_tasks(db, count=E2E_TASKS, interval=3600, start=-1, spread=0, names=names)
        say(f"bus: {E2E_TASKS} tasks due; starting scheduler, fetcher, publisher")
        start_pipeline(system)
        await wait_ready(system, bench.redis_url, {"scheduler": 1}, within=60)
        started = time.perf_counter()
        rate, cpu, failed = await pipeline_rate(system, db, total=E2E_TASKS, window=WINDOW_S)
        say(f"bus: measured after {time.perf_counter() - started:.0f}s")
    finally:
        await db.dispose()
    return rate, cpu, failed
