"""Helpers of the proxy_budget, memory and seed_design scenarios: samplers, tasks, the simulator.

Samplers run beside a scenario and keep the peak of what they read: PostgreSQL connections
(``pg_stat_activity`` of the scenario's database, from a connection of their own), resident
memory of process trees (psutil), and requests in flight at the simulator (seen minus
answered, from ``/__sim/stats``). Nothing here starts a steamwatch process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psutil
import redis.asyncio
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench.harness import Bench
from shared.db import Database
from shared.heartbeat import PREFIX as HEARTBEAT_PREFIX
from shared.heartbeat import Beat
from shared.models import Task
from testbed.system import SESSION_STATE_ERRORS, System

#: Tasks added here price in euros (the simulator trades every currency).
EUR = 3
#: Application name of the benchmark's own connections: never counted as the system's.
BENCH_APP = "steamwatch-bench"
#: Budgets no run reaches: scenarios that are not about rate limits set these.
UNLIMITED_BUDGETS = "priceoverview=1000000/60,listings=1000000/60,orderbook=1000000/60"


def bench_database(bench: Bench, *, pool_size: int = 2, max_overflow: int = 2) -> Database:
    """The scenario's own database access, named so that the connection samplers skip it."""
    return Database.create(url=bench.database_url, pool_size=pool_size, max_overflow=max_overflow,
                           pool_timeout=60, application_name=BENCH_APP)  # fmt: skip


# --- the simulator -----------------------------------------------------------------------


