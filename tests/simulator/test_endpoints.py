"""The legacy endpoints over real HTTP, in Steam's formats for several currencies."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import aiohttp
import pytest

from shared.steam import parse_price
from simulator.clock import ManualClock
from tests.fixtures.simulator import KEY, NO_SALES, OPT_OUT, REDLINE, item_path

CURRENCIES = [1, 2, 3, 5, 8, 23]
CURRENCY_IDS = ["usd", "gbp", "eur", "rub", "jpy", "cny"]


def _overview_url(sim: str, appid: int, name: str, currency: int) -> str:
    return (
        f"{sim}/market/priceoverview/?appid={appid}&currency={currency}"
        f"&market_hash_name={quote(name)}"
    )


@pytest.mark.parametrize("currency", CURRENCIES, ids=CURRENCY_IDS)
async def test_priceoverview_sends_localized_strings_that_parse_back(
    sim: str, session: aiohttp.ClientSession, currency: int
) -> None:
    async with session.get(_overview_url(sim, 730, REDLINE, currency)) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert list(body) == ["success", "lowest_price", "volume", "median_price"]
    assert body["success"] is True
    assert parse_price(body["lowest_price"], currency) > 0
    assert parse_price(body["median_price"], currency) > 0
    assert re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})*", body["volume"])


async def test_priceoverview_eur_and_rub_use_steams_marks(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_overview_url(sim, 440, KEY, 3)) as response:
        eur = await response.json()
    async with session.get(_overview_url(sim, 440, KEY, 5)) as response:
        rub = await response.json()
    assert re.fullmatch(r"[0-9]+,([0-9]{2}|--)€", eur["lowest_price"])
    assert rub["lowest_price"].endswith(" pуб.")  # a Latin "p", as Steam writes it
    assert re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})+", eur["volume"])  # a key sells thousands a day


async def test_priceoverview_is_php_encoded(sim: str, session: aiohttp.ClientSession) -> None:
    async with session.get(_overview_url(sim, 730, REDLINE, 3)) as response:
        raw = await response.text()
    assert "\\u20ac" in raw and "€" not in raw


async def test_item_without_recent_sales_is_a_bare_success(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_overview_url(sim, 730, NO_SALES, 1)) as response:
        assert (response.status, await response.json()) == (200, {"success": True})


@pytest.mark.parametrize(
    ("appid", "name"),
    [(730, "AK-47 | Redline (Factory New)"), (570, REDLINE), (730, "")],
    ids=["no-such-wear", "wrong-game", "empty-name"],
)
async def test_unknown_item_is_http_500_success_false(
    sim: str, session: aiohttp.ClientSession, appid: int, name: str
) -> None:
    async with session.get(_overview_url(sim, appid, name, 1)) as response:
        assert (response.status, await response.json()) == (500, {"success": False})


async def test_prices_move_when_the_injected_clock_advances(
    sim: str, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    async with session.get(_overview_url(sim, 730, REDLINE, 1)) as response:
        before = await response.json()
    clock.advance(8 * 3600)
    async with session.get(_overview_url(sim, 730, REDLINE, 1)) as response:
        after = await response.json()
    assert before["median_price"] != after["median_price"]


def _render_url(sim: str, appid: int, name: str, currency: int, start: int = 0) -> str:
    path = item_path(appid, name)
    return f"{sim}{path}/render/?start={start}&count=10&currency={currency}&format=json"


@pytest.mark.parametrize("currency", [1, 3, 23], ids=["usd", "eur", "cny"])
async def test_listings_render_matches_the_captured_shape(
    sim: str, session: aiohttp.ClientSession, currency: int
) -> None:
    url = _render_url(sim, 730, REDLINE, currency)
    async with session.get(url, cookies=OPT_OUT) as response:
        assert response.status == 200
        body = json.loads(await response.text())
    assert body["success"] is True and body["start"] == 0 and body["pagesize"] == 10
    assert body["total_count"] >= len(body["listinginfo"]) == 10
    for key, info in body["listinginfo"].items():
        assert info["listingid"] == key and len(key) == 18
        assert info["currencyid"] == str(2000 + int(info["currencyid"]) % 1000)
        assert info["converted_currencyid"] == str(2000 + currency)
        assert info["fee"] == info["steam_fee"] + info["publisher_fee"]
        assert (
            info["converted_fee"] == info["converted_steam_fee"] + info["converted_publisher_fee"]
        )
        assert info["publisher_fee_percent"] == "0.100000001490116119"
        asset = info["asset"]
        assert (asset["appid"], asset["contextid"], asset["amount"]) == (730, "2", "1")
        props = {p["propertyid"]: p for p in asset["asset_properties"]}
        assert props[1]["int_value"].isdigit() and 0 <= float(props[2]["float_value"]) <= 1
        description = body["assets"]["730"]["2"][asset["id"]]
        assert description["market_hash_name"] == REDLINE
    assert "market_listing_row" in body["results_html"]


async def test_listings_render_pages_through_the_book(
    sim: str, session: aiohttp.ClientSession
) -> None:
    pages = []
    for start in (0, 10):
        async with session.get(_render_url(sim, 730, REDLINE, 1, start), cookies=OPT_OUT) as r:
            pages.append(set((await r.json())["listinginfo"]))
    assert len(pages[0]) == len(pages[1]) == 10 and not pages[0] & pages[1]


async def test_listings_render_without_the_opt_out_cookie_redirects_to_the_new_market(
    sim: str, session: aiohttp.ClientSession
) -> None:
    url = _render_url(sim, 730, REDLINE, 1)
    async with session.get(url, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == item_path(730, REDLINE)


async def test_listings_render_of_an_unknown_item_is_success_false(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_render_url(sim, 730, "No Such Thing", 1), cookies=OPT_OUT) as r:
        assert await r.json() == {"success": False}


async def test_item_page_carries_the_item_nameid_the_histogram_accepts(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(sim + item_path(730, REDLINE)) as response:
        page = await response.text()
    match = re.search(r"Market_LoadOrderSpread\( (\d+) \);", page)
    assert match is not None
    url = f"{sim}/market/itemordershistogram?country=DE&language=english&currency=3"
    url += f"&item_nameid={match.group(1)}&two_factor=0&norender=1"
    async with session.get(url) as response:
        assert (await response.json())["success"] == 1


def _histogram_url(sim: str, nameid: int, currency: int, norender: bool = True) -> str:
    url = f"{sim}/market/itemordershistogram?country=US&language=english&currency={currency}"
    return url + f"&item_nameid={nameid}&two_factor=0" + ("&norender=1" if norender else "")


async def _nameid(sim: str, session: aiohttp.ClientSession, appid: int, name: str) -> int:
    async with session.get(sim + item_path(appid, name)) as response:
        match = re.search(r"Market_LoadOrderSpread\( (\d+) \);", await response.text())
    assert match is not None
    return int(match.group(1))


@pytest.mark.parametrize("currency", [1, 3, 5], ids=["usd", "eur", "rub"])
async def test_histogram_norender_has_the_sample_types(
    sim: str, session: aiohttp.ClientSession, currency: int
) -> None:
    nameid = await _nameid(sim, session, 440, KEY)
    async with session.get(_histogram_url(sim, nameid, currency)) as response:
        body = await response.json()
    assert body["success"] == 1 and body["success"] is not True
    highest, lowest = int(body["highest_buy_order"]), int(body["lowest_sell_order"])
    assert isinstance(body["highest_buy_order"], str) and highest < lowest
    assert body["buy_order_count"].isdigit() and body["sell_order_count"].isdigit()
    assert parse_price(body["sell_order_price"], currency) == lowest
    assert parse_price(body["buy_order_table"][0]["price"], currency) == highest
    assert body["buy_order_graph"][0][1] == int(body["buy_order_table"][0]["quantity"])
    assert body["price_prefix"] + body["price_suffix"] != ""


async def test_histogram_of_an_item_without_sellers_has_null_and_zero(
    sim: str, session: aiohttp.ClientSession
) -> None:
    nameid = await _nameid(sim, session, 730, NO_SALES)
    async with session.get(_histogram_url(sim, nameid, 3)) as response:
        body = await response.json()
    assert body["lowest_sell_order"] is None and body["sell_order_price"] is None
    assert body["sell_order_count"] == 0 and body["sell_order_table"] is None
    assert body["sell_order_graph"] == [] and body["graph_max_x"] == 0
    assert (body["price_prefix"], body["price_suffix"]) == ("", "€")


async def test_histogram_without_norender_sends_html_tables(
    sim: str, session: aiohttp.ClientSession
) -> None:
    nameid = await _nameid(sim, session, 730, "Chroma Case")
    async with session.get(_histogram_url(sim, nameid, 23, norender=False)) as response:
        raw = await response.text()
    body = json.loads(raw)
    assert '<table class=\\"market_commodity_orders_table\\">' in raw  # PHP escapes "/" too
    assert "market_commodity_orders_header_promote" in body["sell_order_summary"]
    assert body["buy_order_table"].startswith("<table")
    assert body["price_prefix"] == "¥"


async def test_histogram_of_an_unknown_nameid_is_not_success_1(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_histogram_url(sim, 1, 1)) as response:
        assert (await response.json())["success"] not in (1, True)


async def test_search_pages_past_the_end_say_no_items_with_success_true(
    sim: str, session: aiohttp.ClientSession
) -> None:
    url = f"{sim}/market/search/render/?query=redline&start=100000&count=10"
    async with session.get(url) as response:
        body = await response.json()
    assert body["success"] is True and body["total_count"] > 0
    assert "There were no items matching your search" in body["results_html"]


async def test_search_norender_lists_matching_items(
    sim: str, session: aiohttp.ClientSession
) -> None:
    url = f"{sim}/market/search/render/?query=key%20crate&appid=440&norender=1"
    async with session.get(url) as response:
        body = await response.json()
    assert [r["hash_name"] for r in body["results"]] == [KEY]
    assert parse_price(body["results"][0]["sell_price_text"], 1) == body["results"][0]["sell_price"]
