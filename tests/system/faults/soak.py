"""`make soak`: 2,000 tasks for 10 minutes with faults injected at random, then the invariants.

Everything is real and owned by the run: embedded PostgreSQL and Redis in a temporary folder
(the soak restarts them), the simulator with local proxies, every service as its own process.
Faults come one at a time at random moments (seeded, so a run can be repeated), each followed
by what Kubernetes would do (a killed service is started again). The last part of the run is
fault-free, so that every task can catch up. At the end it prints the figures: checks done,
staleness, duplicates, errors by kind, and the verdict of the invariants the fault tests check;
it exits 1 if an invariant broke.

    make soak                                   # 2,000 tasks, 10 minutes
    make soak SOAK_ARGS="--tasks 500 --minutes 3 --seed 7"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import dramatiq
import redis.asyncio
from sqlalchemy import func, insert, select

from shared.bus import CHECK_ACTOR, CHECKS_QUEUE, NAMESPACE, create_broker
from shared.bus.queues import all_queue_stats
from shared.db import Database, PriceSnapshot, Task, migrate
from steamwatch.embedded import EmbeddedPostgres, EmbeddedRedis
from testbed.system import System
from tests.fixtures.invariants import verdict
from tests.fixtures.pipeline import all_events

SERVICES = ("fetcher", "publisher", "watchdog", "scheduler")
KINDS = ("lowest_price",) * 7 + ("new_listings",) * 2 + ("order_book",)
# Met from the first check (and new listings all along, the simulator's market moving every
# 10 s): events flow, so "no event published twice" is tested on many of them.
CONDITIONS = {
    "lowest_price": {"max_price": 10**7},
    "new_listings": {"max_price": 10**7},
    "order_book": {"max_lowest_sell": 10**7},
}


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


@dataclass
class Soak:
    system: System
    db: Database
    postgres: EmbeddedPostgres
    redis_server: EmbeddedRedis
    redis_url: str
    rng: random.Random
    fault_seconds: float
    injected: list[tuple[float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def service(self, name: str) -> Any:
        return next(p for p in reversed(self.system.procs) if p.name == name)

    async def restart(self, name: str, *, kill: bool) -> None:
        """``kill -9`` (the whole process group) or SIGTERM one service, then start it again."""
        proc = self.service(name)
        if kill:
            proc.stopped_on_purpose = True
            os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait()
        else:
            code = await asyncio.to_thread(self.system.stop, proc)
            if code != 0:
                say(f"  ! {name} exited {code} on SIGTERM")
                self.injected.append((self.elapsed(), f"{name} SIGTERM exit code {code}"))
        await asyncio.sleep(2)  # a pod's restart delay
        self.system.start(name)

    async def store_outage(self, which: str) -> None:
        server = self.redis_server if which == "redis" else self.postgres
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(5)
        await asyncio.to_thread(server.start)

    async def steam_fault(self, spec: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as http:
            body = {**spec, "duration_s": self.fault_seconds}
            async with http.post(f"{self.system.sim_url}/__sim/faults", json=body) as r:
                r.raise_for_status()
        await asyncio.sleep(self.fault_seconds)

    async def bad_messages(self) -> None:
        """Malformed messages pushed straight onto the queues, as a buggy client would."""
        broker = create_broker(redis_url=self.redis_url)
        lease = str(uuid.uuid4())
        for kwargs in (
            {"lease_token": lease},
            {"task_id": "x", "lease_token": 5},
            {"task_id": 10**9, "lease_token": lease},
        ):
            broker.enqueue(
                dramatiq.Message(
                    queue_name=CHECKS_QUEUE,
                    actor_name=CHECK_ACTOR,
                    args=(),
                    kwargs=kwargs,
                    options={},
                )
            )
        broker.close()
        client = redis.asyncio.Redis.from_url(self.redis_url)
        try:
            for queue in (CHECKS_QUEUE,):
                redis_id = str(uuid.uuid4())
                await client.hset(f"{NAMESPACE}:{queue}.msgs", redis_id, b"\x00\xffgarbage")
                await client.rpush(f"{NAMESPACE}:{queue}", redis_id)
        finally:
            await client.aclose()

    def faults(self) -> dict[str, Callable[[], Awaitable[None]]]:
        out: dict[str, Callable[[], Awaitable[None]]] = {
            "redis restarted": lambda: self.store_outage("redis"),
            "postgres restarted": lambda: self.store_outage("postgres"),
            "steam 429 storm": lambda: self.steam_fault({"mode": "rate_limit_storm"}),
            "steam 5xx burst": lambda: self.steam_fault({"mode": "http_5xx", "probability": 0.5}),
            "steam timeouts": lambda: self.steam_fault(
                {"mode": "timeout", "probability": 0.3, "delay_ms": 10_000}
            ),
            "steam malformed bodies": lambda: self.steam_fault(
                {"mode": "malformed_json", "probability": 0.3}
            ),
            "malformed messages": self.bad_messages,
        }
        for name in SERVICES:
            out[f"kill -9 {name}"] = partial(self.restart, name, kill=True)
            out[f"SIGTERM {name}"] = partial(self.restart, name, kill=False)
        return out

    def elapsed(self) -> float:
        return time.monotonic() - self.started


async def _catalogue(sim_url: str) -> list[str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim_url}/__sim/catalogue", params={"appid": "730"}) as r:
            items = (await r.json())["items"]
    return [i["market_hash_name"] for i in items if i["daily_volume"] > 0]


async def _add_tasks(
    db: Database, names: list[str], count: int, interval: int, rng: random.Random
) -> None:
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        kind = rng.choice(KINDS)
        rows.append(
            {
                "owner": f"soak-{i // len(names)}",
                "appid": 730,
                "currency": 3,
                "market_hash_name": names[i % len(names)],
                "kind": kind,
                "check_interval": interval,
                "conditions": CONDITIONS[kind],
                # staggered over one interval, as a fleet of tasks added over time would be
                "next_check": now + timedelta(seconds=rng.uniform(0, interval)),
            }
        )
    async with db.session_scope() as s:
        await s.execute(insert(Task), rows)


def _problem(entry: dict[str, Any]) -> str:
    """An error log line's kind: its event, with dramatiq's per-message text reduced to the
    exception that failed the message (one kind per exception, not one per message)."""
    event = str(entry.get("event"))
    if event.startswith("Failed to process message"):
        raised = re.findall(
            r"^([\w.]+(?:Error|Exception)\b.*)$", str(entry.get("exception", "")), re.MULTILINE
        )
        return f"message failed, will be retried: {raised[-1][:140] if raised else '?'}"
    return event


def _error_kind(error: str) -> str:
    return re.split(r"[:(]", error, maxsplit=1)[0].strip() or "unknown"


async def _progress(soak: Soak, total: float) -> None:
    while True:
        await asyncio.sleep(30)
        async with soak.db.session_scope() as s:
            checks = await s.scalar(select(func.count()).select_from(PriceSnapshot))
        try:
            client = redis.asyncio.Redis.from_url(soak.redis_url)
            try:
                stats = await all_queue_stats(client)
                depth = {q.queue: q.ready for q in stats}
            finally:
                await client.aclose()
        except Exception as e:  # the store may be the fault being injected
            depth = {"unreadable": type(e).__name__}  # type: ignore[dict-item]
        say(
            f"[{soak.elapsed():4.0f}/{total:.0f}s] {checks} checks so far; queues ready {depth}; "
            f"{len(soak.injected)} faults injected"
        )


async def _injector(soak: Soak, until: float, every: tuple[float, float]) -> None:
    faults = soak.faults()
    names = sorted(faults)
    while True:
        await asyncio.sleep(soak.rng.uniform(*every))
        if soak.elapsed() >= until:
            return
        name = soak.rng.choice(names)
        say(f"fault: {name}")
        soak.injected.append((soak.elapsed(), name))
        try:
            await faults[name]()
        except Exception as e:
            say(f"  ! injecting {name} failed: {type(e).__name__}: {e}")
        say(f"fault over: {name}")


async def run(args: argparse.Namespace, folder: Path) -> int:
    rng = random.Random(args.seed)
    postgres = EmbeddedPostgres(data_dir=folder / "pg")
    redis_server = EmbeddedRedis(data_dir=folder / "redis")
    db: Database | None = None
    system: System | None = None
    try:
        say("starting embedded PostgreSQL and Redis")
        database_url = postgres.start()
        redis_url = redis_server.start()
        await asyncio.to_thread(migrate.upgrade, url=database_url)
        db = Database.create(url=database_url, pool_size=2, max_overflow=2, pool_timeout=60)
        env = {
            "STEAMWATCH_SCHEDULER_TICK": "0.5",
            "STEAMWATCH_BUDGETS": "priceoverview=100000/60,listings=100000/60,orderbook=100000/60",
            "STEAMWATCH_HTTP_TIMEOUT": "3",
            "STEAMWATCH_LEASE_SECONDS": "30",
            "STEAMWATCH_WATCHDOG_TICK": "5",
            "STEAMWATCH_WATCHDOG_GRACE": "15",
            "STEAMWATCH_BACKOFF_CAP": "120",
            # Steam's real 429s last minutes and the production ladder starts at 5 minutes;
            # the soak's storms last 30 s, so its ladder is scaled the same way.
            "STEAMWATCH_COOLDOWNS": "15,30,60,120",
            "STEAMWATCH_FETCHER_THREADS": "32",
        }
        system = System(database_url=database_url, redis_url=redis_url, folder=folder, env=env)
        system.start_simulator("--no-limits", "--tick-seconds", "10", proxies=4)
        names = await _catalogue(system.sim_url)
        await _add_tasks(db, names, args.tasks, args.interval, rng)
        say(
            f"{args.tasks} tasks at a {args.interval}s interval over {len(names)} items; "
            f"logs in {folder}"
        )
        for service in SERVICES:
            system.start(service)
        total = args.minutes * 60
        soak = Soak(
            system=system,
            db=db,
            postgres=postgres,
            redis_server=redis_server,
            redis_url=redis_url,
            rng=rng,
            fault_seconds=args.fault_seconds,
        )
        progress = asyncio.create_task(_progress(soak, total))
        injector = asyncio.create_task(_injector(soak, total - args.settle, (20.0, 40.0)))
        await asyncio.sleep(max(total - soak.elapsed(), 0))
        await injector
        progress.cancel()
        result = await verdict(db, redis_url, system, window=args.window)
        return await _report(soak, db, result, args)
    finally:
        if system is not None:
            system.stop_all()
        if db is not None:
            await db.dispose()
        redis_server.stop()
        postgres.stop()


async def _report(soak: Soak, db: Database, result: Any, args: argparse.Namespace) -> int:
    async with db.session_scope() as s:
        rows = (
            await s.execute(
                select(PriceSnapshot.task_id, PriceSnapshot.checked_at).order_by(
                    PriceSnapshot.checked_at
                )
            )
        ).all()
        statuses = dict(
            (await s.execute(select(Task.status, func.count()).group_by(Task.status))).all()
        )
    by_task: dict[int, list[datetime]] = {}
    for task_id, checked_at in rows:
        by_task.setdefault(task_id, []).append(checked_at)
    gaps = sorted(
        (b - a).total_seconds() - args.interval
        for times in by_task.values()
        for a, b in zip(times, times[1:], strict=False)
    )
    events = await all_events(soak.redis_url)
    entries = soak.system.events()
    errors = Counter(
        _error_kind(str(e.get("error", ""))) for e in entries if e.get("event") == "check failed"
    )
    problems = Counter(_problem(e) for e in entries if e.get("level") in ("error", "critical"))
    figures = {
        "tasks": args.tasks,
        "minutes": args.minutes,
        "checks_done": len(rows),
        "checks_per_s": round(len(rows) / soak.elapsed(), 2),
        "tasks_never_checked": args.tasks - len(by_task),
        "staleness_p50_s": round(gaps[len(gaps) // 2], 2) if gaps else None,
        "staleness_p99_s": round(gaps[int(len(gaps) * 0.99)], 2) if gaps else None,
        "max_staleness_s": round(gaps[-1], 2) if gaps else None,
        "events": len(events),
        "duplicate_events": len(events) - len({e.id for e in events}),
        "task_statuses": statuses,
        "faults": [f"{t:.0f}s {name}" for t, name in soak.injected],
        "check_errors_by_kind": dict(errors.most_common()),
        "error_log_lines_by_event": dict(problems.most_common()),
        "unexpected_exits": soak.system.unexpected_exits(),
        "invariants": {
            "problems": len(result.problems),
            "examples": result.problems[:8],
            "worst_gap_beyond_interval_s": round(result.worst_gap, 1),
            "window_s": args.window,
        },
    }
    print(json.dumps(figures, indent=2, default=str))
    ok = not result.problems and figures["tasks_never_checked"] == 0
    say("invariants hold" if ok else f"INVARIANTS BROKEN: {result.problems}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=int, default=60, help="every task's check interval")
    parser.add_argument(
        "--seed",
        type=int,
        default=int(time.time()) % 10_000,
        help="seed of the fault schedule (printed, so a run can be repeated)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=150.0,
        help="fault-free seconds at the end, for every task to catch up",
    )
    parser.add_argument(
        "--fault-seconds", type=float, default=30.0, help="how long each Steam fault lasts"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=180.0,
        help="how far beyond its interval a fault may push a task's check",
    )
    parser.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="keep the stores and every process's log here (default: a "
        "temporary folder, removed at the end)",
    )
    args = parser.parse_args(argv)
    say(f"soak: seed {args.seed}")
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
        return asyncio.run(run(args, args.folder))
    with tempfile.TemporaryDirectory(prefix="steamwatch-soak-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
