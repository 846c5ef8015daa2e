"""Each token's limits on the real API: requests a second (429 with Retry-After), the body
size (413 before the body is read whole), the page size (422 naming ``limit``)."""

from __future__ import annotations

import asyncio
import time

from shared.db import Database
from tests.services.api.conftest import Api, make_token, rows
from tests.steamwatch.test_tasks_cli import EXISTING, seed

API_ENV = {
    "STEAMWATCH_API_RATE": "5",
    "STEAMWATCH_API_MAX_BODY": "4096",
    "STEAMWATCH_API_PAGE_MAX": "50",
}


async def test_past_its_rate_a_token_gets_429_with_retry_after_and_others_do_not(
    api: Api, db: Database
) -> None:
    await seed(db, *EXISTING)
    alice, bob = await make_token(db, "alice"), await make_token(db, "bob")
    started = time.monotonic()
    codes = [api.call("GET", "/v1/watches", alice).status_code for _ in range(12)]
    elapsed = time.monotonic() - started
    refused = codes.count(429)
    # Five in any second: twelve sent within a second or two leave at least five refused.
    assert refused >= 12 - 5 * (int(elapsed) + 2), (codes, elapsed)
    assert refused > 0
    answer = api.call("GET", "/v1/watches", alice)
    if answer.status_code != 429:  # the window moved on meanwhile: fill it again
        for _ in range(6):
            answer = api.call("GET", "/v1/watches", alice)
    assert answer.status_code == 429
    assert answer.headers["content-type"] == "application/problem+json"
    wait = int(answer.headers["retry-after"])
    assert 1 <= wait <= 2
    assert "more than 5 requests a second" in answer.json()["detail"]
    assert api.call("GET", "/v1/watches", bob).status_code == 200  # per token, not global
    await asyncio.sleep(wait + 1)  # what Retry-After tells a client to do, and a margin
    assert api.call("GET", "/v1/watches", alice).status_code == 200


async def test_a_body_over_the_limit_is_refused_with_413_and_nothing_written(
    api: Api, db: Database
) -> None:
    alice = await make_token(db, "alice")
    big = {"appid": 730, "item": "x" * 5000, "kind": "lowest_price", "interval": 300}
    answer = api.call("POST", "/v1/watches", alice, json=big)
    assert answer.status_code == 413
    assert answer.json()["errors"] == [{"field": "body", "reason": "at most 4096 bytes"}]
    # Sent in chunks without a length, it is cut off at the limit all the same.
    chunks = (b'{"appid": 730, "item": "' + b"y" * 1000 for _ in range(6))
    streamed = api.call(
        "POST", "/v1/watches", alice, data=chunks, headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert await rows(db, "tasks") == []


async def test_a_page_larger_than_configured_is_refused_naming_limit(
    api: Api, db: Database
) -> None:
    alice = await make_token(db, "alice")
    answer = api.call("GET", "/v1/watches", alice, params={"limit": 51})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "limit", "reason": "must be at most 50, got 51"}]
    assert api.call("GET", "/v1/watches", alice, params={"limit": 50}).status_code == 200
    document = api.call("GET", "/openapi.json").json()
    [limit] = [
        p for p in document["paths"]["/v1/watches"]["get"]["parameters"] if p["name"] == "limit"
    ]
    assert limit["schema"]["maximum"] == 50
