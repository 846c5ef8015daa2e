"""The 2026 new market endpoints in Steam's real shapes, and the switches that move them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from simulator import LimitsConfig, ManualClock, SimulatorConfig, run_simulator
from simulator.catalogue import load_catalogue
from tests.fixtures.simulator import KEY, OPT_OUT, QUERY_ACTION, REDLINE, item_path

REDLINE_GROUP = load_catalogue().find(730, REDLINE).group_id  # type: ignore[union-attr]


def _query(appid: int, name: str, **extra: Any) -> dict[str, Any]:
    """The object the new market's item page sends as `qp=[{…}]`."""
    return {
        "appid": appid,
        "strItemName": name,
        "filters": {},
        "accessoryFilters": {},
        "propertyFilters": {},
        "start": 0,
        **extra,
    }


def _actions(sim: str, query: dict[str, Any]) -> str:
    return f"{sim}/market/actions?q=QueryListingsForItem&qp={json.dumps([query])}"


def _orderbook(sim: str, params: list[Any]) -> str:
    return f"{sim}/market/orderbook?q=Load&qp={json.dumps(params)}"


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers=QUERY_ACTION) as r:
        assert r.status == 200 and r.headers["ETag"], url
        return await r.json()


@pytest.mark.parametrize("currency", [1, 3, 5], ids=["usd", "eur", "rub"])
async def test_query_listings_by_group_has_the_real_shape(
    sim: str, session: aiohttp.ClientSession, currency: int
) -> None:
    query = _query(730, REDLINE_GROUP, price={"eCurrency": currency})
    body = await _get(session, _actions(sim, query))
    data = body["data"]
    assert set(data) == {"more", "start", "total_count", "listings", "facets"}
    assert data["more"] is True and data["total_count"] > 20 and len(data["listings"]) == 20
    names = set()
    for listing in data["listings"]:
        assert isinstance(listing["listingid"], str) and len(listing["listingid"]) == 18
        assert type(listing["unPrice"]) is int and type(listing["unFee"]) is int
        assert listing["unFee"] == listing["unSteamFee"] + listing["unPublisherFee"]
        assert listing["eCurrency"] == currency and listing["bMine"] is False
        assert listing["description"]["market_bucket_group_id"] == REDLINE_GROUP
        names.add(listing["description"]["market_hash_name"])
        asset = listing["asset"]
        assert (asset["appid"], asset["contextid"]) == (730, "2") and asset["assetid"].isdigit()
        assert [p["propertyid"] for p in asset["asset_properties"]] == [1, 2]
    assert names <= {
        f"AK-47 | Redline ({wear})"
        for wear in ("Minimal Wear", "Field-Tested", "Well-Worn", "Battle-Scarred")
    }
    totals = [item["unPrice"] + item["unFee"] for item in data["listings"]]
    assert totals == sorted(totals)


async def test_a_grouped_skin_asked_by_its_own_name_answers_nothing(
    sim: str, session: aiohttp.ClientSession
) -> None:
    # As on Steam: name-keyed queries for grouped CS2 items find 0 listings.
    data = (await _get(session, _actions(sim, _query(730, REDLINE))))["data"]
    assert (data["total_count"], data["listings"], data["more"]) == (0, [], False)


async def test_an_ungrouped_item_answers_by_name_without_properties(
    sim: str, session: aiohttp.ClientSession
) -> None:
    data = (await _get(session, _actions(sim, _query(440, KEY))))["data"]
    assert data["total_count"] > 0 and data["listings"]
    assert all(item["asset"]["asset_properties"] == [] for item in data["listings"])
    assert all("market_bucket_group_id" not in item["description"] for item in data["listings"])


async def test_server_side_filters_price_and_wear(sim: str, session: aiohttp.ClientSession) -> None:
    everything = (await _get(session, _actions(sim, _query(730, REDLINE_GROUP))))["data"]
    ceiling = sorted(i["unPrice"] + i["unFee"] for i in everything["listings"])[5]
    wear = {"2": {"property_id": 2, "float_min": 0.2, "float_max": 0.3}}
    query = _query(
        730,
        REDLINE_GROUP,
        price={"eCurrency": 1, "unMax": ceiling},
        propertyFilters=wear,
        sort={"field": 0, "direction": 0},
    )
    data = (await _get(session, _actions(sim, query)))["data"]
    assert data["total_count"] == len(data["listings"]) or data["more"]
    assert data["total_count"] < everything["total_count"]
    for item in data["listings"]:
        assert item["unPrice"] + item["unFee"] <= ceiling
        (wear_value,) = [
            p["float_value"] for p in item["asset"]["asset_properties"] if p["propertyid"] == 2
        ]
        assert Decimal("0.2") <= Decimal(wear_value) <= Decimal("0.3")


