"""The status line of `make run`: what it counts, said in its words."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, update

from shared.db import Database, PriceSnapshot, Task
from shared.runtime import async_client
from steamwatch.monitor import status_line
from tests.fixtures.tasks import add_tasks


async def test_the_status_line_says_its_checks_are_the_successful_ones(
    db: Database, redis_url: str
) -> None:
    ok, failing, stalled = await add_tasks(
        db,
        [
            {"market_hash_name": f"Item {i}", "kind": "lowest_price", "check_interval": 60}
            for i in range(3)
        ],
    )
    async with db.session_scope() as s:
        await s.execute(
            insert(PriceSnapshot),
            [{"task_id": ok, "lease_token": uuid.uuid4(), "currency": 3} for _ in range(4)],
        )
        await s.execute(update(Task).where(Task.id == failing).values(consecutive_errors=2))
        await s.execute(update(Task).where(Task.id == stalled).values(status="stalled"))
    client = async_client(redis_url)
    try:
        line = await status_line(db, client)
    finally:
        await client.aclose()
    assert line.startswith(
        "status: 4 successful checks/min, watches: 1 failing, 1 stalled, 0 failed; "
        "queues checks=0 results=0 dead=0, lag "
    )
