"""What the scenarios share: tasks made server-side, the simulator, readiness, rates, samplers.

Every figure is measured, never guessed from settings: with ``time.perf_counter``, PostgreSQL's
own clock, ``/proc`` or the simulator's stats. Samplers run beside a scenario and keep the peak
of what they read: PostgreSQL connections (``pg_stat_activity`` of the scenario's database, from
a connection of their own), resident memory of process trees (psutil), and requests in flight at
the simulator (seen minus answered, from ``/__sim/stats``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench.harness import BENCH_APP, Bench
from bench.noop_worker import QUEUE as NOOP_QUEUE
from shared.bus import NAMESPACE
from shared.config import load_settings
from shared.db import Database
from shared.observability import multiprocess_env
from shared.runtime import read_beats
from testbed.system import SESSION_STATE_ERRORS, Proc, System

#: Tasks added here price in euros (the simulator trades every currency).
EUR = 3
PIPELINE = ("fetcher", "publisher", "scheduler")


def unlimited_budgets(window: int) -> str:
    """``STEAMWATCH_BUDGETS`` that no run reaches: a million requests per proxy in ``window`` s.

    The window is how long the sliding log in Redis keeps each request, so it sets what an
    admission costs there: a short one keeps the log small at thousands of checks a second.
    """
    return ",".join(f"{e}=1000000/{window}" for e in ("priceoverview", "listings", "orderbook"))


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


def served_between(stats: dict[str, Any], start: float, end: float) -> int:
    """Price requests the simulator served (its ``/__sim/stats``) between two Unix times."""
    return sum(
        sum(1 for t in ep.get("served_at", []) if start <= t < end)
        for client in stats["clients"].values()
        if (ep := client["endpoints"].get("priceoverview"))
    )


async def item_names(system: System, count: int | None = None) -> list[str]:
    """The CS2 items the simulator trades (with sales), in catalogue order; the first ``count``."""
    found = await sim_call(system, "GET", "/__sim/catalogue", params={"appid": "730"})
    names = [i["market_hash_name"] for i in found["items"] if i["daily_volume"] > 0]
    return names[:count]


async def warm_up(system: System, names: Sequence[str]) -> None:
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
            params = {"appid": "730", "currency": str(EUR), "market_hash_name": name}
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


# --- tasks -------------------------------------------------------------------------------

_INSERT = text(
    """
    WITH p AS (
        SELECT CAST(:first AS bigint) AS first, CAST(:count AS bigint) AS count,
               CAST(:distinct_names AS bigint) AS distinct_names, CAST(:named AS boolean) AS named,
               CAST(:names AS text[]) AS names, CAST(:interval AS integer) AS interval,
               CAST(:start AS float8) AS start, CAST(:spread AS float8) AS spread
    )
    INSERT INTO tasks (owner, appid, market_hash_name, currency, kind, conditions,
                       check_interval, next_check)
    SELECT 'bench-' || (g / p.distinct_names), 730,
           CASE WHEN p.named THEN p.names[1 + g % p.distinct_names] ELSE 'Bench Item ' || g END,
           3, 'lowest_price', CAST(:conditions AS jsonb), p.interval,
           now() + make_interval(secs => p.start + p.spread * (g - p.first) / p.count)
    FROM p, generate_series(p.first, p.first + p.count - 1) AS g
    """
)  # currency 3: EUR


async def insert_tasks(
    db: Database,
    *,
    count: int,
    interval: int,
    start: float = 0,
    spread: float = 0,
    names: Sequence[str] = (),
    first: int = 0,
    conditions: str = '{"max_price": 1}',
) -> None:
    """``count`` lowest-price watches made in one INSERT ... SELECT generate_series.

    Task ``g`` is due at ``now() + start + spread * g / count`` (by default all due now; a
    ``spread`` staggers them evenly, as a production table built over time would be). With
    ``names``, items cycle through them (owners differ, so every watch is distinct); without,
    each is unique.
    """
    params = {
        "count": count,
        "first": first,
        "interval": interval,
        "start": float(start),
        "spread": float(spread),
        "named": bool(names),
        "names": list(names) or [""],
        "distinct_names": max(len(names), 1) if names else 1000,
        "conditions": conditions,
    }
    async with db.session_scope() as s:
        await s.execute(_INSERT, params)


# --- services ----------------------------------------------------------------------------


def start_pipeline(system: System, **env: str) -> list[Proc]:
    return [system.start(service, **env) for service in PIPELINE]


def ready_counts(redis_url: str) -> Counter[str]:
    """Processes heart-beating "ready", by service."""
    client = redis.Redis.from_url(redis_url)
    try:
        return Counter(b.service for b in read_beats(client) if b.state == "ready")
    finally:
        client.close()


async def wait_ready(
    system: System, redis_url: str, expect: dict[str, int], *, within: float = 60
) -> None:
    """Wait until each service has ``expect[service]`` processes heart-beating "ready"."""
    deadline = time.monotonic() + within
    while True:
        ready = await asyncio.to_thread(ready_counts, redis_url)
        counts = {s: ready[s] for s in expect}
        if all(counts[s] >= n for s, n in expect.items()):
            return
        if exits := system.unexpected_exits():
            raise RuntimeError(f"{exits}: {system.logs()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready within {within:.0f}s: {counts}; {system.logs()[-3000:]}")
        await asyncio.sleep(0.2)


def stop(system: System, names: Sequence[str]) -> dict[str, int]:
    """Stop the named processes (in that order); their exit codes."""
    codes = {}
    for name in names:
        for proc in system.procs:
            if proc.name == name and proc.process.poll() is None:
                codes[name] = system.stop(proc)
    return codes


def check_health(system: System) -> dict[str, Any]:
    """What went wrong in the services: failed checks, exits, session-state errors."""
    logs = system.logs()
    return {
        "check_errors": system.logs("fetcher").count('"event": "check failed"'),
        "unexpected_exits": system.unexpected_exits(),
        "session_state_errors": len(SESSION_STATE_ERRORS.findall(logs)),
    }


def start_noop_worker(bench: Bench, system: System) -> Proc:
    """The no-op actor in real dramatiq processes, with the fetcher's processes and threads.

    Started as ``steamwatch run fetcher`` starts the fetcher (same CLI flags, metrics folder),
    minus the health fork, which serves HTTP and takes no messages.
    """
    env = system.base_env()
    settings = load_settings(env)
    folder = bench.folder / "metrics-noop"
    folder.mkdir(parents=True, exist_ok=True)
    env.update(multiprocess_env(folder))
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "bench.noop_worker:setup",
        "--processes",
        str(settings.fetcher_processes),
        "--threads",
        str(settings.fetcher_threads),
        "--skip-logging",
        "--worker-shutdown-timeout",
        str(int(settings.worker_shutdown_timeout * 1000)),
    ]
    return system.spawn("noop", argv, env)


def noop_unacked(redis_url: str) -> int:
    """No-op messages sent and not yet acknowledged (ready or in a worker's hands)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.hlen(f"{NAMESPACE}:{NOOP_QUEUE}.msgs"))
    finally:
        client.close()


# --- rates, CPU and quantiles ------------------------------------------------------------


@dataclass
class Rate:
    """Completions counted over time; the rate is taken between two levels, past the warm-up.

    ``probe`` (optional) is read when the window opens and when it closes: CPU seconds per
    process, say, to put next to the completions in between.
    """

    points: list[tuple[float, int]] = field(default_factory=list)
    probe: Callable[[], dict[str, float]] | None = None
    probed: list[dict[str, float]] = field(default_factory=list)

    async def watch(
        self,
        count: Callable[[], Awaitable[int]],
        *,
        total: int,
        window: float,
        every: float = 0.25,
        within: float = 300,
    ) -> float:
        """Poll ``count`` until 90% of ``total`` is done or ``window`` seconds passed since
        10% was; returns completions per second between those two moments."""
        started = time.perf_counter()
        low, high = 0.1 * total, 0.9 * total
        warm: float | None = None
        while True:
            now_count = await count()
            now = time.perf_counter()
            self.points.append((now, now_count))
            if warm is None and now_count >= low:
                warm = now
                self._probe()
            if warm is not None and (now_count >= high or now - warm >= window):
                self._probe()
                break
            if now - started > within:
                raise RuntimeError(f"only {now_count} of {total} done after {within:.0f}s")
            await asyncio.sleep(every)
        return self.rate(low)

    def _probe(self) -> None:
        if self.probe is not None:
            self.probed.append(self.probe())

    def rate(self, low: float) -> float:
        first = next(p for p in self.points if p[1] >= low)
        last = self.points[-1]
        if last[0] <= first[0]:
            raise RuntimeError("too few samples to take a rate")
        return (last[1] - first[1]) / (last[0] - first[0])

    def done_in_window(self, low: float) -> int:
        first = next(p for p in self.points if p[1] >= low)
        return self.points[-1][1] - first[1]

    def cpu_ms_each(self, done: int) -> dict[str, float]:
        """CPU milliseconds per completion in the window, by probed process (empty: no probe)."""
        if len(self.probed) < 2 or done <= 0:
            return {}
        before, after = self.probed[0], self.probed[-1]
        return {k: round(1000 * (after[k] - before.get(k, 0.0)) / done, 3) for k in after}


def cpu_seconds(
    system: System, names: Sequence[str], roots: Mapping[str, int] | None = None
) -> dict[str, float]:
    """CPU seconds so far of each named live process and its descendants, and of each root pid
    of ``roots`` (say PostgreSQL's postmaster and Redis) with its descendants, by name.

    User plus system time, with the time of exited children their parent has reaped: a
    PostgreSQL backend that ends keeps counting through the postmaster. One pass over Linux's
    ``/proc``, so every process is read at the same moment and a probe inside a measuring
    window stays cheap.
    """
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        spent[pid] = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)

    def with_descendants(pid: int) -> float:
        return spent.get(pid, 0.0) + sum(with_descendants(c) for c in children.get(pid, []))

    out: dict[str, float] = {}
    for proc in system.procs:
        if proc.name in names and proc.process.poll() is None:
            out[proc.name] = out.get(proc.name, 0.0) + with_descendants(proc.process.pid)
    for name, pid in (roots or {}).items():
        out[name] = with_descendants(pid)
    return out


