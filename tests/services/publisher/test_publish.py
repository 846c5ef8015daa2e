"""One result, in this process, against real PostgreSQL and Redis.

Given a task and a result of its check, when `publish_result` judges it, I expect the event on
the stream and the condition's state on the row; judged twice, one event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio

from services.publisher.publish import Publisher, publish_result
from shared.alerts import read_events
from shared.bus import ResultMessage
from shared.db import Database
from shared.steam import PriceOverview
from tests.fixtures.tasks import EUR, add_tasks, read_task


@pytest.fixture
async def publisher(db: Database, redis_url: str) -> AsyncIterator[Publisher]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield Publisher(db=db, redis=client)
    finally:
        await client.aclose()


async def _task(db: Database, max_price: int) -> int:
    [task_id] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AK-47 | Redline (Field-Tested)",
                "kind": "lowest_price",
                "conditions": {"max_price": max_price},
                "check_interval": 60,
            }
        ],
    )
    return task_id


def _result(task_id: int, lowest: int) -> ResultMessage:
    found = PriceOverview(currency=EUR, lowest_price=lowest, median_price=lowest, volume=10)
    return ResultMessage(
        task_id=task_id,
        lease_token=uuid.uuid4(),
        checked_at=datetime.now(UTC),
        outcome="ok",
        result=found,
    )


async def test_a_price_under_the_threshold_is_one_event_and_a_remembered_state(
    publisher: Publisher, db: Database
) -> None:
    task_id = await _task(db, max_price=1200)
    message = _result(task_id, lowest=1166)

    first = await publish_result(publisher, message)
    again = await publish_result(publisher, message)  # a redelivery

    assert [e.kind for e in first] == ["price_at_or_below"]
    assert again == []
    stream = [s.event for s in await read_events(publisher.redis, since="0", count=100)]
    assert [(e.kind, e.task_id, e.data["price"]) for e in stream] == [
        ("price_at_or_below", task_id, 1166)
    ]
    task = await read_task(db, task_id)
    assert task.condition_state is not None
    assert task.condition_state["checked_at"] == message.checked_at.isoformat()


async def test_a_price_above_the_threshold_raises_no_event(
    publisher: Publisher, db: Database
) -> None:
    task_id = await _task(db, max_price=1000)

    published = await publish_result(publisher, _result(task_id, lowest=1166))

    assert published == []
    assert await read_events(publisher.redis, since="0", count=100) == []
    task = await read_task(db, task_id)
    assert task.condition_state is not None and "checked_at" in task.condition_state
