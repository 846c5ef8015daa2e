"""The shared parsers read what the simulator serves: one view of every endpoint, two sides.

Given the simulator's answers over HTTP, I expect `shared.steam.parsers` to turn them
into the same numbers the simulator's own endpoints agree on.
"""

from __future__ import annotations

import json
import re
from typing import TypedDict
from urllib.parse import quote

import aiohttp
import pytest

from shared.steam import ItemNotFound
from shared.steam import _parsers as parsers
from simulator.catalogue import load_catalogue
from tests.fixtures.simulator import OPT_OUT, QUERY_ACTION, REDLINE, item_path

REDLINE_GROUP = load_catalogue().find(730, REDLINE).group_id  # type: ignore[union-attr]


class Who(TypedDict):
    currency: int
    appid: int
    market_hash_name: str


@pytest.mark.parametrize("currency", [1, 3, 5, 8, 23], ids=["usd", "eur", "rub", "jpy", "cny"])
async def test_every_endpoint_parses_and_agrees_on_the_lowest_price(
    sim: str, session: aiohttp.ClientSession, currency: int
) -> None:
    who = Who(currency=currency, appid=730, market_hash_name=REDLINE)
    overview_url = f"{sim}/market/priceoverview/?appid=730&currency={currency}"
    async with session.get(overview_url + f"&market_hash_name={quote(REDLINE)}") as r:
        overview = parsers.parse_priceoverview(await r.read(), **who)
    render_url = f"{sim}{item_path(730, REDLINE)}/render/?start=0&count=10&currency={currency}"
    async with session.get(render_url + "&format=json", cookies=OPT_OUT) as r:
        render = parsers.parse_listings_render(await r.read(), **who)
    async with session.get(sim + item_path(730, REDLINE)) as r:
        match = re.search(r"Market_LoadOrderSpread\( (\d+) \);", await r.text())
    assert match is not None
    histogram_url = f"{sim}/market/itemordershistogram?country=US&language=english"
    histogram_url += f"&currency={currency}&item_nameid={match.group(1)}&two_factor=0"
    async with session.get(histogram_url + "&norender=1") as r:
        histogram = parsers.parse_orders_histogram(await r.read(), **who)
    async with session.get(histogram_url) as r:
        html_histogram = parsers.parse_orders_histogram(await r.read(), **who)
    # The new market: the skin's group asked for its listings, the book in the region's currency.
    wear = {"2": {"property_id": 2, "float_min": 0.15, "float_max": 0.38}}  # Field-Tested
    group = {
        "appid": 730,
        "strItemName": REDLINE_GROUP,
        "price": {"eCurrency": currency},
        "propertyFilters": wear,
    }
    qp = quote(json.dumps([group]))
    async with session.get(
        f"{sim}/market/actions?q=QueryListingsForItem&qp={qp}", headers=QUERY_ACTION
    ) as r:
        query = parsers.parse_query_listings(await r.read(), **who)
    async with session.post(f"{sim}/__sim/new-market", json={"region_currency": currency}):
        pass
    qp = quote(json.dumps([730, REDLINE]))
    async with session.get(f"{sim}/market/orderbook?q=Load&qp={qp}", headers=QUERY_ACTION) as r:
        book = parsers.parse_orderbook(await r.read(), **who)

    cheapest = render.listings[0].price + render.listings[0].fee
    assert overview.lowest_price == cheapest == histogram.lowest_sell == book.lowest_sell
    # The group narrowed to this wear's floats: this item's cheapest rows, in the same order.
    shared_rows = min(len(query.listings), len(render.listings))
    assert shared_rows > 0 and query.listings[:shared_rows] == render.listings[:shared_rows]
    assert render.total_count == histogram.sell_count == book.sell_count
    assert histogram == book  # the same levels too: the graph's and the compact arrays'
    assert book.sell_depth(book.lowest_sell or 0) >= 1
    # The HTML form states counts only in its summaries; a parser that falls back to the
    # depth graph sees the whole buy side but only the part of a long sell side it draws.
    assert (html_histogram.highest_buy, html_histogram.lowest_sell, html_histogram.buy_count) == (
        book.highest_buy,
        book.lowest_sell,
        book.buy_count,
    )
    assert html_histogram.sell_count <= book.sell_count
    assert all(listing.float_value is not None for listing in render.listings)


async def test_unknown_items_read_as_not_found(sim: str, session: aiohttp.ClientSession) -> None:
    who = Who(currency=1, appid=730, market_hash_name="No Such Item")
    async with session.get(
        f"{sim}/market/priceoverview/?appid=730&currency=1&market_hash_name=No%20Such%20Item"
    ) as r:
        with pytest.raises(ItemNotFound):
            parsers.parse_priceoverview(await r.read(), **who)
    qp = quote(json.dumps([730, "No Such Item"]))
    async with session.get(f"{sim}/market/orderbook?q=Load&qp={qp}", headers=QUERY_ACTION) as r:
        with pytest.raises(ItemNotFound):
            parsers.parse_orderbook(await r.read(), **who)
