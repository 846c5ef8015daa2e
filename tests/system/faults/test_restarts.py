"""Redis or PostgreSQL restarted while checks flow: every service reconnects by itself.

The stores here belong to the test (it stops and starts them); the services, the simulator and
its proxies are real processes. After the outage every task must be checked again within 30 s
of the store's return, with no service restarted, and every invariant must hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.db import Database, migrate
from steamwatch.embedded import EmbeddedPostgres, EmbeddedRedis
from testbed.system import System
from tests.fixtures.flow import start_flow
from tests.fixtures.invariants import verdict
from tests.fixtures.pipeline import history
from tests.fixtures.waiting import until

OUTAGE = 5.0  # seconds the store is down: the fault itself, not a wait for something
RECONNECT = 30.0  # the bound for every service to be back by itself


@pytest.fixture
async def owned_system(tmp_path: Path) -> AsyncIterator[Callable[[str, str], System]]:
    made: list[System] = []

    def make(database_url: str, redis_url: str) -> System:
        made.append(System(database_url=database_url, redis_url=redis_url, folder=tmp_path))
        return made[-1]

    yield make
    for system in made:
        system.stop_all()


async def _run_through_outage(
    db: Database,
    system: System,
    redis_url: str,
    stop: Callable[[], None],
    start: Callable[[], None],
    what: str,
) -> None:
    flow = await start_flow(db, system, 10)
    ids = flow.ids

    async def checked_twice() -> bool:
        runs = await history(db)
        return all(len(runs[t]) >= 2 for t in ids)

    assert await until(checked_twice, within=60)
    stop()
    await asyncio.sleep(OUTAGE)
    start()
    back = datetime.now(UTC)

    async def all_checked_since() -> bool:
        runs = await history(db)
        return all(any(r.checked_at > back for r in runs[t]) for t in ids)

    assert await until(all_checked_since, within=RECONNECT, every=0.2), system.logs()[-3000:]
    # Reconnecting is the clients' job, not the checks': none fails once the store is back.
    # (A check whose last try failed just before the return may log it a moment later.)
    failed = [
        e
        for e in system.events("fetcher")
        if str(e.get("event")).startswith("check failed")
        and datetime.fromisoformat(e["timestamp"]) > back + timedelta(seconds=1)
    ]
    assert failed == [], f"{len(failed)} check failures logged after {what} was back: {failed[:2]}"
    runs = await history(db)
    resumed = [min(r.checked_at for r in runs[t] if r.checked_at > back) for t in ids]
    after = max((r - back).total_seconds() for r in resumed)
    assert await until(checked_twice, within=10)  # and they go on at their interval
    result = await verdict(db, redis_url, system, window=OUTAGE + RECONNECT)
    print(
        f"{what} down {OUTAGE:g}s: every task checked again within {after:.1f}s of its "
        f"return; {result}"
    )
    assert result.problems == [], result
    assert flow.restarted(system) == {}
    assert all(p.process.poll() is None for p in system.procs)


async def test_redis_restarted_while_checks_flow(
    db: Database, database_url: str, tmp_path: Path, owned_system: Callable[[str, str], System]
) -> None:
    redis_server = EmbeddedRedis(data_dir=tmp_path / "redis")
    url = redis_server.start()
    try:
        system = owned_system(database_url, url)
        await _run_through_outage(db, system, url, redis_server.stop, redis_server.start, "Redis")
    finally:
        redis_server.stop()


async def test_postgres_restarted_while_checks_flow(
    redis_url: str, tmp_path: Path, owned_system: Callable[[str, str], System]
) -> None:
    postgres = EmbeddedPostgres(data_dir=tmp_path / "pg")
    url = postgres.start()
    db: Database | None = None
    try:
        await asyncio.to_thread(migrate.upgrade, url=url)
        db = Database.create(url=url, pool_size=2, max_overflow=0, pool_timeout=30)
        system = owned_system(url, redis_url)
        await _run_through_outage(
            db, system, redis_url, postgres.stop, postgres.start, "PostgreSQL"
        )
    finally:
        if db is not None:
            await db.dispose()
        postgres.stop()