async def store_roots(database_url: str, redis_url: str) -> dict[str, int]:
    """The root processes of the stores a scenario uses: PostgreSQL's postmaster (the parent of
    a backend) and the Redis server (its ``process_id``), for :func:`cpu_seconds`.

    They count as the system's only when nothing else uses them: the embedded stores ``make
    bench`` starts when no URLs are set.
    """
    engine = create_async_engine(make_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            backend = int(await conn.scalar(text("SELECT pg_backend_pid()")))
            # Read while the backend lives: a procfs read, never blocking.
            stat = Path(f"/proc/{backend}/stat").read_text()  # noqa: ASYNC240
    finally:
        await engine.dispose()
    postmaster = int(stat.rsplit(")", 1)[1].split()[1])
    client = redis.Redis.from_url(redis_url)
    try:
        redis_pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    return {"postgres": postmaster, "redis": redis_pid}


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def metrics_url(system: System, service: str) -> str | None:
    """Where ``service`` serves /metrics, from its "health and metrics served" log line."""
    for line in system.logs(service).splitlines():
        if '"health and metrics served"' in line:
            try:
                return str(json.loads(line)["url"]) + "/metrics"
            except (ValueError, KeyError):
                continue
    return None


async def histogram_quantiles(url: str, name: str, qs: Sequence[float]) -> dict[float, float]:
    """Upper bounds of quantiles of a Prometheus histogram: the smallest bucket holding each."""
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        body = await r.text()
    buckets: list[tuple[float, float]] = []
    for line in body.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    return {q: next((le for le, n in buckets if n >= q * total), math.nan) for q in qs}


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
        engine = create_async_engine(
            url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
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


_JUDGED = text("SELECT count(*) FROM tasks WHERE condition_state IS NOT NULL")
_FAILED = text("SELECT count(*) FROM tasks WHERE consecutive_errors > 0")


async def pipeline_rate(
    system: System, db: Database, *, total: int, window: float
) -> tuple[float, dict[str, float], int]:
    """Checks a second of the running pipeline (tasks judged, from 10% done until 90% or
    ``window`` seconds), CPU milliseconds per check by process in that window, and the tasks
    with a failed check; the pipeline is stopped after."""

    async def judged() -> int:
        async with db.session_scope() as s:
            return int((await s.execute(_JUDGED)).scalar_one())

    meter = Rate(probe=lambda: cpu_seconds(system, ["sim", *PIPELINE]))
    rate = await meter.watch(judged, total=total, window=window, every=0.5, within=240)
    stop(system, ["scheduler", "fetcher", "publisher"])
    async with db.session_scope() as s:
        failed = int((await s.execute(_FAILED)).scalar_one())
    return rate, meter.cpu_ms_each(meter.done_in_window(0.1 * total)), failed
