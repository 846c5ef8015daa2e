"""The 2026 new market endpoints and the legacy switch that turns the old ones off."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from simulator import LimitsConfig, ManualClock, SimulatorConfig, run_simulator
from tests.fixtures.simulator import KEY, OPT_OUT, QUERY_ACTION, REDLINE, item_path


def _actions(sim: str, params: list[Any]) -> str:
    return f"{sim}/market/actions?q=QueryListingsForItem&qp={json.dumps(params)}"


def _orderbook(sim: str, params: list[Any]) -> str:
    return f"{sim}/market/orderbook?q=Load&qp={json.dumps(params)}"


@pytest.mark.parametrize("currency", [1, 3, 5], ids=["usd", "eur", "rub"])
async def test_query_listings_has_the_agreed_shape(
    sim: str, session: aiohttp.ClientSession, currency: int
) -> None:
    async with session.get(
        _actions(sim, [730, REDLINE, 0, 5, currency]), headers=QUERY_ACTION
    ) as r:
        assert r.status == 200 and r.headers["ETag"]
        body = await r.json()
    assert body["success"] == 1 and body["total_count"] >= 5 and len(body["listings"]) == 5
    for listing in body["listings"]:
        assert isinstance(listing["listingid"], str) and len(listing["listingid"]) == 18
        assert type(listing["unPrice"]) is int and type(listing["unFee"]) is int
        assert listing["eCurrency"] == currency
        asset = listing["asset"]
        assert (asset["appid"], asset["contextid"]) == (730, "2") and asset["assetid"].isdigit()
        assert [p["propertyid"] for p in asset["asset_properties"]] == [1, 2]
    totals = [item["unPrice"] + item["unFee"] for item in body["listings"]]
    assert totals == sorted(totals)


async def test_query_listings_of_a_tf2_key_has_no_asset_properties(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_actions(sim, [440, KEY, 0, 3, 1]), headers=QUERY_ACTION) as r:
        body = await r.json()
    assert all("asset_properties" not in item["asset"] for item in body["listings"])


async def test_orderbook_has_the_agreed_shape(sim: str, session: aiohttp.ClientSession) -> None:
    async with session.get(_orderbook(sim, [440, KEY, 3]), headers=QUERY_ACTION) as r:
        body = await r.json()
    assert list(body) == [
        "success",
        "eCurrency",
        "amtMaxBuyOrder",
        "amtMinSellOrder",
        "cBuyOrders",
        "cSellOrders",
    ]
    assert body["success"] == 1 and body["eCurrency"] == 3
    assert int(body["amtMaxBuyOrder"]) < int(body["amtMinSellOrder"])
    assert body["cBuyOrders"].isdigit() and body["cSellOrders"].isdigit()


@pytest.mark.parametrize(
    "path",
    [
        "/market/actions?q=QueryListingsForItem&qp=" + json.dumps([730, "No Such Item", 0, 10, 1]),
        "/market/orderbook?q=Load&qp=" + json.dumps([730, "No Such Item", 1]),
        "/market/orderbook?q=Load&qp=not-json",
        "/market/actions?q=SomethingElse&qp=" + json.dumps([730, REDLINE, 0, 10, 1]),
    ],
    ids=["listings-unknown-item", "orderbook-unknown-item", "bad-qp", "unknown-query"],
)
async def test_new_market_says_8_for_what_it_cannot_find(
    sim: str, session: aiohttp.ClientSession, path: str
) -> None:
    async with session.get(sim + path, headers=QUERY_ACTION) as r:
        assert (r.status, await r.json()) == (200, {"success": 8})


@pytest.mark.parametrize("endpoint", ["actions", "orderbook"])
async def test_new_market_without_the_query_action_header_is_a_400_page(
    sim: str, session: aiohttp.ClientSession, endpoint: str
) -> None:
    url = (
        _actions(sim, [730, REDLINE, 0, 5, 1])
        if endpoint == "actions"
        else _orderbook(sim, [730, REDLINE, 1])
    )
    async with session.get(url) as r:
        assert r.status == 400 and r.content_type == "text/html"
        assert "<html" in await r.text()


async def test_a_matching_etag_gets_an_empty_304_until_the_book_changes(
    sim: str, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    url = _orderbook(sim, [730, REDLINE, 1])
    async with session.get(url, headers=QUERY_ACTION) as r:
        etag = r.headers["ETag"]
    conditional = {**QUERY_ACTION, "If-None-Match": etag}
    async with session.get(url, headers=conditional) as r:
        assert (r.status, await r.read(), r.headers["ETag"]) == (304, b"", etag)
    clock.advance(3 * 3600)
    async with session.get(url, headers=conditional) as r:
        assert r.status == 200 and r.headers["ETag"] != etag


async def _all_listing_ids(sim: str, session: aiohttp.ClientSession) -> set[int]:
    ids: set[int] = set()
    for start in range(0, 1000, 100):
        async with session.get(
            _actions(sim, [730, REDLINE, start, 100, 1]), headers=QUERY_ACTION
        ) as r:
            page = (await r.json())["listings"]
        ids.update(int(item["listingid"]) for item in page)
        if len(page) < 100:
            return ids
    return ids


async def test_listings_appear_and_sell_over_time(
    sim: str, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    before = await _all_listing_ids(sim, session)
    clock.advance(2 * 3600)
    after = await _all_listing_ids(sim, session)
    assert before - after, "some listings sold"
    assert after - before, "new listings appeared"
    assert min(after - before) > max(before)


async def test_new_and_legacy_endpoints_agree_on_the_lowest_price(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_orderbook(sim, [730, REDLINE, 3]), headers=QUERY_ACTION) as r:
        lowest = int((await r.json())["amtMinSellOrder"])
    render = f"{sim}{item_path(730, REDLINE)}/render/?start=0&count=1&currency=3&format=json"
    async with session.get(render, cookies=OPT_OUT) as r:
        (info,) = (await r.json())["listinginfo"].values()
    assert info["converted_price"] + info["converted_fee"] == lowest


@pytest.mark.parametrize("mode", ["html", "redirect"])
async def test_legacy_switch_turns_every_old_endpoint_off(
    session: aiohttp.ClientSession, clock: ManualClock, mode: str
) -> None:
    config = SimulatorConfig(legacy=mode, limits=LimitsConfig(enabled=False))  # type: ignore[arg-type]
    async with run_simulator(config=config, clock=clock) as sim:
        legacy = [
            f"/market/priceoverview/?appid=440&currency=1&market_hash_name={KEY}",
            f"{item_path(440, KEY)}/render/?start=0&count=10&currency=1&format=json",
            "/market/itemordershistogram?item_nameid=1&currency=1&norender=1",
            "/market/search/render/?query=key&norender=1",
        ]
        for path in legacy:
            async with session.get(sim + path, cookies=OPT_OUT, allow_redirects=False) as r:
                if mode == "html":
                    assert (r.status, r.content_type) == (200, "text/html"), path
                else:
                    assert r.status == 302 and r.headers["Location"].startswith("/market/"), path
        async with session.get(sim + item_path(440, KEY)) as r:
            assert "Market_LoadOrderSpread" not in await r.text()
        async with session.get(_orderbook(sim, [440, KEY, 1]), headers=QUERY_ACTION) as r:
            assert (await r.json())["success"] == 1


async def test_legacy_switch_changes_at_run_time(sim: str, session: aiohttp.ClientSession) -> None:
    url = f"{sim}/market/priceoverview/?appid=440&currency=1&market_hash_name={KEY}"
    async with session.post(f"{sim}/__sim/legacy", json={"mode": "html"}) as r:
        assert await r.json() == {"legacy": "html"}
    async with session.get(url) as r:
        assert r.content_type == "text/html"
    async with session.post(f"{sim}/__sim/legacy", json={"mode": "on"}):
        pass
    async with session.get(url) as r:
        assert (await r.json())["success"] is True
