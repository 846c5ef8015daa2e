"""The status line of `make run`: what it counts, said in its words."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import insert, update

from shared.alerts import Event
from shared.db import Database, PriceSnapshot, Task
from shared.runtime import async_client
from steamwatch.monitor import status_line
from steamwatch.tail import describe
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
        "queues checks=0 dead=0, lag "
    )


def test_an_order_book_event_line_names_the_side_that_matched() -> None:
    event = Event.from_json(
        json.dumps(
            {
                "schema": 1,
                "id": "e1",
                "kind": "order_book",
                "task_id": 7,
                "owner": "bob",
                "item": {
                    "appid": 730,
                    "market_hash_name": "AWP | Asiimov (Field-Tested)",
                    "currency": 3,
                },
                "at": "2026-12-03T06:00:00Z",
                "data": {
                    "lowest_sell": 4321,
                    "highest_buy": 1234,
                    "max_lowest_sell": 4000,
                    "min_highest_buy": 1200,
                    "lowest_sell_text": "43,21€",
                    "highest_buy_text": "12,34€",
                    "max_lowest_sell_text": "40,00€",
                    "min_highest_buy_text": "12,00€",
                    "reasons": ["highest_buy"],
                    "match": "any",
                },
            }
        )
    )
    assert describe(event).endswith("AWP | Asiimov (Field-Tested): buy 12,34€ >= 12,00€")
