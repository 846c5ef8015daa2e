"""The notifier through its faults: killed again and again, its stores restarted, the chat
service down for a minute. Every event reaches its subscription; a duplicate only where a
crash fell inside a send, and never more of them than the notifier counted.

Real processes throughout: the notifier (`steamwatch run notifier`), the webhook receiver
stand-in, PostgreSQL and Redis. The tests that restart a store use a server of their own. The
only fixed waits are the faults' own durations (a store down 5 s, the receiver down 60 s).
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.db import Database, migrate
from steamwatch.embedded import EmbeddedPostgres, EmbeddedRedis
from testbed.system import System
from tests.fixtures.notify import (
    FAST_NOTIFIER,
    deliveries,
    event,
    publish_events,
    received,
    subscribe,
)
from tests.fixtures.waiting import until

#: Retries that outlast a minute's outage: 1, 2, 4, 8, 10, 10... seconds, 20 attempts.
PATIENT = {
    **FAST_NOTIFIER,
    "STEAMWATCH_NOTIFY_RETRY_BASE": "1",
    "STEAMWATCH_NOTIFY_RETRY_CAP": "10",
    "STEAMWATCH_NOTIFY_MAX_ATTEMPTS": "20",
    "STEAMWATCH_NOTIFIER_CONSUMER": "notifier-a",  # a pod's name: the same after a restart
}


def resent_counted(system: System) -> int:
    """Deliveries the notifiers said they sent again after a stop (each a possible duplicate)."""
    return sum(
        int(e["count"])
        for e in system.events("notifier")
        if e.get("event") == "deliveries left mid-send by a stopped notifier are sent again"
    )


def duplicates(record: Path) -> int:
    return sum(n - 1 for n in received(record).values() if n > 1)


async def test_ten_kills_at_random_moments_lose_nothing_and_duplicate_only_what_was_counted(
    db: Database, system: System, redis_url: str
) -> None:
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    _, url, record = system.start_receiver("--delay", "0.05")
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    events = [event(n) for n in range(600)]
    notifier = system.start("notifier", **PATIENT)
    kills = 0

    async def publish_steadily() -> None:
        for start in range(0, len(events), 10):  # 50 events a second, for 12 s
            await publish_events(redis_url, events[start : start + 10])
            await asyncio.sleep(0.2)

    publishing = asyncio.create_task(publish_steadily())
    while kills < 10:
        # Each kill falls while this notifier is delivering: after its first send, at a
        # random moment within the next half second.
        before = sum(received(record).values())

        async def delivering(before: int = before) -> bool:
            return sum(received(record).values()) > before or publishing.done()

        assert await until(delivering, within=30, every=0.05), system.logs("notifier")[-3000:]
        await asyncio.sleep(rng.uniform(0, 0.5))  # the fault's moment, not a wait
        notifier.process.send_signal(signal.SIGKILL)
        notifier.process.wait()
        notifier.stopped_on_purpose = True
        kills += 1
        notifier = system.start("notifier", **PATIENT)
    await publishing

    async def all_delivered() -> bool:
        return set(received(record)) == {e.id for e in events}

    assert await until(all_delivered, within=90), (seed, system.logs("notifier")[-3000:])
    twice = duplicates(record)
    counted = resent_counted(system)
    print(f"seed {seed}: 10 kills, 600 events delivered, {twice} duplicates, {counted} counted")
    assert twice <= counted, (seed, twice, counted)
    assert {r["status"] for r in await deliveries(db)} == {"sent"}
    assert system.unexpected_exits() == []


@pytest.fixture
def owned(tmp_path: Path) -> Callable[[str, str], System]:
    made: list[System] = []

    def make(database_url: str, redis_url: str) -> System:
        made.append(System(database_url=database_url, redis_url=redis_url, folder=tmp_path / "sys"))
        made[-1].folder.mkdir(exist_ok=True)
        return made[-1]

    yield make  # type: ignore[misc]
    for system in made:
        system.stop_all()


async def _through_outage(
    db: Database,
    system: System,
    redis_url: str,
    stop: Callable[[], None],
    start: Callable[[], None],
) -> None:
    # Sends take 0.3 s each, so the outage falls in the middle of the flow.
    _, url, record = system.start_receiver("--delay", "0.3")
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    notifier = system.start("notifier", **PATIENT, STEAMWATCH_NOTIFY_CONCURRENCY="4")
    events = [event(n) for n in range(60)]
    await publish_events(redis_url, events)

    async def some_delivered() -> bool:
        return len(received(record)) >= 10

    assert await until(some_delivered, within=30), system.logs("notifier")[-3000:]
    stop()
    await asyncio.sleep(5.0)  # the outage itself
    start()
    await publish_events(redis_url, [event(n) for n in range(60, 70)])
    events += [event(n) for n in range(60, 70)]

    async def all_delivered() -> bool:
        return set(received(record)) == {e.id for e in events}

    assert await until(all_delivered, within=90), system.logs("notifier")[-3000:]
    assert duplicates(record) <= resent_counted(system)
    assert notifier.process.poll() is None  # it rode the outage out; nothing restarted it
    assert system.unexpected_exits() == []


async def test_a_redis_restart_loses_no_notification(
    db: Database, database_url: str, tmp_path: Path, owned: Callable[[str, str], System]
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "redis")
    url = server.start()
    try:
        system = owned(database_url, url)
        await _through_outage(db, system, url, server.stop, server.start)
    finally:
        server.stop()


async def test_a_postgres_restart_loses_no_notification(
    redis_url: str, tmp_path: Path, owned: Callable[[str, str], System]
) -> None:
    postgres = EmbeddedPostgres(data_dir=tmp_path / "pg")
    url = postgres.start()
    db: Database | None = None
    try:
        await asyncio.to_thread(migrate.upgrade, url=url)
        db = Database.create(url=url, pool_size=2, max_overflow=0, pool_timeout=30)
        system = owned(url, redis_url)
        await _through_outage(db, system, redis_url, postgres.stop, postgres.start)
    finally:
        if db is not None:
            await db.dispose()
        postgres.stop()


async def test_the_chat_service_down_for_a_minute_loses_nothing(
    db: Database, system: System, redis_url: str
) -> None:
    receiver, url, record = system.start_receiver()
    port = int(url.rsplit(":", 1)[1])
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    system.start("notifier", **PATIENT)
    first = [event(n) for n in range(5)]
    await publish_events(redis_url, first)

    async def delivered(events: list) -> bool:  # type: ignore[type-arg]
        return {e.id for e in events} <= set(received(record))

    assert await until(lambda: delivered(first), within=30)
    system.stop(receiver)  # connection refused from here on
    during = [event(n) for n in range(5, 25)]
    await publish_events(redis_url, during)
    await asyncio.sleep(60)  # the outage itself
    rows = await deliveries(db)
    assert {r["status"] for r in rows if r["event_id"] in {e.id for e in during}} == {"pending"}
    system.start_receiver(port=port, record=record)
    assert await until(lambda: delivered(during), within=30), system.logs("notifier")[-3000:]
    assert set(received(record).values()) == {1}
    retried = [e for e in system.events("notifier") if e.get("event") == "send failed; will retry"]
    assert retried and all("connection refused" in e["error"] for e in retried)
