"""The scheduler's tick against real PostgreSQL: claims it could not send go back at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio
from dramatiq import Message
from sqlalchemy import select

from services.scheduler.service import Scheduler
from shared.bus import CHECKS_QUEUE, NAMESPACE, CheckMessage, create_broker, queue_key
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


async def test_a_tick_sends_its_claims_several_to_a_message_most_overdue_first(
    db: Database, redis_url: str
) -> None:
    now = datetime.now(UTC)
    ids = await insert_tasks(
        db,
        [r | {"next_check": now - timedelta(seconds=70 - i)} for i, r in enumerate(task_rows(7))],
    )
    broker = create_broker(redis_url=redis_url)
    broker.declare_queue(CHECKS_QUEUE)
    scheduler = Scheduler(broker=broker, batch=10, high_water=100, lease_seconds=120, per_message=3)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        claims = await scheduler.tick(Pools(db=db, redis=client))
        order = await client.lrange(queue_key(CHECKS_QUEUE), 0, -1)  # as the queue holds them
        stored = await client.hmget(f"{NAMESPACE}:{CHECKS_QUEUE}.msgs", order)
    finally:
        await client.aclose()
        broker.close()

    messages = [Message.decode(data) for data in stored]
    checks = [CheckMessage.parse(tuple(m.args), dict(m.kwargs)) for m in messages]
    assert [len(c.claims()) for c in checks] == [3, 3, 1]
    sent = [(claim.task_id, claim.lease_token) for c in checks for claim in c.claims()]
    assert sent == [(c.task_id, c.lease_token) for c in claims]
    assert [task_id for task_id, _ in sent] == ids  # the most overdue first
