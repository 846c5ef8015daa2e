"""What the bus, dispatch and lag scenarios share: tasks made server-side, readiness, rates.

Every figure is measured with ``time.perf_counter`` (or, for lag, PostgreSQL's own clock on both
ends), never guessed from settings.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis
from sqlalchemy import text

from bench.harness import Bench
from bench.noop_worker import QUEUE as NOOP_QUEUE
from shared.broker import NAMESPACE
from shared.config import load_settings
from shared.db import Database
from shared.heartbeat import read_beats
from shared.metrics import multiprocess_env
from testbed.system import Proc, System

#: Budgets that never bind: a window of one second holding a million requests per proxy.
UNLIMITED_BUDGETS = "priceoverview=1000000/1,listings=1000000/1,orderbook=1000000/1"
PIPELINE = ("fetcher", "publisher", "scheduler")

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
)


async def insert_tasks(
    db: Database,
    *,
    count: int,
    interval: int,
    start: float,
    spread: float,
    names: Sequence[str] = (),
    first: int = 0,
    conditions: str = '{"max_price": 1}',
) -> None:
    """``count`` lowest-price watches made in one INSERT ... SELECT generate_series.

    Task ``g`` is due at ``now() + start + spread * g / count`` (staggered evenly over
    ``spread`` seconds, as a production table built over time would be). With ``names``, items
    cycle through them (owners differ, so every watch is distinct); without, each is unique.
    """
    params = {
        "count": count, "first": first, "interval": interval, "start": float(start),
        "spread": float(spread), "named": bool(names), "names": list(names) or [""],
        "distinct_names": max(len(names), 1) if names else 1000, "conditions": conditions,
    }  # fmt: skip
    async with db.session_scope() as s:
        await s.execute(_INSERT, params)


async def catalogue(sim_url: str) -> list[str]:
    """Names of the simulator's CS2 items that trade (a priceoverview answers for them)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim_url}/__sim/catalogue", params={"appid": "730"}) as r:
            items = (await r.json())["items"]
    return [i["market_hash_name"] for i in items if i["daily_volume"] > 0]


def ready_count(redis_url: str, service: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for b in read_beats(client) if b.service == service and b.state == "ready")
    finally:
        client.close()


async def wait_ready(
    system: System, redis_url: str, expect: dict[str, int], *, within: float = 60
) -> None:
    """Wait until each service has ``expect[service]`` processes heart-beating "ready"."""
    deadline = time.monotonic() + within
    while True:
        counts = {s: await asyncio.to_thread(ready_count, redis_url, s) for s in expect}
        if all(counts[s] >= n for s, n in expect.items()):
            return
        if exits := system.unexpected_exits():
            raise RuntimeError(f"{exits}: {system.logs()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready within {within:.0f}s: {counts}; {system.logs()[-3000:]}")
        await asyncio.sleep(0.2)


def start_pipeline(system: System, **env: str) -> list[Proc]:
    return [system.start(service, **env) for service in PIPELINE]


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
        sys.executable, "-m", "dramatiq", "bench.noop_worker:setup",
        "--processes", str(settings.fetcher_processes),
        "--threads", str(settings.fetcher_threads),
        "--skip-logging",
        "--worker-shutdown-timeout", str(int(settings.worker_shutdown_timeout * 1000)),
    ]  # fmt: skip
    return system.spawn("noop", argv, env)


def noop_unacked(redis_url: str) -> int:
    """No-op messages sent and not yet acknowledged (ready or in a worker's hands)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.hlen(f"{NAMESPACE}:{NOOP_QUEUE}.msgs"))
    finally:
        client.close()


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


def cpu_seconds(system: System, names: Sequence[str]) -> dict[str, float]:
    """User plus system CPU seconds of each named process and its descendants (Linux /proc)."""
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
        spent[pid] = (int(fields[11]) + int(fields[12])) / tick
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)

    def tree(pid: int) -> float:
        return spent.get(pid, 0.0) + sum(tree(c) for c in children.get(pid, []))

    out: dict[str, float] = {}
    for proc in system.procs:
        if proc.name in names and proc.process.poll() is None:
            out[proc.name] = out.get(proc.name, 0.0) + tree(proc.process.pid)
    return out


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def stop(system: System, names: Sequence[str]) -> dict[str, int]:
    """Stop the named processes (in that order); their exit codes."""
    codes = {}
    for name in names:
        for proc in system.procs:
            if proc.name == name and proc.process.poll() is None:
                codes[name] = system.stop(proc)
    return codes


async def warm_simulator(sim_url: str, names: Sequence[str], *, concurrency: int = 16) -> None:
    """Ask once for every item's price, directly: the simulator builds each order book on first
    sight, a cost of the simulator that must not land inside a measurement."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def one(name: str) -> None:
            params = {"appid": "730", "currency": "3", "market_hash_name": name}
            async with gate, http.get(f"{sim_url}/market/priceoverview/", params=params) as r:
                await r.read()

        await asyncio.gather(*(one(n) for n in names))


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
