"""dispatch: the scheduler's claim-and-send path against the bus alone, and against table size.

In this process, on real PostgreSQL and Redis: the scheduler's own ``Scheduler.tick`` (queue
depth, ``claim_due`` in batches of ``SCHEDULER_BATCH``, one check message per claim) until 10,000
due tasks are sent, against sending 10,000 check-shaped messages to a no-op queue on the same
broker. Then ``claim_due`` alone for those 10,000 with 10,000 tasks in the table and with
1,000,000 (the rest due in one to two hours, as a big table mostly is). Each figure is the
median of a few rounds; between rounds the leases are released and the table vacuumed.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
from sqlalchemy import text

from bench.harness import Bench, say
from bench.noop_worker import QUEUE as NOOP_QUEUE
from bench.noop_worker import noop_message
from bench.scenarios.common import insert_tasks
from services.scheduler.service import Scheduler
from shared.bus import CHECKS_QUEUE, create_broker
from shared.config import load_settings
from shared.db import Database
from shared.runtime import Pools
from shared.tasks import claim_due

DESCRIPTION = "claim+send 10k due tasks vs send 10k no-op msgs; claim time at 1M rows vs 10k"
TARGETS = {"ratio": ("<=", 1.5), "scale_ratio": ("<=", 1.5)}

DUE = 10_000
TABLE = 1_000_000
ROUNDS = 5  # at 10,000 rows: claim+send against the bus alone, interleaved
BIG_ROUNDS = 3  # at 1,000,000 rows


async def run(bench: Bench) -> dict[str, Any]:
    settings = load_settings({})
    db = bench.database()
    client = redis.asyncio.Redis.from_url(bench.redis_url)
    pools = Pools(db=db, redis=client)
    broker = create_broker(redis_url=bench.redis_url)
    broker.declare_queue(CHECKS_QUEUE)
    broker.declare_queue(NOOP_QUEUE)
    # The production scheduler, with backpressure out of the way: the queue is never drained
    # here, and what is measured is the claim and the send, not the high-water mark.
    scheduler = Scheduler(
        broker=broker,
        batch=settings.scheduler_batch,
        high_water=10**9,
        lease_seconds=settings.lease_seconds,
    )

    async def dispatch() -> float:
        sent = 0
        started = time.perf_counter()
        while sent < DUE:
            claims = await scheduler.tick(pools)
            if not claims:
                raise RuntimeError(f"only {sent} of {DUE} due tasks were claimed")
            sent += len(claims)
        return time.perf_counter() - started

    async def noop_send() -> float:
        def send() -> float:
            started = time.perf_counter()
            for i in range(DUE):
                broker.enqueue(noop_message(i + 1))
            return time.perf_counter() - started

        return await asyncio.to_thread(send)

    async def claim_only() -> float:
        claimed = 0
        started = time.perf_counter()
        while claimed < DUE:
            async with db.session_scope() as session:
                claims = await claim_due(
                    session, batch=settings.scheduler_batch, lease_seconds=settings.lease_seconds
                )
            if not claims:
                raise RuntimeError(f"only {claimed} of {DUE} due tasks were claimed")
            claimed += len(claims)
        return time.perf_counter() - started

    async def reset() -> None:
        await _release_all(db)
        broker.flush_all()

    async def rounds(measure: Callable[[], Awaitable[float]], label: str) -> float:
        times = []
        for _ in range(BIG_ROUNDS):
            times.append(await measure())
            await reset()
        say(f"dispatch: {label}: " + ", ".join(f"{t:.3f}s" for t in times))
        return statistics.median(times)

    try:
        started = time.perf_counter()
        await insert_tasks(db, count=DUE, interval=60, start=-60, spread=59)
        await _vacuum(db)
        await dispatch()  # warm-up: connections, prepared statements, plans; not counted
        await reset()
        await noop_send()
        await reset()
        noop_s, dispatch_s, claim_small = [], [], []
        noop_cpu, dispatch_cpu = [], []
        for _ in range(ROUNDS):  # interleaved, so a noisy moment hurts both sides alike
            cpu = time.process_time()
            noop_s.append(await noop_send())
            noop_cpu.append(time.process_time() - cpu)
            await reset()
            cpu = time.process_time()
            dispatch_s.append(await dispatch())
            dispatch_cpu.append(time.process_time() - cpu)
            await reset()
            claim_small.append(await claim_only())
            await reset()
        say(
            f"dispatch: no-op send {_show(noop_s)}; claim+send {_show(dispatch_s)}; "
            f"claim at {DUE:,} rows {_show(claim_small)}"
        )

        say(f"dispatch: filling the table to {TABLE:,} rows")
        fill = time.perf_counter()
        await insert_tasks(db, count=TABLE - DUE, first=DUE, interval=60, start=3600, spread=3600)
        await _vacuum(db)
        fill_s = time.perf_counter() - fill
        say(f"dispatch: filled in {fill_s:.0f}s")
        await claim_only()  # warm-up again: new statistics, possibly a new plan
        await reset()
        claim_big = await rounds(claim_only, f"claim at {TABLE:,} rows")
        dispatch_big = await rounds(dispatch, f"claim+send at {TABLE:,} rows")
        plan = await _plan(db, settings.scheduler_batch)
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
        await db.dispose()
        broker.close()

    noop, disp, small = (statistics.median(v) for v in (noop_s, dispatch_s, claim_small))
    return {
        "noop_send_s": round(noop, 3),
        "dispatch_s": round(disp, 3),
        "ratio": round(disp / noop, 3),
        "claim_10k_rows_s": round(small, 3),
        "claim_1m_rows_s": round(claim_big, 3),
        "scale_ratio": round(claim_big / small, 3),
        "dispatch_1m_rows_s": round(dispatch_big, 3),
        # This process's CPU only (not PostgreSQL's or Redis's): steadier on a busy machine.
        "noop_send_cpu_s": round(statistics.median(noop_cpu), 3),
        "dispatch_cpu_s": round(statistics.median(dispatch_cpu), 3),
        "fill_1m_rows_s": round(fill_s, 1),
        "batch": settings.scheduler_batch,
        "rounds": ROUNDS,
        "big_rounds": BIG_ROUNDS,
        "claim_plan_1m_rows": plan,
        "measured_s": round(elapsed, 1),
    }


def _show(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


async def _release_all(db: Database) -> None:
    async with db.session_scope() as s:
        await s.execute(
            text(
                "UPDATE tasks SET lease_token = NULL, lease_expires_at = NULL "
                "WHERE lease_token IS NOT NULL"
            )
        )
    await _vacuum(db)


async def _vacuum(db: Database) -> None:
    """VACUUM ANALYZE, as autovacuum would between two busy minutes; outside a transaction."""
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE tasks"))


async def _plan(db: Database, batch: int) -> list[str]:
    """EXPLAIN of the claim's inner SELECT (without taking anything)."""
    async with db.session_scope() as s:
        rows = await s.execute(
            text(
                "EXPLAIN SELECT id FROM tasks WHERE is_active AND status = 'active' "
                "AND lease_token IS NULL AND next_check <= now() - make_interval(secs => 0) "
                f"ORDER BY next_check LIMIT {int(batch)} FOR UPDATE SKIP LOCKED"
            )
        )
        return [r[0] for r in rows]
