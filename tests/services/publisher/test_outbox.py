"""The outbox, in this process, against real PostgreSQL and Redis.

Given events staged in a transaction as a check stages them, when the check's process dies
before it publishes them, I expect the publisher's pass to put each on the stream once and
leave the outbox empty; rows younger than the fast path's moment are left to their check, and
a row the fast path published already is not published twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prometheus_client import REGISTRY
from sqlalchemy import text

from services.publisher.service import Publisher
from shared.alerts import Event, read_events, send_staged, stage
from shared.db import Database
from shared.runtime import Pools
from shared.steam import Item


def _events(n: int, owner: str = "alice") -> list[Event]:
    item = Item(730, "AK-47 | Redline (Field-Tested)", 3)
    return [
        Event.about_task(
            "stalled",
            task_id=900_000 + i,
            owner=owner,
            item=item,
            occasion=uuid.uuid4(),
            at=datetime.now(UTC),
            data={"error": "HTTP 503", "consecutive_errors": 5},
        )
        for i in range(n)
    ]


async def _outbox(db: Database) -> int:
    async with db.session_scope() as s:
        return int(await s.scalar(text("SELECT count(*) FROM event_outbox")) or 0)


async def _stream_ids(pools: Pools) -> list[str]:
    return [e.event.id for e in await read_events(pools.redis, count=100_000)]


def _sent(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("steamwatch_outbox_events_sent_total", {"outcome": outcome})
        or 0.0
    )


async def test_events_a_check_left_behind_are_published_once_by_the_publisher(
    db: Database, pools: Pools
) -> None:
    events = _events(3)
    async with db.session_scope() as s:  # committed; the process "died" before publishing
        await stage(s, events)
    publisher = Publisher(batch=2, min_age=0)
    before = _sent("published")

    first = await publisher.run_pass(pools)
    again = await publisher.run_pass(pools)

    assert (first.published, first.duplicates, again.published) == (3, 0, 0)
    ours = {e.id for e in events}
    assert [i for i in await _stream_ids(pools) if i in ours] == [e.id for e in events]
    assert await _outbox(db) == 0
    assert _sent("published") == before + 3


async def test_the_publisher_leaves_a_moment_to_the_fast_path_and_sends_nothing_twice(
    db: Database, pools: Pools
) -> None:
    [fresh, published] = _events(2, owner="bob")
    async with db.session_scope() as s:
        staged = await stage(s, [published])
    assert (await send_staged(db, pools.redis, staged)).published == 1  # the fast path
    async with db.session_scope() as s:
        await stage(s, [fresh])
        # As if the fast path published this one and died before deleting its row.
        await stage(s, [published])

    waited = await Publisher(min_age=60).run_pass(pools)
    assert (waited.published, waited.duplicates) == (0, 0)  # younger than a minute: left
    done = await Publisher(min_age=0).run_pass(pools)

    assert (done.published, done.duplicates) == (1, 1)
    ours = {fresh.id, published.id}
    assert sorted(i for i in await _stream_ids(pools) if i in ours) == sorted(ours)
    assert await _outbox(db) == 0
