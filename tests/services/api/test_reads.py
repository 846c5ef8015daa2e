"""Events, price history, status and subscriptions through the real API: an owner's own only,
in pages that follow their cursors; history in raw checks or buckets; URLs masked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from shared.alerts import Event, publish
from shared.db import Database, PriceSnapshot
from shared.runtime import HEARTBEAT_INTERVAL, async_client
from shared.steam import Item
from tests.fixtures.waiting import until
from tests.services.api.conftest import Api, make_token, rows
from tests.steamwatch.test_tasks_cli import EXISTING, seed

ITEM = Item(appid=730, market_hash_name="AK-47 | Redline (Field-Tested)", currency=3)


async def _events(redis_url: str, owner: str, task_id: int, count: int) -> list[str]:
    client = async_client(redis_url)
    events = [
        Event.about_task(
            "stalled",
            task_id=task_id,
            owner=owner,
            item=ITEM,
            occasion=uuid.uuid4(),
            at=datetime.now(UTC),
        )
        for i in range(count)
    ]
    await publish(client, events)
    await client.aclose()
    return [e.id for e in events]


async def test_events_are_the_owners_own_newest_first_page_by_page(
    api: Api, db: Database, redis_url: str
) -> None:
    alice_task, bob_task = await seed(db, *EXISTING)
    alice_ids = []
    for _ in range(3):  # interleaved with bob's, so a page must skip his
        alice_ids += await _events(redis_url, "alice", alice_task, 50)
        await _events(redis_url, "bob", bob_task, 400)
    alice = await make_token(db, "alice")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/v1/events", alice, params=params).json()
        assert {item["event"]["owner"] for item in page["items"]} <= {"alice"}
        seen += [item["event"]["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(alice_ids))
    one_kind = api.call("GET", "/v1/events", alice, params={"kind": "failed"}).json()
    assert one_kind == {"items": [], "next_cursor": None}


async def test_history_raw_and_in_buckets(api: Api, db: Database) -> None:
    [task_id] = await seed(db, EXISTING[0])
    # Within the raw checks' retention (14 days): a range of raw points can be answered.
    start = (datetime.now(UTC) - timedelta(days=3)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    day = timedelta(days=1)
    prices = [1000 + (i % 7) * 10 for i in range(48 * 12)]  # every 5 minutes for two days
    snapshots = [
        {
            "task_id": task_id,
            "lease_token": uuid.uuid4(),
            "checked_at": start + timedelta(minutes=5 * i),
            "currency": 3,
            "lowest_price": price,
            "volume": i,
        }
        for i, price in enumerate(prices)
    ]
    async with db.session_scope() as session:
        await session.execute(insert(PriceSnapshot), snapshots)
    alice = await make_token(db, "alice")
    path = f"/v1/watches/{task_id}/history"
    raw = api.call(
        "GET",
        path,
        alice,
        params={"since": start.isoformat(), "until": (start + timedelta(hours=1)).isoformat()},
    ).json()
    assert raw["resolution"] == "raw" and raw["currency_code"] == "EUR"
    assert [p["last"] for p in raw["points"]] == prices[:12]
    hourly = api.call(
        "GET",
        path,
        alice,
        params={
            "since": start.isoformat(),
            "until": (start + 2 * day).isoformat(),
            "resolution": "1h",
        },
    ).json()
    assert len(hourly["points"]) == 48
    first = hourly["points"][0]
    assert (first["checks"], first["first"], first["min"], first["max"], first["last"]) == (
        12,
        prices[0],
        min(prices[:12]),
        max(prices[:12]),
        prices[11],
    )
    assert first["volume"] == 11
    wrong = api.call(
        "GET",
        path,
        alice,
        params={"since": (start + day).isoformat(), "until": start.isoformat()},
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "since"
    # A year back reaches before the raw checks kept: answered in hours or more (roll-ups).
    year = api.call("GET", path, alice, params={"since": (start - 360 * day).isoformat()}).json()
    assert year["resolution"] == "6h" and sum(p["checks"] for p in year["points"]) == len(prices)


async def test_status_counts_an_owners_own_watches_and_an_admins_all(
    api: Api, db: Database
) -> None:
    await seed(db, *EXISTING)
    alice = await make_token(db, "alice")
    admin = await make_token(db, "ops", admin=True)
    # The test's flushed Redis took the API's heartbeat with it: it is back within a beat.
    assert await until(lambda: _up(api, alice), within=HEARTBEAT_INTERVAL + 5), (
        "the API's heartbeat did not come back"
    )
    mine = api.call("GET", "/v1/status", alice).json()
    everyone = api.call("GET", "/v1/status", admin).json()
    assert mine["tasks"]["active"] == 1 and everyone["tasks"]["active"] == 2
    assert mine["services"]["api"]["up"] is True  # the API's own heartbeat
    assert "scheduler" in mine["down"]  # nothing else runs in this test, and it says so
    # The proxies' budgets are the operators': an admin sees them, an owner does not.
    assert "budget" not in mine
    [direct] = everyone["budget"]["priceoverview"]
    assert (direct["proxy"], direct["used"], direct["limit"]) == ("direct", 0, 20)


async def _up(api: Api, token: str) -> bool:
    return bool(api.call("GET", "/v1/status", token).json()["services"]["api"]["up"])


async def test_a_subscription_is_made_masked_and_refused_inside_the_network(
    api: Api, db: Database
) -> None:
    [task_id] = await seed(db, EXISTING[0])
    alice = await make_token(db, "alice")
    secret = "123456789:AAHsecretbottokenvalue_abcdefghijkl"
    made = api.call(
        "POST",
        "/v1/subscriptions",
        alice,
        json={"url": f"tgram://{secret}/-100123", "kinds": ["failed"], "watch_id": task_id},
    )
    assert made.status_code == 201, made.text
    assert secret not in made.text and "AAH" not in made.text
    assert made.json()["kinds"] == ["failed"] and made.json()["watch_id"] == task_id
    listed = api.call("GET", "/v1/subscriptions", alice)
    assert secret not in listed.text and len(listed.json()["items"]) == 1
    again = api.call(
        "POST",
        "/v1/subscriptions",
        alice,
        json={"url": f"tgram://{secret}/-100123", "watch_id": task_id},
    )
    assert again.status_code == 409 and secret not in again.text
    before = await rows(db, "subscriptions")
    for url, why in [
        ("json://127.0.0.1:6379/x", "127.0.0.1"),
        ("json://169.254.169.254/latest", "169.254.169.254"),
        ("file:///etc/passwd", "file"),
        ("nonsense://x", "nonsense"),
    ]:
        refused = api.call("POST", "/v1/subscriptions", alice, json={"url": url})
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["errors"][0]["field"] == "url"
        assert why in refused.json()["detail"], refused.text
    empty = api.call(
        "POST", "/v1/subscriptions", alice, json={"url": "json://hooks.example.com/x", "kinds": []}
    )
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "kinds"
    assert await rows(db, "subscriptions") == before
