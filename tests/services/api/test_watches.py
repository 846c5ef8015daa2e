"""``/v1/watches`` on the real API process: given rows in PostgreSQL and a token, a request's
answer and the rows it changed; a refused request answers problem+json naming the field and
leaves the tasks table exactly as it was."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.db import Database
from tests.services.api.conftest import Api, make_token, rows
from tests.steamwatch.test_tasks_cli import BAD_ADDS, EXISTING, REDLINE, seed

PROBLEM = "application/problem+json"


def body_of(args: list[str]) -> dict[str, Any]:
    """The CLI's ``add --owner x --max-price 1 ...`` as the API's JSON body."""
    pairs = args[1:]
    return {
        pairs[i].removeprefix("--").replace("-", "_"): pairs[i + 1] for i in range(0, len(pairs), 2)
    }


def field_of(message: str) -> str:
    return message.split(":")[0].removeprefix("--").replace("-", "_")


@pytest.mark.parametrize(("args", "message"), BAD_ADDS)
async def test_the_cli_bad_input_table_through_the_api_names_the_field_and_writes_nothing(
    api: Api, db: Database, args: list[str], message: str
) -> None:
    await seed(db, *EXISTING)
    admin = await make_token(db, "ops", admin=True)
    before = await rows(db, "tasks")
    answer = api.call("POST", "/v1/watches", admin, json=body_of(args))
    after = await rows(db, "tasks")
    assert after == before
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    if message.startswith("duplicate watch"):
        assert answer.status_code == 409
        assert message in problem["detail"]
        return
    assert answer.status_code == 422, problem
    field = field_of(message)
    assert problem["errors"][0]["field"] == field, problem
    if field != "owner":  # the API says an admin must name an owner, in its own words
        # The same reason, with fields named as the JSON spells them (--float-max: float_max).
        reason = re.sub(r"--([a-z-]+)", lambda m: m[1].replace("-", "_"), message.split(": ", 1)[1])
        assert reason in problem["detail"], problem


async def test_an_owner_token_adds_a_watch_of_its_own_owner_and_reads_it_back(
    api: Api, db: Database
) -> None:
    alice = await make_token(db, "alice")
    body = {
        "appid": 730,
        "item": REDLINE,
        "kind": "lowest_price",
        "interval": "5m",
        "max_price": "12,50€",
        "currency": "EUR",
    }
    made = api.call("POST", "/v1/watches", alice, json=body)
    assert made.status_code == 201, made.text
    watch = made.json()
    assert watch["owner"] == "alice"
    assert watch["conditions"] == {"max_price": 1250}
    assert watch["currency_code"] == "EUR" and watch["interval"] == 300
    [row] = await rows(db, "tasks")
    assert (row["id"], row["owner"], row["market_hash_name"]) == (watch["id"], "alice", REDLINE)
    assert api.call("GET", f"/v1/watches/{watch['id']}", alice).json() == watch


async def test_a_watch_is_changed_paused_resumed_and_deleted(api: Api, db: Database) -> None:
    [task_id] = await seed(db, EXISTING[0])
    alice = await make_token(db, "alice")
    changed = api.call(
        "PATCH", f"/v1/watches/{task_id}", alice, json={"interval": "10m", "max_price": "9,99€"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["interval"], changed.json()["conditions"]) == (600, {"max_price": 999})
    # The interval alone keeps the conditions; conditions alone keep the interval.
    faster = api.call("PATCH", f"/v1/watches/{task_id}", alice, json={"interval": 120})
    assert faster.status_code == 200, faster.text
    assert (faster.json()["interval"], faster.json()["conditions"]) == (120, {"max_price": 999})
    cheaper = api.call("PATCH", f"/v1/watches/{task_id}", alice, json={"max_price": "8,00€"})
    assert (cheaper.json()["interval"], cheaper.json()["conditions"]) == (120, {"max_price": 800})
    slow = api.call("PATCH", f"/v1/watches/{task_id}", alice, json={"interval": "8d"})
    assert slow.status_code == 422 and slow.json()["errors"][0]["field"] == "interval"
    bad = api.call("PATCH", f"/v1/watches/{task_id}", alice, json={"max_price": "abc"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "max_price"
    assert (await rows(db, "tasks"))[0]["conditions"] == {"max_price": 800}
    assert (await rows(db, "tasks"))[0]["check_interval"] == 120
    paused = api.call("POST", f"/v1/watches/{task_id}/pause", alice)
    assert paused.json()["status"] == "paused"
    assert (await rows(db, "tasks"))[0]["status"] == "paused"
    resumed = api.call("POST", f"/v1/watches/{task_id}/resume", alice)
    assert resumed.json()["status"] == "active"
    gone = api.call("DELETE", f"/v1/watches/{task_id}", alice)
    assert gone.status_code == 204
    assert await rows(db, "tasks") == []
    assert api.call("GET", f"/v1/watches/{task_id}", alice).status_code == 404


async def test_pages_follow_the_cursor_through_every_watch_once(api: Api, db: Database) -> None:
    definitions = [dict(EXISTING[0], item=f"Item {i:03}") for i in range(230)]
    ids = await seed(db, *definitions, dict(EXISTING[1]))  # bob's is not alice's to see
    alice = await make_token(db, "alice")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/v1/watches", alice, params=params).json()
        pages += 1
        seen += [w["id"] for w in page["items"]]
        assert {w["owner"] for w in page["items"]} == {"alice"}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ids[:230]


async def test_filters_and_the_page_size_bound(api: Api, db: Database) -> None:
    await seed(db, *EXISTING)
    admin = await make_token(db, "ops", admin=True)
    books = api.call("GET", "/v1/watches", admin, params={"kind": "order_book"}).json()
    assert [w["owner"] for w in books["items"]] == ["bob"]
    too_many = api.call("GET", "/v1/watches", admin, params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "limit"
    unknown = api.call("GET", "/v1/watches", admin, params={"status": "sleeping"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "status"


async def test_import_writes_all_or_nothing_and_names_each_bad_row(api: Api, db: Database) -> None:
    await seed(db, EXISTING[0])
    alice = await make_token(db, "alice")
    good = {
        "appid": 730,
        "item": "Sticker | Crown (Foil)",
        "kind": "lowest_price",
        "interval": 300,
        "max_price": 100,
    }
    watches = [
        good,
        {**good, "item": "AWP | Dragon Lore (Factory New)", "appid": "cs2"},
        {**good, "item": REDLINE, "max_price": "12,50€", "currency": "EUR"},
    ]
    before = await rows(db, "tasks")
    refused = api.call("POST", "/v1/watches/import", alice, json={"watches": watches})
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert [e["field"] for e in errors] == ["watches[1]", "watches[2]"]
    assert errors[0]["reason"].startswith("appid: must be a whole number")
    assert "duplicate watch" in errors[1]["reason"]
    assert await rows(db, "tasks") == before
    skipped = api.call(
        "POST", "/v1/watches/import", alice, json={"watches": watches, "skip_invalid": True}
    )
    assert skipped.status_code == 200, skipped.text
    outcome = skipped.json()
    assert outcome["imported"] == 1 and [s["index"] for s in outcome["skipped"]] == [1, 2]
    assert [r["id"] for r in await rows(db, "tasks")][-1] == outcome["ids"][0]
