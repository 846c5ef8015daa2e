"""`steamwatch status` as a real process, over real heartbeats, task rows and queues.

Given some services beating and tasks in every state, one of them overdue, I expect the live
and the down services named, the counts and the lag reported, and the exit code to say
whether every service is up.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import insert

from shared.bus import CHECK_ACTOR, CHECKS_QUEUE, create_broker
from shared.db import Database, Task
from shared.runtime import Heart

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("scheduler", "fetcher", "publisher", "watchdog", "notifier", "api")


async def status(redis_url: str, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``steamwatch status`` in a child process against these stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    env.update(STEAMWATCH_REDIS_URL=redis_url, STEAMWATCH_DATABASE_URL=database_url, COLUMNS="200")
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "steamwatch", "status", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def beats(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def beat(
    client: redis.Redis, service: str, instance: str, *, state: str = "ready", up_for: float = 0.0
) -> None:
    """A heartbeat exactly as a running service writes it, started ``up_for`` seconds ago."""
    heart = Heart(service=service, instance=instance)
    heart.state = state  # type: ignore[assignment]
    heart.started_at -= up_for
    heart.write(client)


async def add_tasks(db: Database, *rows: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    base = {
        "owner": "alice",
        "appid": 730,
        "kind": "lowest_price",
        "check_interval": 60,
        "next_check": now + timedelta(minutes=10),
    }
    async with db.session_scope() as s:
        await s.execute(
            insert(Task),
            [{**base, "market_hash_name": f"Item {uuid.uuid4().hex[:10]}", **row} for row in rows],
        )


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def test_status_names_down_services_counts_tasks_and_measures_lag(
    db: Database, database_url: str, redis_url: str, beats: redis.Redis
) -> None:
    # Given a scheduler, a notifier and two fetchers beating (one still starting), no publisher,
    # no watchdog;
    given = time.time()
    beat(beats, "scheduler", "host-a:10", up_for=300)
    beat(beats, "notifier", "host-a:13", up_for=60)
    beat(beats, "api", "host-a:14", up_for=60)
    beat(beats, "fetcher", "host-a:11", up_for=120)
    beat(beats, "fetcher", "host-b:12", state="starting")
    # tasks in every state, one active task 120 s overdue, and overdue ones that do not count:
    # one in flight (leased) and one deactivated an hour past due;
    await add_tasks(
        db,
        {"next_check": ago(120)},
        {"next_check": ago(600), "lease_token": uuid.uuid4(), "lease_expires_at": ago(-60)},
        {"consecutive_errors": 2},
        {},
        {"status": "paused", "next_check": ago(900)},
        {"status": "stalled", "next_check": ago(900)},
        {"status": "failed"},
        {"status": "failed"},
        {"is_active": False, "next_check": ago(3600)},
    )
    # and one check waiting in its queue.
    broker = create_broker(redis_url=redis_url)
    broker.enqueue(
        dramatiq.Message(
            queue_name=CHECKS_QUEUE,
            actor_name=CHECK_ACTOR,
            args=(),
            kwargs={"task_id": 1},
            options={},
        )
    )
    broker.client.connection_pool.disconnect()

    # When I ask for the status, as JSON and as text.
    as_json = await status(redis_url, database_url, "--json")
    finished = time.time()
    as_text = await status(redis_url, database_url)

    # I expect the down services named, the exit code 3, and every number as put there.
    assert as_json.returncode == 3, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["up"] is False and report["down"] == ["publisher", "watchdog"]
    assert {s: report["services"][s]["up"] for s in SERVICES} == {
        "scheduler": True,
        "fetcher": True,
        "publisher": False,
        "watchdog": False,
        "notifier": True,
        "api": True,
    }
    fetchers = report["services"]["fetcher"]["instances"]
    assert [(f["instance"], f["state"]) for f in fetchers] == [
        ("host-a:11", "ready"),
        ("host-b:12", "starting"),
    ]
    (scheduler,) = report["services"]["scheduler"]["instances"]
    # Everything was written after `given` and read before `finished`.
    assert 300 <= scheduler["uptime"] <= 300 + finished - given
    assert 0 <= scheduler["since_beat"] <= finished - given
    assert report["services"]["publisher"]["instances"] == []
    assert report["tasks"] == {
        "active": 4,
        "failing": 1,
        "paused": 1,
        "stalled": 1,
        "failed": 2,
        "deactivated": 1,
    }
    assert report["overdue"] == 1
    assert 120 <= report["lag_seconds"] <= 120 + finished - given
    checks = next(q for q in report["queues"] if q["queue"] == CHECKS_QUEUE)
    assert (checks["ready"], checks["dead"]) == (1, 0)

    assert as_text.returncode == 3, as_text.stderr
    out = as_text.stdout
    assert "down: publisher, watchdog" in out
    for service in SERVICES:
        assert service in out
    assert "host-b:12" in out and "starting" in out
    assert "tasks   4 active (1 failing), 1 paused, 1 stalled, 2 failed; 1 deactivated" in out
    assert "lag     2m" in out and "(1 overdue)" in out
    assert re.search(
        r"queues  checks  1 ready, oldest \d+\.\ds, 0 delayed, 0 in progress, 0 dead", out
    )


async def test_status_exits_zero_when_every_service_is_up(
    db: Database, database_url: str, redis_url: str, beats: redis.Redis
) -> None:
    # Given every service beating and nothing overdue.
    for i, service in enumerate(SERVICES):
        beat(beats, service, f"host:{i}")
    await add_tasks(db, {}, {"status": "paused", "next_check": ago(60)})

    # When I ask for the status.
    as_json = await status(redis_url, database_url, "--json")
    as_text = await status(redis_url, database_url)

    # I expect exit code 0, nobody down, and no lag.
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["up"] is True and report["down"] == []
    assert all(report["services"][s]["up"] for s in SERVICES)
    assert (report["lag_seconds"], report["overdue"]) == (0, 0)
    assert as_text.returncode == 0, as_text.stderr
    assert "all services up" in as_text.stdout and "nothing overdue" in as_text.stdout


async def test_a_stopped_service_is_down_once_its_heartbeat_is_gone(
    db: Database, database_url: str, redis_url: str, beats: redis.Redis
) -> None:
    # Given every service up, then the watchdog stopping cleanly (it clears its heartbeat).
    for service in SERVICES:
        beat(beats, service, f"host:{service}")
    before = await status(redis_url, database_url, "--json")
    Heart(service="watchdog", instance="host:watchdog").clear(beats)

    # When I ask again.
    after = await status(redis_url, database_url, "--json")

    # I expect it up before and down after.
    assert before.returncode == 0 and json.loads(before.stdout)["down"] == []
    assert after.returncode == 3 and json.loads(after.stdout)["down"] == ["watchdog"]


async def test_unreachable_database_is_a_clear_error(redis_url: str) -> None:
    # Given a database URL where nothing listens.
    result = await status(redis_url, "postgresql://steamwatch@127.0.0.1:1/none", "--json")

    # I expect exit code 1 (not 3: nothing is known to be down) and one readable line.
    assert result.returncode == 1
    assert result.stderr.startswith("steamwatch: cannot read the database")
    assert "Traceback" not in result.stderr
