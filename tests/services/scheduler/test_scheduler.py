"""The scheduler's tick against real PostgreSQL: claims it could not send go back at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio
from sqlalchemy import select

from services.scheduler.service import Scheduler
from shared.bus import create_broker
from shared.db import Database, Task
from shared.runtime import Pools
from tests.fixtures.tasks import insert_tasks, task_rows


async def test_claims_whose_message_could_not_be_sent_are_released_for_the_next_tick(
    db: Database, redis_url: str
) -> None:
    due = datetime.now(UTC) - timedelta(seconds=30)
    ids = await insert_tasks(db, task_rows(3, next_check=due))
    # The queue is read from the working Redis; the messages go to a broker nobody listens on.
    dead_broker = create_broker(redis_url="redis://127.0.0.1:1/0")
    scheduler = Scheduler(broker=dead_broker, batch=10, high_water=100, lease_seconds=120)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        claims = await scheduler.tick(Pools(db=db, redis=client))
    finally:
        await client.aclose()
    assert sorted(c.task_id for c in claims) == ids
    async with db.session_scope() as s:
        rows = (await s.scalars(select(Task).order_by(Task.id))).all()
    # Not left leased for two minutes: unleased, still due, claimable by the very next tick.
    assert [(r.lease_token, r.consecutive_errors) for r in rows] == [(None, 0)] * 3
    assert all(r.next_check <= datetime.now(UTC) for r in rows)
