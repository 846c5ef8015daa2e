"""What every scenario runs against: real stores, a fresh database, the services as processes.

A scenario is a module ``bench.scenarios.<name>`` with

- ``DESCRIPTION``: one line for the table;
- ``TARGETS``: ``{figure: (">=" | "<=", bound)}``, the issue's targets;
- ``async def run(bench: Bench) -> dict[str, Any]``: the figures it measured.

Each scenario gets its own migrated database and a flushed Redis, and every process it started
is stopped after it, whatever happened.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import Database, migrate
from steamwatch.embedded import EmbeddedPostgres, EmbeddedRedis
from testbed.system import System

SCENARIOS = [
    "bus",
    "proxy_budget",
    "dispatch",
    "lag",
    "memory",
    "seed_design",
    "notify",
    "api",
    "history",
    "migration",
    "throughput",
    "floor",
]
VERSIONS = ["steamwatch", "dramatiq", "apscheduler", "sqlalchemy", "asyncpg", "redis", "aiohttp"]
#: Application name of the benchmark's own connections: never counted as the system's.
BENCH_APP = "steamwatch-bench"


def say(message: str) -> None:
    """Progress on stderr, flushed: a long scenario shows what it is doing."""
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """One scenario's world: its database, its Redis, a folder, and the processes it started."""

    database_url: str
    redis_url: str
    folder: Path
    systems: list[System] = field(default_factory=list)

    def system(self, **env: str) -> System:
        """Processes (simulator, services) pointed at this scenario's stores; stopped after it."""
        made = System(
            database_url=self.database_url,
            redis_url=self.redis_url,
            folder=self.folder,
            env=dict(env),
        )
        self.systems.append(made)
        return made

    def database(self, pool_size: int = 5, max_overflow: int = 5) -> Database:
        """The scenario's own database access, named so that the connection samplers skip it."""
        return Database.create(
            url=self.database_url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=60,
            application_name=BENCH_APP,
        )

    def stop(self) -> None:
        for made in reversed(self.systems):
            made.stop_all()


@dataclass
class Stores:
    """The PostgreSQL server and Redis every scenario uses: configured ones, or embedded ones."""

    server_url: str
    redis_url: str
    owned: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    @classmethod
    @contextmanager
    def open(cls, folder: Path) -> Iterator[Stores]:
        db_env = os.environ.get("STEAMWATCH_DATABASE_URL")
        redis_env = os.environ.get("STEAMWATCH_REDIS_URL")
        owned: list[EmbeddedPostgres | EmbeddedRedis] = []
        try:
            if db_env:
                server_url = db_env.replace("postgresql://", "postgresql+asyncpg://", 1)
            else:
                say("starting embedded PostgreSQL")
                postgres = EmbeddedPostgres(data_dir=folder / "pg")
                owned.append(postgres)
                server_url = postgres.start()
            if redis_env:
                redis_url = redis_env
            else:
                say("starting embedded Redis")
                redis_server = EmbeddedRedis(data_dir=folder / "redis")
                owned.append(redis_server)
                redis_url = redis_server.start()
            yield cls(server_url, redis_url, owned)
        finally:
            for store in reversed(owned):
                store.stop()

    @contextmanager
    def fresh(self, folder: Path) -> Iterator[Bench]:
        """A migrated database of its own and a flushed Redis, dropped and stopped afterwards."""
        name = f"steamwatch_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(self.server_url, f'CREATE DATABASE "{name}"'))
        url = make_url(self.server_url).set(database=name).render_as_string(hide_password=False)
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()
        bench = Bench(database_url=url, redis_url=self.redis_url, folder=folder)
        try:
            migrate.upgrade(url=url)
            yield bench
        finally:
            bench.stop()
            asyncio.run(_admin(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def scenario(name: str) -> ModuleType:
    if name not in SCENARIOS:
        raise SystemExit(f"bench: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return importlib.import_module(f"bench.scenarios.{name}")


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in VERSIONS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    return {"cores": os.cpu_count(), "versions": versions}


def judge(figures: dict[str, Any], targets: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """Each target with the measured value and whether it was met."""
    out = {}
    for figure, (op, bound) in targets.items():
        value = figures.get(figure)
        met = value is not None and (value >= bound if op == ">=" else value <= bound)
        out[figure] = {"target": f"{op} {bound:g}", "value": value, "met": met}
    return out


def run_one(stores: Stores, name: str, folder: Path) -> dict[str, Any]:
    module = scenario(name)
    say(f"{name}: {module.DESCRIPTION}")
    started = time.monotonic()
    scenario_folder = folder / name
    scenario_folder.mkdir(parents=True, exist_ok=True)
    with stores.fresh(scenario_folder) as bench:
        figures = asyncio.run(module.run(bench))
    result = {
        "scenario": name,
        **figures,
        "targets": judge(figures, module.TARGETS),
        "elapsed_s": round(time.monotonic() - started, 1),
        **machine(),
    }
    say(f"{name}: done in {result['elapsed_s']:.0f}s")
    return result


def write_results(path: Path, results: list[dict[str, Any]]) -> None:
    """Merge into ``path``: a scenario run alone replaces only its own object."""
    kept: list[dict[str, Any]] = []
    if path.exists():
        try:
            kept = [r for r in json.loads(path.read_text()) if isinstance(r, dict)]
        except (json.JSONDecodeError, TypeError):
            kept = []
    names = {r["scenario"] for r in results}
    merged = [r for r in kept if r.get("scenario") not in names] + results
    order = {name: i for i, name in enumerate(SCENARIOS)}
    merged.sort(key=lambda r: order.get(r.get("scenario", ""), len(order)))
    path.write_text(json.dumps(merged, indent=2, default=str) + "\n")


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'scenario':<13} {'figure':<22} {'value':>12}  target"]
    for result in results:
        skip = {"scenario", "targets", "elapsed_s", "cores", "versions"}
        for figure, value in result.items():
            if figure in skip or isinstance(value, dict | list):
                continue
            target = result["targets"].get(figure)
            mark = ""
            if target is not None:
                mark = f"{target['target']:<10} {'met' if target['met'] else 'MISSED'}"
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            lines.append(f"{result['scenario']:<13} {figure:<22} {shown:>12}  {mark}")
    return "\n".join(lines)