async def sim_call(
    system: System,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    """One admin call to the simulator (``/__sim/...``); returns its JSON."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.request(method, f"{system.sim_url}{path}", json=body, params=params) as r:
            r.raise_for_status()
            return await r.json()


async def item_names(system: System, count: int) -> list[str]:
    """Up to ``count`` distinct items the simulator trades (with sales), in catalogue order."""
    found = await sim_call(system, "GET", "/__sim/catalogue", params={"appid": "730"})
    names = [i["market_hash_name"] for i in found["items"] if i["daily_volume"] > 0]
    return names[:count]


async def warm_up(system: System, names: Sequence[str], *, currency: int = EUR) -> None:
    """Ask the simulator for every item once, directly, then forget those requests.

    The simulator builds an item's order book (hundreds of listings) the first time anyone
    asks for it: seconds of its one core for a few hundred items, which would otherwise land
    on the first checks of a run and be measured as steamwatch's. Call it before adding any
    latency; rate limits are off meanwhile (a 429 comes before the book is built). The reset
    clears the stats and the rate limiter's memory; the market, books and all, stays.
    """
    limits = await sim_call(system, "GET", "/__sim/limits")
    await sim_call(system, "POST", "/__sim/limits", body={"enabled": False})
    gate = asyncio.Semaphore(8)
    url = f"{system.sim_url}/market/priceoverview/"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:

        async def one(name: str) -> None:
            params = {"appid": "730", "currency": str(currency), "market_hash_name": name}
            async with gate, http.get(url, params=params) as r:
                await r.read()

        await asyncio.gather(*(one(n) for n in dict.fromkeys(names)))
    await sim_call(system, "POST", "/__sim/limits", body={"enabled": limits["enabled"]})
    await sim_call(system, "POST", "/__sim/reset")


ANSWERED = ("served", "not_modified", "rate_limited", "faults", "other")


def in_flight(stats: dict[str, Any]) -> int:
    """Requests the simulator has seen and not answered yet (they sit in its latency)."""
    return sum(
        counts["seen"] - sum(counts[k] for k in ANSWERED) for counts in stats["totals"].values()
    )


@dataclass
class InFlightSampler:
    """The most requests in flight at the simulator at once, read every ``every`` seconds."""

    system: System
    every: float = 0.1
    peak: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            url = f"{self.system.sim_url}/__sim/stats"
            while True:
                try:
                    async with http.get(url, params={"timestamps": "0"}) as r:
                        now = in_flight(await r.json())
                except (aiohttp.ClientError, TimeoutError):
                    now = 0  # a slow answer is no reading; the next one will do
                self.samples.append((time.monotonic(), now))
                self.peak = max(self.peak, now)
                await asyncio.sleep(self.every)

    def mean_between(self, start: float, end: float) -> float:
        inside = [n for t, n in self.samples if start <= t <= end]
        return sum(inside) / len(inside) if inside else 0.0


# --- PostgreSQL connections --------------------------------------------------------------


@dataclass
class ConnectionSampler:
    """Peak connections to one database, per application name and in total (ours excluded).

    Reads ``pg_stat_activity`` every ``every`` seconds over a connection of its own to the
    server's maintenance database, so it never counts itself.
    """

    database_url: str
    every: float = 0.1
    peak_total: int = 0
    peak_by_app: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    #: Sessions (connections) PostgreSQL counted for the database: first and latest reading.
    sessions: tuple[int, int] = (0, 0)

    async def run(self) -> None:
        url = make_url(self.database_url)
        engine = create_async_engine(url.set(database="postgres"), poolclass=NullPool,
                                     isolation_level="AUTOCOMMIT")  # fmt: skip
        query = text(
            "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid() AND application_name <> :bench "
            "GROUP BY 1"
        )
        sessions = text("SELECT sessions FROM pg_stat_database WHERE datname = :name")
        try:
            async with engine.connect() as conn:
                while True:
                    count = int(await conn.scalar(sessions, {"name": url.database}) or 0)
                    self.sessions = (self.sessions[0] if self.reads else count, count)
                    rows = (
                        await conn.execute(query, {"name": url.database, "bench": BENCH_APP})
                    ).all()
                    by_app = {app: int(n) for app, n in rows}
                    self.peak_total = max(self.peak_total, sum(by_app.values()))
                    for app, n in by_app.items():
                        self.peak_by_app[app] = max(self.peak_by_app[app], n)
                    self.reads += 1
                    await asyncio.sleep(self.every)
        finally:
            await engine.dispose()

    @property
    def sessions_opened(self) -> int:
        """Connections opened to the database while sampling (PostgreSQL's own count)."""
        return self.sessions[1] - self.sessions[0]


# --- memory ------------------------------------------------------------------------------


def tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes ``pids`` and all their descendants that still exist."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) the processes ``pids`` and their descendants have used so far."""
    total = 0.0
    for proc in tree(pids):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class MemorySampler:
    """Total resident memory of some process trees, at its peak, read every ``every`` seconds.

    RSS is what the issue asks for; it counts pages a forked child still shares with its
    parent once per process. PSS (shared pages split between their sharers) is kept beside it.
    """

    roots: Sequence[int]
    every: float = 0.2
    with_pss_every: int = 5  # PSS reads /proc/<pid>/smaps: dearer, so only every 5th sample
    peak_rss: int = 0
    peak_pss: int = 0
    peak_threads: int = 0
    processes: int = 0
    #: RSS of each process (by pid) in the sample that had the highest total.
    at_peak: dict[int, int] = field(default_factory=dict)

    async def run(self) -> None:
        reads = 0
        while True:
            await asyncio.to_thread(self._read, reads % self.with_pss_every == 0)
            reads += 1
            await asyncio.sleep(self.every)

    def read(self, pss: bool = True) -> None:
        """One sample now (the sampler's loop calls this; a caller may too, for one reading)."""
        self._read(pss)

    def _read(self, pss: bool) -> None:
        pss_total = threads = 0
        each: dict[int, int] = {}
        procs = tree(self.roots)
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if pss:
                    full = proc.memory_full_info()
                    each[proc.pid] = full.rss
                    pss_total += full.pss
                else:
                    each[proc.pid] = proc.memory_info().rss
                threads += proc.num_threads()
        rss = sum(each.values())
        if rss > self.peak_rss:
            self.at_peak = each
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss_total)
        self.peak_threads = max(self.peak_threads, threads)
        self.processes = max(self.processes, len(procs))


@contextlib.asynccontextmanager
async def sampling(*samplers: Any) -> AsyncIterator[None]:
    """Run each sampler's ``run()`` in the background for the ``async with`` block."""
    tasks = [asyncio.create_task(s.run()) for s in samplers]
    try:
        await asyncio.sleep(0)
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- tasks and services ------------------------------------------------------------------


async def add_watch_tasks(
    db: Database, names: Sequence[str], count: int, *, interval: int, due: datetime | None = None
) -> list[int]:
    """``count`` lowest-price watches over ``names`` (owners vary so each one is distinct)."""
    due = due or datetime.now(UTC)
    rows = [
        {
            "owner": f"bench-{i // len(names)}",
            "appid": 730,
            "currency": EUR,
            "market_hash_name": names[i % len(names)],
            "kind": "lowest_price",
            "conditions": {"max_price": 1},
            "check_interval": interval,
            "next_check": due,
        }
        for i in range(count)
    ]
    ids: list[int] = []
    async with db.session_scope() as s:
        for start in range(0, len(rows), 1000):
            ids += (
                await s.scalars(insert(Task).returning(Task.id), rows[start : start + 1000])
            ).all()
    return ids


async def wait_ready(redis_url: str, service: str, count: int, *, within: float = 90) -> None:
    """Until ``count`` processes of ``service`` say they are ready in their heartbeats."""
    client = redis.asyncio.Redis.from_url(redis_url)
    deadline = time.monotonic() + within
    try:
        while True:
            keys = [k async for k in client.scan_iter(match=f"{HEARTBEAT_PREFIX}{service}:*")]
            beats = [Beat.from_json(raw) for raw in await client.mget(keys) if raw] if keys else []
            if sum(b.state == "ready" for b in beats) >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service}: {len(beats)} of {count} processes ready in {within}s"
                )
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()


def check_health(system: System) -> dict[str, Any]:
    """What went wrong in the services: failed checks, exits, session-state errors."""
    logs = system.logs()
    return {
        "check_errors": system.logs("fetcher").count('"event": "check failed"'),
        "unexpected_exits": system.unexpected_exits(),
        "session_state_errors": len(SESSION_STATE_ERRORS.findall(logs)),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None
