"""Graceful shutdown as Kubernetes does it: SIGTERM to the service's main process, then a grace.

A fetcher holding slow checks stops taking messages, hands back what it cannot finish within
its shutdown timeout, and exits before the grace period ends; another fetcher completes every
check it held. Real processes, the simulator made slow.
"""

from __future__ import annotations

import asyncio
import signal
import time

import redis as sync_redis
from sqlalchemy import func, select, text

from shared.db import Database, PriceSnapshot
from shared.runtime import read_beats
from testbed.system import SESSION_STATE_ERRORS, System
from tests.fixtures.pipeline import FAST, all_events, catalogue, history
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until


async def test_sigterm_to_a_fetcher_holding_slow_checks_exits_in_grace_and_loses_none(
    db: Database, system: System, redis_url: str
) -> None:
    latency, shutdown_timeout, grace = 6.0, 3, 15.0
    system.start_simulator("--no-limits", "--latency-ms", str(int(latency * 1000)))
    names = await catalogue(system, 24)
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": {"max_price": 10**9},
            }
            for n in names
        ],
    )
    env = {
        **FAST,
        "STEAMWATCH_FETCHER_THREADS": "8",
        "STEAMWATCH_WORKER_SHUTDOWN_TIMEOUT": str(shutdown_timeout),
    }
    first = system.start("fetcher", **env)
    system.start("publisher", **env)
    assert await until(lambda: _logged(system, "worker ready"), within=60)
    system.start("scheduler", **env)

    async def busy() -> bool:  # the first fetcher holds 8 checks, the other 16 wait for it
        async with db.session_scope() as s:
            leased = await s.scalar(
                text("SELECT count(*) FROM tasks WHERE lease_token IS NOT NULL")
            )
            done = await s.scalar(select(func.count()).select_from(PriceSnapshot))
        return leased == len(ids) and done == 0

    assert await until(busy, within=30, every=0.05)
    await until(lambda: _steam_asked(system, 8), within=latency)
    held = {b.instance for b in _beats(redis_url) if b.service == "fetcher"}
    signalled = time.monotonic()
    first.stopped_on_purpose = True
    first.process.send_signal(signal.SIGTERM)  # to the main process only, as tini passes it on
    code = await asyncio.to_thread(first.process.wait, grace + 30)
    took = time.monotonic() - signalled
    print(
        f"SIGTERM with {latency:g} s checks in flight: the fetcher exited with {code} after "
        f"{took:.1f} s (worker shutdown timeout {shutdown_timeout} s, grace {grace:g} s)"
    )
    assert took < grace, took
    assert code == 0, first.text()[-3000:]
    assert not {b.instance for b in _beats(redis_url) if b.service == "fetcher"} & held

    system.start("fetcher", **env)  # the replacement pod

    async def all_checked() -> bool:
        return len(await history(db)) == len(ids)

    assert await until(all_checked, within=120), system.logs("fetcher")[-3000:]
    runs = await history(db)
    assert all(len(runs[t]) == 1 for t in ids)  # each checked once: none lost, none twice
    async with db.session_scope() as s:  # being cut short by a shutdown is no failure
        assert await s.scalar(text("SELECT max(consecutive_errors) FROM tasks")) == 0

    async def all_published() -> bool:
        return len(await all_events(redis_url)) >= len(ids)

    assert await until(all_published, within=30)
    events = await all_events(redis_url)
    assert sorted(e.task_id for e in events) == sorted(ids)
    # The 8 it was checking could not finish in 3 s: it handed them back instead of sitting on them.
    assert '"unfinished messages handed back to the queue"' in first.text()
    assert not SESSION_STATE_ERRORS.search(system.logs())
    assert system.unexpected_exits() == []


def _beats(redis_url: str) -> list:  # type: ignore[type-arg]
    with sync_redis.Redis.from_url(redis_url) as client:
        return read_beats(client)


async def _logged(system: System, needle: str) -> bool:
    return needle in system.logs()


async def _steam_asked(system: System, count: int) -> bool:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{system.sim_url}/__sim/stats?timestamps=0") as r:
            stats = await r.json()
    return int(stats["totals"]["priceoverview"]["seen"]) >= count


async def test_a_repeated_sigterm_still_drains_and_exits(
    db: Database, system: System, redis_url: str
) -> None:
    """dramatiq's main passes every SIGTERM on; its workers take a second one as "kill", which
    with the AsyncIO middleware leaves the process hanging. A repeat must change nothing."""
    fetcher = system.start("fetcher", **FAST)
    assert await until(lambda: _logged(system, "worker ready"), within=60)
    workers = {b.instance for b in _beats(redis_url) if b.service == "fetcher"}
    assert workers
    fetcher.stopped_on_purpose = True
    fetcher.process.send_signal(signal.SIGTERM)
    # Once the worker has begun to stop (signals sent together may merge into one), another.
    assert await until(lambda: _logged(system, "worker stopping"), within=30, every=0.02)
    fetcher.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(fetcher.process.wait, 60)
    assert code == 0, fetcher.text()[-3000:]
    assert '"stop signal repeated; still draining"' in fetcher.text()
    assert '"worker stopped"' in fetcher.text()