async def test_orderbook_has_the_real_wrapped_shape(
    sim: str, session: aiohttp.ClientSession
) -> None:
    body = await _get(session, _orderbook(sim, [440, KEY]))
    assert list(body) == ["data"] and body["data"]["success"] is True
    book = body["data"]["data"]
    assert set(book) == {
        "amtMaxBuyOrder",
        "amtMinSellOrder",
        "eCurrency",
        "cBuyOrders",
        "cSellOrders",
        "rgCompactBuyOrders",
        "rgCompactSellOrders",
    }
    assert book["eCurrency"] == 1  # the caller's region, not anything it asked
    assert type(book["amtMaxBuyOrder"]) is int and book["amtMaxBuyOrder"] < book["amtMinSellOrder"]
    sells, buys = book["rgCompactSellOrders"], book["rgCompactBuyOrders"]
    assert len(sells) % 2 == 0 and len(buys) % 2 == 0
    assert sells[0] == book["amtMinSellOrder"] and buys[0] == book["amtMaxBuyOrder"]
    assert sells[0::2] == sorted(sells[0::2]) and buys[0::2] == sorted(buys[0::2], reverse=True)
    # Per-level quantities: together at most the counts (a long book is cut).
    assert 0 < sum(sells[1::2]) <= book["cSellOrders"]
    assert 0 < sum(buys[1::2]) <= book["cBuyOrders"]


async def test_unknown_items(sim: str, session: aiohttp.ClientSession) -> None:
    data = (await _get(session, _actions(sim, _query(730, "No Such Item"))))["data"]
    assert (data["total_count"], data["listings"]) == (0, [])
    assert await _get(session, _orderbook(sim, [730, "No Such Item"])) == {
        "data": {"success": False}
    }


@pytest.mark.parametrize(
    "path",
    [
        "/market/actions?q=QueryListingsForItem&qp=not-json",
        "/market/actions?q=QueryListingsForItem&qp=" + json.dumps([730, REDLINE, 0, 10, 1]),
        "/market/actions?q=SomethingElse&qp=" + json.dumps([_query(730, KEY)]),
    ],
    ids=["bad-qp", "qp-not-an-object", "unknown-query"],
)
async def test_unreadable_queries_get_a_400_page(
    sim: str, session: aiohttp.ClientSession, path: str
) -> None:
    async with session.get(sim + path, headers=QUERY_ACTION) as r:
        assert (r.status, r.content_type) == (400, "text/html")


@pytest.mark.parametrize("endpoint", ["actions", "orderbook"])
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"x-valve-request-type": "queryAction"}, 403, id="no-language-waf-403"),
        pytest.param({"Accept-Language": "en-US"}, 400, id="no-query-action-400"),
    ],
)
async def test_new_market_refuses_calls_its_page_would_not_make(
    sim: str, session: aiohttp.ClientSession, endpoint: str, headers: dict[str, str], status: int
) -> None:
    url = _actions(sim, _query(440, KEY)) if endpoint == "actions" else _orderbook(sim, [440, KEY])
    async with session.get(url, headers=headers) as r:
        assert (r.status, r.content_type) == (status, "text/html")
        assert "<html" in await r.text()


async def test_route_changed_answers_the_market_page_and_region_currency(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{sim}/__sim/new-market", json={"mode": "route_changed"}) as r:
        assert await r.json() == {"mode": "route_changed", "region_currency": 1}
    for url in (_actions(sim, _query(440, KEY)), _orderbook(sim, [440, KEY])):
        async with session.get(url, headers=QUERY_ACTION) as r:
            assert (r.status, r.content_type) == (200, "text/html")
    async with session.post(
        f"{sim}/__sim/new-market", json={"mode": "on", "region_currency": 3}
    ) as r:
        assert await r.json() == {"mode": "on", "region_currency": 3}
    assert (await _get(session, _orderbook(sim, [440, KEY])))["data"]["data"]["eCurrency"] == 3
    async with session.post(f"{sim}/__sim/new-market", json={"region_currency": 99}) as r:
        assert r.status == 400 and "99" in await r.text()


async def test_rename_field_fault_drifts_the_format(
    sim: str, session: aiohttp.ClientSession
) -> None:
    fault = {"mode": "rename_field", "field": "amtMinSellOrder", "endpoints": ["orderbook"]}
    async with session.post(f"{sim}/__sim/faults", json=fault) as r:
        assert r.status == 200
    book = (await _get(session, _orderbook(sim, [440, KEY])))["data"]["data"]
    assert "amtMinSellOrder" not in book and type(book["amtMinSellOrder_v2"]) is int


async def test_a_matching_etag_gets_an_empty_304_until_the_book_changes(
    sim: str, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    url = _orderbook(sim, [730, REDLINE])
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
    for start in range(0, 2000, 20):
        data = (await _get(session, _actions(sim, _query(730, REDLINE_GROUP, start=start))))["data"]
        ids.update(int(item["listingid"]) for item in data["listings"])
        if not data["more"]:
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
    async with session.post(f"{sim}/__sim/new-market", json={"region_currency": 3}):
        pass
    book = (await _get(session, _orderbook(sim, [730, REDLINE])))["data"]["data"]
    render = f"{sim}{item_path(730, REDLINE)}/render/?start=0&count=1&currency=3&format=json"
    async with session.get(render, cookies=OPT_OUT) as r:
        (info,) = (await r.json())["listinginfo"].values()
    assert info["converted_price"] + info["converted_fee"] == book["amtMinSellOrder"]


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
        async with session.get(_orderbook(sim, [440, KEY]), headers=QUERY_ACTION) as r:
            assert (await r.json())["data"]["success"] is True


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
