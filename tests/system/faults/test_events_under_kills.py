"""Issue 16: the events published are exactly the transitions the stored checks imply, whatever
gets killed.

Watches whose conditions sit at the price they start from, on a market where two answers in
five have no listing for sale (price watches flip between met and not met at that pace); fetcher and publisher processes SIGKILLed at
random moments, twenty times, each replaced as a Deployment would. Every check's row, the
watch's judged state and the check's events commit together, so the stored checks of a watch,
read in order, say which checks raised an alert (met, after a check that was not); the stream
must hold exactly those alerts, each once, its id naming the check.

Stores: the session's (this test restarts neither); the services, the simulator and its
proxies are real processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from typing import Any

import aiohttp
import psutil
import redis.asyncio
from sqlalchemy import text

from shared.db import Database
from shared.steam import parse_priceoverview
from testbed.system import Proc, System
from tests.fixtures.invariants import verdict
from tests.fixtures.pipeline import FAST, all_events, catalogue, history, sim_admin
from tests.fixtures.tasks import EUR, add_tasks
from tests.fixtures.waiting import until

KILLS = 20
SERVICES = ("fetcher", "publisher", "watchdog", "scheduler")
LEASE, TICK = 4, 0.5
ENV = {
    **FAST,
    "STEAMWATCH_WORKER_SHUTDOWN_TIMEOUT": "3",
    "STEAMWATCH_LEASE_SECONDS": str(LEASE),
    "STEAMWATCH_WATCHDOG_TICK": str(TICK),
    "STEAMWATCH_PUBLISHER_TICK": str(TICK),
}


async def _price(system: System, name: str) -> int:
    """The item's lowest price in euro cents now, as the fetcher would read it."""
    params = {"appid": "730", "currency": str(EUR), "market_hash_name": name}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{system.sim_url}/market/priceoverview/", params=params) as r,
    ):
        body = await r.read()
    found = parse_priceoverview(body, currency=EUR, appid=730, market_hash_name=name)
    assert found.lowest_price is not None, name
    return found.lowest_price


async def _pids(redis_url: str, proc: Proc) -> list[int]:
    """The fetcher's worker processes (those heart-beating as it: not the health fork), else
    the service's own process."""
    if proc.name != "fetcher":
        return [proc.process.pid]
    try:
        children = {c.pid for c in psutil.Process(proc.process.pid).children()}
    except psutil.NoSuchProcess:
        return []
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match="steamwatch:heartbeat:fetcher:*")]
        beats = [json.loads(b) for b in (await client.mget(keys) if keys else []) if b]
    finally:
        await client.aclose()
    return [p for b in beats if (p := int(b["instance"].rsplit(":", 1)[1])) in children]


def _expected(rows: dict[int, list[Any]], limits: dict[int, tuple[str, int]]) -> set[str]:
    """The alerts the stored checks imply: a check met after one that was not (or none)."""
    ids: set[str] = set()
    for task_id, (kind, limit) in limits.items():
        key = "price" if kind == "lowest_price" else "book"
        was_met = False
        for row in rows.get(task_id, []):
            price = row.lowest_price if kind == "lowest_price" else row.lowest_sell
            met = price is not None and price <= limit
            if met and not was_met:
                ids.add(f"{task_id}:{row.lease_token}:{key}")
            was_met = met
    return ids


async def test_events_equal_the_transitions_the_stored_checks_imply_through_20_kills(
    db: Database, system: System, redis_url: str
) -> None:
    system.start_simulator("--no-limits", "--tick-seconds", "1", "--latency-ms", "150")
    names = await catalogue(system, 16)
    watches = []
    for i, name in enumerate(names):
        kind = "lowest_price" if i % 4 else "order_book"
        key = "max_price" if kind == "lowest_price" else "max_lowest_sell"
        watches.append(
            {
                "market_hash_name": name,
                "kind": kind,
                "check_interval": 2,
                "conditions": {key: await _price(system, name)},
            }
        )
    # A moving market, faster than Steam's: two answers in five say no listing is for sale
    # (Steam leaves lowest_price out then), so price watches flip between met and not met.
    await sim_admin(
        system,
        "POST",
        "/__sim/faults",
        {
            "faults": [
                {
                    "mode": "rename_field",
                    "field": "lowest_price",
                    "endpoints": ["priceoverview"],
                    "probability": 0.4,
                }
            ],
            "replace": True,
        },
    )
    ids = await add_tasks(db, watches)
    limits = {
        t: (w["kind"], next(iter(w["conditions"].values())))
        for t, w in zip(ids, watches, strict=True)
    }
    procs = {s: system.start(s, **ENV) for s in SERVICES}
    rng = random.Random(16)
    killed: Counter[str] = Counter()
    started = time.monotonic()
    assert await until(lambda: _checked_once(db, ids), within=60), system.logs()[-3000:]
    while sum(killed.values()) < KILLS:
        await asyncio.sleep(rng.uniform(0.5, 2.5))
        service = rng.choice(["fetcher", "publisher"])
        proc = procs[service]
        pids = await _pids(redis_url, proc)
        if not pids:
            continue
        proc.stopped_on_purpose = True
        os.kill(rng.choice(pids), signal.SIGKILL)
        if service == "fetcher":  # its main process sees a worker gone and exits, as the pod
            assert await until(lambda p=proc: _exited(p), within=30)
        else:
            assert await until(lambda p=proc: _exited(p), within=5)
        procs[service] = system.start(service, **ENV)
        killed[service] += 1
    took = time.monotonic() - started
    assert await until(lambda: _checked_once(db, ids), within=30)
    result = await verdict(db, redis_url, system, window=LEASE + 2 * TICK + 10)

    # No new checks; what is leased finishes (or its lease runs out and the watchdog re-sends
    # it), and the outbox empties.
    system.stop(procs["scheduler"])
    assert await until(lambda: _settled(db), within=LEASE + 60, every=0.2), system.logs()[-3000:]
    rows = await history(db)
    expected = _expected(rows, limits)
    kinds = ("price_at_or_below", "order_book")
    events = [e for e in await all_events(redis_url) if e.kind in kinds]
    published = Counter(e.id for e in events)
    print(
        f"\n{KILLS} kills ({dict(killed)}) over {took:.0f} s: "
        f"{sum(len(r) for r in rows.values())} checks of {len(ids)} watches, {len(expected)} "
        f"alerts implied, {len(events)} published; {result}"
    )
    # Each watch alerted at its first check, and the price watches again and again since.
    assert len(expected) >= 2 * len(ids), "the market did not move the conditions enough"
    assert [i for i, n in published.items() if n > 1] == []  # none twice
    assert set(published) == expected  # none missing, none made up
    assert killed["fetcher"] and killed["publisher"]
    assert result.problems == [], result


async def _checked_once(db: Database, ids: list[int]) -> bool:
    runs = await history(db)
    return all(runs.get(t) for t in ids)


async def _exited(proc: Proc) -> bool:
    return proc.process.poll() is not None


async def _settled(db: Database) -> bool:
    async with db.session_scope() as s:
        leased = await s.scalar(text("SELECT count(*) FROM tasks WHERE lease_token IS NOT NULL"))
        waiting = await s.scalar(text("SELECT count(*) FROM event_outbox"))
    return leased == 0 and waiting == 0
