"""throughput: what one default fetcher process completes when Steam takes 200 ms to answer.

An async check holds a worker thread while it waits on Steam, so a fetcher with T threads and
Steam answering in L seconds can complete at most T / L checks a second. The scenario makes
4,000 watches due at once (interval an hour: each is checked once), runs the scheduler, one
fetcher process with the default threads and prefetch, and the publisher, the simulator
answering every request 200 ms later (no limits, two proxies, budgets that never bind), and
counts checks judged between 10% and 90% done. Target: at least 0.9 x T / L.

Since check batches (8 claims a message by default, checked at once), a thread holds up to 8
checks at a time and the rate may pass T / L; the bound stays the issue's yardstick, and
``checks_per_message`` says what the scheduler sent.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Bench, say
from bench.scenarios.common import (
    insert_tasks,
    item_names,
    pipeline_rate,
    start_pipeline,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.config import load_settings

LATENCY_S = 0.2
TASKS = 4_000
WINDOW_S = 30.0
FLOOR = 0.9

DESCRIPTION = "one default fetcher's checks/s, Steam answering in 200 ms, against threads/latency"
TARGETS = {"share_of_bound": (">=", FLOOR)}


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system(STEAMWATCH_BUDGETS=unlimited_budgets(1))
    settings = load_settings(system.base_env())
    threads = settings.fetcher_threads
    bound = settings.fetcher_processes * threads / LATENCY_S
    system.start_simulator(
        "--no-limits", "--latency-ms", str(int(LATENCY_S * 1000)), "--tick-seconds", "3600"
    )
    names = await item_names(system)
    await warm_up(system, names)
    db = bench.database()
    try:
        await insert_tasks(db, count=TASKS, interval=3600, start=-1, spread=0, names=names)
        say(
            f"throughput: {TASKS} tasks due; one fetcher ({settings.fetcher_processes} x "
            f"{threads} threads), Steam answering in {LATENCY_S * 1000:.0f} ms: at most "
            f"{bound:.0f} checks/s"
        )
        start_pipeline(system)
        await wait_ready(system, bench.redis_url, {"fetcher": 1, "scheduler": 1, "publisher": 1})
        rate, cpu, failed = await pipeline_rate(system, db, total=TASKS, window=WINDOW_S)
    finally:
        await db.dispose()
    say(f"throughput: {rate:.1f} checks/s of {bound:.0f} ({rate / bound:.2f})")
    return {
        "checks_per_s": round(rate, 1),
        "bound_checks_per_s": round(bound, 1),
        "share_of_bound": round(rate / bound, 3),
        "checks_failed": failed,
        "fetcher_threads": threads,
        "checks_per_message": settings.scheduler_checks_per_message,
        "latency_ms": int(LATENCY_S * 1000),
        "cpu_ms_per_check": cpu,
    }
