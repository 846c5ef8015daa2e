"""Steam market bodies -> results or typed errors, checked against real captured payloads.

`search/render` has no parser (its results are an HTML fragment and no watch needs them);
its two samples are only shown to be refused by the listings parser.
"""

import copy
import json
import pickle
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.steam import (
    BadResponse,
    ItemNotFound,
    Listing,
    Listings,
    OrderBook,
    PriceOverview,
    Result,
    SteamError,
    body_excerpt,
    parse_listings_render,
    parse_orderbook,
    parse_orders_histogram,
    parse_priceoverview,
    parse_query_listings,
    parse_search_names,
)

SAMPLES = Path(__file__).parents[2] / "fixtures" / "steam_samples"
NAME = "M4A1-S | Atomic Alloy (Minimal Wear)"
Parser = Callable[..., Result]

ENDPOINTS: dict[str, Parser] = {
    "priceoverview": parse_priceoverview,
    "listings": parse_listings_render,
    "itemordershistogram": parse_orders_histogram,
    "QueryListingsForItem": parse_query_listings,
    "orderbook": parse_orderbook,
}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def run(parser: Parser, body: bytes | str | dict[str, Any], currency: int = 3) -> Result:
    text = json.dumps(body) if isinstance(body, dict) else body
    return parser(text, currency=currency, appid=730, market_hash_name=NAME)


# A QueryListingsForItem answer in the shape clients that read it in production expect (the
# parsers' docstring names them); no complete real body has been published, so this one is built
# from those field lists, with the values of the captured EUR render sample.
QUERY_LISTINGS: dict[str, Any] = {
    "data": {
        "more": True,
        "start": 0,
        "total_count": 419,
        "listings": [
            {
                "listingid": "433799027041528860",
                "unPrice": 438,
                "unFee": 64,
                "unSteamFee": 21,
                "unPublisherFee": 43,
                "eCurrency": 3,
                "strSubtotal": "5,02€",
                "publisherFeeApp": 730,
                "publisherFeePct": 0.10000000149011612,
                "bMine": False,
                "description": {"appid": 730, "market_hash_name": NAME},
                "asset": {
                    "appid": 730,
                    "contextid": "2",
                    "id": "992372515",
                    "assetid": "992372515",
                    "amount": "1",
                    "asset_properties": [
                        {"propertyid": 1, "int_value": "468"},
                        {"propertyid": 2, "float_value": "0.2474"},
                    ],
                    "asset_accessories": [],
                },
                "enhanced_appearances": [],
            }
        ],
        "facets": [],
    }
}
# Recorded from Steam (see SOURCES.md): the order book wrapped twice, levels as flat pairs.
ORDERBOOK: dict[str, Any] = json.loads(sample("orderbook__wrapped_chf__public-capture.json"))
PRICEOVERVIEW: dict[str, Any] = json.loads(
    sample("priceoverview__eur_success__KevinButzke08-CSP.json")
)
LISTINGS_RENDER: dict[str, Any] = json.loads(
    sample("listings_render__excerpt_1of10_eur__pvanassen-steam-api.json")
)
HISTOGRAM: dict[str, Any] = json.loads(sample("itemordershistogram__norender1_eur__Hridaya.json"))

VALID: dict[str, dict[str, Any]] = {
    "priceoverview": PRICEOVERVIEW,
    "listings": LISTINGS_RENDER,
    "itemordershistogram": HISTOGRAM,
    "QueryListingsForItem": QUERY_LISTINGS,
    "orderbook": ORDERBOOK,
}


def _po(currency: int, lowest: int | None, median: int | None, volume: int | None) -> PriceOverview:
    return PriceOverview(currency=currency, lowest_price=lowest, median_price=median, volume=volume)


def _listing(
    listing_id: str,
    price: int,
    fee: int,
    currency: int,
    asset_id: str | None = None,
    float_value: Decimal | None = None,
    paint_seed: int | None = None,
) -> Listing:
    return Listing(
        listing_id=listing_id,
        price=price,
        fee=fee,
        currency=currency,
        asset_id=asset_id,
        float_value=float_value,
        paint_seed=paint_seed,
    )


def _listings(total_count: int, listings: tuple[Listing, ...]) -> Listings:
    return Listings(total_count=total_count, listings=listings)


def _ob(
    currency: int,
    highest_buy: int | None,
    lowest_sell: int | None,
    buy_count: int,
    sell_count: int,
    *,
    buys: tuple[tuple[int, int], ...] = (),
    sells: tuple[tuple[int, int], ...] = (),
) -> OrderBook:
    return OrderBook(
        currency=currency,
        highest_buy=highest_buy,
        lowest_sell=lowest_sell,
        buy_count=buy_count,
        sell_count=sell_count,
        buys=buys,
        sells=sells,
    )


ATOMIC_ALLOY = _listing("433799027041528860", 438, 64, 3, "992372515")


# --- the captured samples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "currency", "expected"),
    [
        pytest.param(
            "priceoverview__eur_success__KevinButzke08-CSP.json",
            3,
            _po(3, 166, 163, 5638),
            id="eur-thousands-volume",
        ),
        pytest.param(
            "priceoverview__eur_success_pretty__Hridaya.json",
            3,
            _po(3, 3, 1, 435),
            id="eur-cents",
        ),
        pytest.param(
            "priceoverview__cny_success__BeyondDimension-SteamClient.json",
            23,
            _po(23, 101, 102, 2606),
            id="cny",
        ),
    ],
)
def test_priceoverview_samples(name: str, currency: int, expected: PriceOverview) -> None:
    result = run(parse_priceoverview, sample(name), currency)
    assert result == expected
    assert isinstance(result, PriceOverview) and result.has_data


@pytest.mark.parametrize(
    ("name", "currency", "expected"),
    [
        pytest.param(
            "listings_render__excerpt_1of10_eur__pvanassen-steam-api.json",
            3,
            _listings(419, (ATOMIC_ALLOY,)),
            id="eur-string-currencyid",
        ),
        pytest.param(
            "listings_render__listinginfo_entry_gbp_to_usd__InternalSteamWebAPI-wiki.json",
            1,
            _listings(48, (_listing("650327582236581978", 95, 13, 1, "15715147765"),)),
            id="gbp-converted-to-usd",
        ),
    ],
)
def test_listings_render_samples(name: str, currency: int, expected: Listings) -> None:
    result = run(parse_listings_render, sample(name), currency)
    assert result == expected
    assert isinstance(result, Listings)
    assert result.listings[0].total == expected.listings[0].price + expected.listings[0].fee


@pytest.mark.parametrize(
    ("name", "currency", "expected"),
    [
        pytest.param(
            "itemordershistogram__norender1_eur__Hridaya.json",
            3,
            _ob(3, highest_buy=3, lowest_sell=None, buy_count=2, sell_count=0, buys=((3, 2),)),
            id="norender1-counts-as-string-and-number",
        ),
        pytest.param(
            "itemordershistogram__legacy_html_tables_cny_schinese__ding221-steam.json",
            23,
            _ob(
                23,
                highest_buy=50,
                lowest_sell=None,
                buy_count=34,
                sell_count=0,
                # the cumulative graph read back into each level's own quantity
                buys=(
                    (50, 2),
                    (47, 6),
                    (46, 2),
                    (41, 6),
                    (37, 5),
                    (36, 1),
                    (32, 4),
                    (30, 2),
                    (29, 1),
                    (14, 1),
                    (12, 1),
                    (9, 1),
                    (8, 1),
                    (3, 1),
                ),
            ),
            id="html-tables-counts-from-graph",
        ),
    ],
)
def test_histogram_samples(name: str, currency: int, expected: OrderBook) -> None:
    assert run(parse_orders_histogram, sample(name), currency) == expected


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("search_render__html_start100000_error__pvanassen-steam-api.json", id="error"),
        pytest.param(
            "search_render__html_start100000_no_items__pvanassen-steam-api.json", id="no-items"
        ),
    ],
)
def test_search_render_samples_are_refused_by_listings_parser(name: str) -> None:
    # Given a search page (success true, an HTML fragment, no listinginfo), I expect BadResponse.
    with pytest.raises(BadResponse) as caught:
        run(parse_listings_render, sample(name))
    assert "listinginfo" in caught.value.reason
    assert caught.value.is_html is False
    assert caught.value.excerpt.startswith('{"success":true,"start":100000')


def test_real_new_market_order_book_capture() -> None:
    # Recorded in Switzerland: Steam answers in CHF (4) whatever was asked; levels per price.
    expected = _ob(
        4,
        highest_buy=525,
        lowest_sell=572,
        buy_count=71894,
        sell_count=1054,
        buys=((525, 11), (520, 3), (519, 3), (517, 15)),
        sells=((572, 1), (587, 1), (592, 1), (605, 1), (606, 3)),
    )
    book = run(parse_orderbook, ORDERBOOK, currency=1)
    assert book == expected
    assert isinstance(book, OrderBook)
    assert (book.sell_depth(600), book.sell_depth(606), book.buy_depth(519)) == (3, 7, 17)


def test_new_market_listings_in_the_production_shape() -> None:
    wear_and_seed = _listing("433799027041528860", 438, 64, 3, "992372515", Decimal("0.2474"), 468)
    assert run(parse_query_listings, QUERY_LISTINGS) == _listings(419, (wear_and_seed,))


def test_new_market_group_answer_keeps_only_the_asked_item() -> None:
    # A query by group id answers every wear of the skin; rows of other wears are left out.
    body = copy.deepcopy(QUERY_LISTINGS)
    other = copy.deepcopy(body["data"]["listings"][0])
    other |= {"listingid": "1", "description": {"market_hash_name": "M4A1-S | X (Field-Tested)"}}
    body["data"]["listings"].insert(0, other)
    result = run(parse_query_listings, body)
    assert isinstance(result, Listings)
    assert [entry.listing_id for entry in result.listings] == ["433799027041528860"]


@pytest.mark.parametrize("body", ['{"data":null}', '{"data":[]}', '{"success":1,"data":null}'])
def test_new_market_listings_nothing_matches(body: str) -> None:
    assert run(parse_query_listings, body) == _listings(0, ())


def test_new_market_order_book_empty_sides() -> None:
    body = {
        "data": {
            "success": True,
            "data": {
                "amtMaxBuyOrder": None,
                "amtMinSellOrder": 21,
                "eCurrency": 23,
                "cBuyOrders": 0,
                "cSellOrders": 1,
                "rgCompactBuyOrders": [],
                "rgCompactSellOrders": [21, 1],
            },
        }
    }
    assert run(parse_orderbook, body) == _ob(23, None, 21, 0, 1, sells=((21, 1),))


# --- valid variations -------------------------------------------------------------------


def test_bare_success_is_no_data_not_an_error() -> None:
    result = run(parse_priceoverview, '{"success":true}')
    assert result == _po(3, None, None, None)
    assert isinstance(result, PriceOverview) and not result.has_data


def test_priceoverview_partial_data() -> None:
    result = run(parse_priceoverview, {"success": True, "volume": 12, "median_price": "23,--€"})
    assert result == _po(3, None, 2300, 12)


@pytest.mark.parametrize(
    ("parser", "body", "endpoint"),
    [
        pytest.param(parse_priceoverview, '{"success":false}', "priceoverview", id="priceoverview"),
        pytest.param(parse_listings_render, '{"success":false}', "listings", id="listings-render"),
        pytest.param(parse_query_listings, '{"success":8}', "QueryListingsForItem", id="query"),
        pytest.param(parse_orderbook, '{"success":8}', "orderbook", id="orderbook"),
        pytest.param(
            parse_orderbook, '{"data":{"success":false}}', "orderbook", id="orderbook-wrapped"
        ),
    ],
)
def test_unknown_item(parser: Parser, body: str, endpoint: str) -> None:
    with pytest.raises(ItemNotFound) as caught:
        run(parser, body)
    assert (caught.value.endpoint, caught.value.appid) == (endpoint, 730)
    assert caught.value.market_hash_name == NAME


def render_with(**changes: Any) -> dict[str, Any]:
    """The EUR render sample with fields of its only listing changed (None deletes)."""
    body = copy.deepcopy(LISTINGS_RENDER)
    info = body["listinginfo"]["433799027041528860"]
    for key, value in changes.items():
        target = info["asset"] if key == "asset_properties" else info
        if value is None:
            del target[key]
        else:
            target[key] = value
    return body


PROPS = [
    {"propertyid": 1, "int_value": "468", "name": "Pattern Template"},
    {"propertyid": 2, "float_value": "0.2474", "name": "Wear Rating"},
    {"propertyid": 6, "string_value": "something new"},
]


def test_listing_properties_in_listing_asset() -> None:
    result = run(parse_listings_render, render_with(asset_properties=PROPS))
    assert isinstance(result, Listings)
    assert (result.listings[0].float_value, result.listings[0].paint_seed) == (
        Decimal("0.2474"),
        468,
    )


def test_listing_properties_in_assets_table() -> None:
    body = copy.deepcopy(LISTINGS_RENDER)
    body["assets"]["730"]["2"]["992372515"]["asset_properties"] = PROPS
    result = run(parse_listings_render, body)
    assert isinstance(result, Listings)
    assert result.listings[0].float_value == Decimal("0.2474")
    assert result.listings[0].paint_seed == 468


def test_wear_sent_as_json_number_keeps_every_digit() -> None:
    props = '[{"propertyid":2,"float_value":0.24741235375404358},{"propertyid":1,"int_value":7}]'
    text = json.dumps(render_with(asset_properties=[])).replace(
        '"asset_properties": []', f'"asset_properties": {props}'
    )
    result = run(parse_listings_render, text)
    assert isinstance(result, Listings)
    assert str(result.listings[0].float_value) == "0.24741235375404358"
    assert result.listings[0].paint_seed == 7


def test_listing_without_converted_fields_uses_seller_currency() -> None:
    body = render_with(
        converted_price=None,
        converted_fee=None,
        converted_currencyid=None,
        currencyid=2002,
        price=70,
        fee=10,
    )
    assert run(parse_listings_render, body) == _listings(
        419, (_listing("433799027041528860", 70, 10, 2, "992372515"),)
    )


def test_listing_sold_while_rendering_is_skipped() -> None:
    body = render_with(converted_price=0, converted_fee=0)
    assert run(parse_listings_render, body) == _listings(419, ())


def test_php_empty_listinginfo_means_no_listings() -> None:
    body = (
        '{"success":true,"start":0,"pagesize":"10","total_count":"0","listinginfo":[],"assets":[]}'
    )
    assert run(parse_listings_render, body) == _listings(0, ())


def test_histogram_counts_from_graphs_when_missing() -> None:
    body = {
        "success": True,
        "highest_buy_order": 3,
        "lowest_sell_order": "7",
        "buy_order_graph": [[0.03, 2, "x"], [0.02, 9, "y"]],
        "sell_order_graph": [[0.07, 4, "z"]],
    }
    assert run(parse_orders_histogram, body) == _ob(
        3, 3, 7, 9, 4, buys=((3, 2), (2, 7)), sells=((7, 4),)
    )


def test_the_html_entity_priceoverview_capture() -> None:
    body = sample("priceoverview__eur_html_entity__public-comments.json")
    assert run(parse_priceoverview, body) == _po(3, 26135, 26952, 11)


def test_histogram_graph_prices_printed_at_17_digits_read_as_their_cent() -> None:
    body = (
        '{"success":1,"highest_buy_order":"29","lowest_sell_order":"30",'
        '"buy_order_graph":[[0.28999999999999998,2,"x"],[0.1,5,"y"]],'
        '"sell_order_graph":[[0.30000000000000004,1,"z"]]}'
    )
    book = run(parse_orders_histogram, body)
    assert isinstance(book, OrderBook)
    assert (book.buys, book.sells) == (((29, 2), (10, 3)), ((30, 1),))
    with pytest.raises(BadResponse, match="at most 2 decimals"):
        run(parse_orders_histogram, body.replace("0.1,5", "0.105,5"))


def test_new_market_numbers_as_strings_and_no_asset() -> None:
    entry = {"listingid": 9, "unPrice": "100", "unFee": "15", "eCurrency": "2003"}
    listings = {"data": {"total_count": "1", "listings": [entry]}}
    orderbook = {
        "data": {
            "success": 1,
            "data": {
                "eCurrency": "3",
                "amtMaxBuyOrder": 5,
                "amtMinSellOrder": "9",
                "cBuyOrders": 1,
                "cSellOrders": "4",
            },
        }
    }
    assert run(parse_query_listings, listings) == _listings(1, (_listing("9", 100, 15, 3),))
    assert run(parse_orderbook, orderbook) == _ob(3, 5, 9, 1, 4)


def test_bytes_with_bom_and_surrounding_whitespace() -> None:
    body = b"\xef\xbb\xbf \r\n" + sample("priceoverview__eur_success__KevinButzke08-CSP.json")
    assert run(parse_priceoverview, body) == _po(3, 166, 163, 5638)


# --- bodies that are not the promised payload -------------------------------------------

HTML_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head><title>Sorry!</title></head>\n<body>\n"
    "  <h2>An error was encountered while processing your request:</h2>\n</body></html>"
)

# (id, body, is_html): refused by every endpoint with BadResponse
ANY_ENDPOINT = [
    ("malformed-json", '{"success":true,"lowest_price":', False),
    ("truncated", '{"success":1,"total_count":4', False),
    ("html-error-page", HTML_PAGE, True),
    ("200-html-after-whitespace", "\r\n\t  " + HTML_PAGE, True),
    ("html-after-text", "Service Unavailable <html><body>503</body></html>", True),
    ("null", "null", False),
    ("empty-array", "[]", False),
    ("string", '"string"', False),
    ("number", "42", False),
    ("true", "true", False),
    ("empty", "", False),
    ("blank", " \n ", False),
    ("nan", '{"success":NaN}', False),
    ("not-utf8", b'{"success":\xff}', False),
]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(
    ("body", "is_html"), [pytest.param(b, h, id=i) for i, b, h in ANY_ENDPOINT]
)
def test_not_a_payload(endpoint: str, body: str | bytes, is_html: bool) -> None:
    with pytest.raises(BadResponse) as caught:
        run(ENDPOINTS[endpoint], body)
    error = caught.value
    assert type(error) is BadResponse
    assert (error.endpoint, error.is_html) == (endpoint, is_html)
    assert error.reason
    assert error.excerpt == body_excerpt(body)
    assert bool(error.excerpt) == bool(body.strip())


DELETE = object()
LI = ("listinginfo", "433799027041528860")
PROPS_AT = (*LI, "asset", "asset_properties")

# (endpoint, path to a field, value or DELETE): each makes a valid body a BadResponse
FIELD_FAULTS: list[tuple[str, tuple[str | int, ...], Any]] = [
    ("priceoverview", ("success",), DELETE),
    ("priceoverview", ("success",), "true"),
    ("priceoverview", ("success",), None),
    ("priceoverview", ("success",), 2),
    ("priceoverview", ("lowest_price",), True),
    ("priceoverview", ("lowest_price",), 166),
    ("priceoverview", ("lowest_price",), "-1,66€"),
    ("priceoverview", ("lowest_price",), "1.66$"),
    ("priceoverview", ("lowest_price",), []),
    ("priceoverview", ("median_price",), {"amount": 163}),
    ("priceoverview", ("median_price",), False),
    ("priceoverview", ("volume",), True),
    ("priceoverview", ("volume",), -5),
    ("priceoverview", ("volume",), "-5"),
    ("priceoverview", ("volume",), "5,63"),
    ("priceoverview", ("volume",), "many"),
    ("listings", ("success",), DELETE),
    ("listings", ("success",), "1"),
    ("listings", ("total_count",), DELETE),
    ("listings", ("total_count",), True),
    ("listings", ("total_count",), -1),
    ("listings", ("total_count",), "419 items"),
    ("listings", ("listinginfo",), DELETE),
    ("listings", ("listinginfo",), "none"),
    ("listings", ("listinginfo",), [1]),
    ("listings", LI, "sold"),
    ("listings", (*LI, "listingid"), True),
    ("listings", (*LI, "listingid"), "L-1"),
    ("listings", (*LI, "converted_price"), True),
    ("listings", (*LI, "converted_price"), -438),
    ("listings", (*LI, "converted_price"), "4,38€"),
    ("listings", (*LI, "converted_fee"), DELETE),
    ("listings", (*LI, "converted_fee"), True),
    ("listings", (*LI, "converted_currencyid"), "2999"),
    ("listings", (*LI, "converted_currencyid"), True),
    ("listings", (*LI, "converted_currencyid"), DELETE),
    ("listings", (*LI, "asset"), "992372515"),
    ("listings", (*LI, "asset", "id"), DELETE),
    ("listings", (*LI, "asset", "id"), False),
    ("listings", PROPS_AT, "x"),
    ("listings", PROPS_AT, [1]),
    ("listings", PROPS_AT, [{"propertyid": 2, "float_value": "1.5"}]),
    ("listings", PROPS_AT, [{"propertyid": 2, "float_value": "NaN"}]),
    ("listings", PROPS_AT, [{"propertyid": 2, "float_value": True}]),
    ("listings", PROPS_AT, [{"propertyid": 1, "int_value": "-3"}]),
    ("listings", PROPS_AT, [{"propertyid": 1}]),
    ("listings", PROPS_AT, [{"propertyid": True, "int_value": "1"}]),
    ("listings", ("assets",), "none"),
    ("listings", ("assets", "730"), "none"),
    ("itemordershistogram", ("success",), 2),
    ("itemordershistogram", ("success",), False),
    ("itemordershistogram", ("success",), "1"),
    ("itemordershistogram", ("success",), DELETE),
    ("itemordershistogram", ("highest_buy_order",), True),
    ("itemordershistogram", ("highest_buy_order",), -3),
    ("itemordershistogram", ("highest_buy_order",), "0,03€"),
    ("itemordershistogram", ("highest_buy_order",), 0.03),
    ("itemordershistogram", ("highest_buy_order",), DELETE),
    ("itemordershistogram", ("lowest_sell_order",), False),
    ("itemordershistogram", ("lowest_sell_order",), DELETE),
    ("itemordershistogram", ("buy_order_count",), True),
    ("itemordershistogram", ("buy_order_count",), "-2"),
    ("itemordershistogram", ("buy_order_count",), "two"),
    ("itemordershistogram", ("sell_order_count",), 1.5),
    ("QueryListingsForItem", ("data",), "none"),
    ("QueryListingsForItem", ("data",), 5),
    ("QueryListingsForItem", ("data", "total_count"), False),
    ("QueryListingsForItem", ("data", "total_count"), "many"),
    ("QueryListingsForItem", ("data", "listings"), DELETE),
    ("QueryListingsForItem", ("data", "listings"), {"433799027041528860": {}}),
    ("QueryListingsForItem", ("data", "listings", 0), "sold"),
    ("QueryListingsForItem", ("data", "listings", 0, "listingid"), DELETE),
    ("QueryListingsForItem", ("data", "listings", 0, "unPrice"), True),
    ("QueryListingsForItem", ("data", "listings", 0, "unPrice"), -438),
    ("QueryListingsForItem", ("data", "listings", 0, "unPrice"), "4,38"),
    ("QueryListingsForItem", ("data", "listings", 0, "unPrice"), 4.38),
    ("QueryListingsForItem", ("data", "listings", 0, "unPrice"), DELETE),
    ("QueryListingsForItem", ("data", "listings", 0, "unFee"), None),
    ("QueryListingsForItem", ("data", "listings", 0, "eCurrency"), 999),
    ("QueryListingsForItem", ("data", "listings", 0, "eCurrency"), True),
    ("QueryListingsForItem", ("data", "listings", 0, "eCurrency"), DELETE),
    ("QueryListingsForItem", ("data", "listings", 0, "description"), "AK-47"),
    ("QueryListingsForItem", ("data", "listings", 0, "asset", "asset_properties"), {"1": "468"}),
    ("orderbook", ("data",), DELETE),
    ("orderbook", ("data",), "none"),
    ("orderbook", ("data", "success"), 2),
    ("orderbook", ("data", "success"), "1"),
    ("orderbook", ("data", "data"), None),
    ("orderbook", ("data", "data", "eCurrency"), DELETE),
    ("orderbook", ("data", "data", "eCurrency"), True),
    ("orderbook", ("data", "data", "eCurrency"), 0),
    ("orderbook", ("data", "data", "amtMaxBuyOrder"), True),
    ("orderbook", ("data", "data", "amtMaxBuyOrder"), -3),
    ("orderbook", ("data", "data", "amtMaxBuyOrder"), "0,03€"),
    ("orderbook", ("data", "data", "amtMaxBuyOrder"), DELETE),
    ("orderbook", ("data", "data", "amtMinSellOrder"), [7]),
    ("orderbook", ("data", "data", "cBuyOrders"), DELETE),
    ("orderbook", ("data", "data", "cBuyOrders"), None),
    ("orderbook", ("data", "data", "cBuyOrders"), True),
    ("orderbook", ("data", "data", "cSellOrders"), -1),
    ("orderbook", ("data", "data", "rgCompactBuyOrders"), [525, 11, 520]),
    ("orderbook", ("data", "data", "rgCompactBuyOrders"), "525,11"),
    ("orderbook", ("data", "data", "rgCompactSellOrders"), [572, -1]),
    ("orderbook", ("data", "data", "rgCompactSellOrders"), [572, True]),
]


def corrupt(endpoint: str, path: tuple[str | int, ...], value: Any) -> str:
    body = copy.deepcopy(VALID[endpoint])
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(body, ensure_ascii=False)


def fault_id(endpoint: str, path: tuple[str | int, ...], value: Any) -> str:
    shown = "deleted" if value is DELETE else json.dumps(value, ensure_ascii=False)
    return f"{endpoint}-{'.'.join(map(str, path))}={shown}"


@pytest.mark.parametrize("endpoint", list(VALID))
def test_valid_bodies_parse(endpoint: str) -> None:
    # Guards the fault table: each fault below is the only thing wrong with its body.
    assert isinstance(
        run(ENDPOINTS[endpoint], VALID[endpoint]), Listings | OrderBook | PriceOverview
    )


@pytest.mark.parametrize(
    ("endpoint", "path", "value"),
    [pytest.param(*fault, id=fault_id(*fault)) for fault in FIELD_FAULTS],
)
def test_wrong_field(endpoint: str, path: tuple[str | int, ...], value: Any) -> None:
    body = corrupt(endpoint, path, value)
    with pytest.raises(BadResponse) as caught:
        run(ENDPOINTS[endpoint], body)
    error = caught.value
    assert type(error) is BadResponse
    assert (error.endpoint, error.is_html) == (endpoint, False)
    assert str(path[-1]) in error.reason or "success" in error.reason or "object" in error.reason
    assert error.excerpt == body_excerpt(body) != ""
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


JUNK: list[Any] = [DELETE, None, True, False, 0, -1, 1.5, "", "x", "-1", [], [[]], {}, {"a": 1}]


def paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path inside a JSON document."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    found: list[tuple[str | int, ...]] = []
    for key, child in items:
        found.append((*prefix, key))
        if isinstance(child, dict | list):
            found.extend(paths(child, (*prefix, key)))
    return found


@pytest.mark.parametrize("endpoint", list(VALID))
def test_any_single_corruption_gives_a_result_or_a_steam_error(endpoint: str) -> None:
    # Given every field of a valid body replaced by junk, I expect nothing but SteamError out.
    leaked = []
    for path in paths(VALID[endpoint]):
        for value in JUNK:
            try:
                run(ENDPOINTS[endpoint], corrupt(endpoint, path, value))
            except SteamError:
                pass
            except Exception as e:  # noqa: BLE001 - collecting leaks is the point
                leaked.append((path, value, repr(e)))
    assert leaked == []


# --- results read back from JSON ----------------------------------------------------------

RESULTS: list[Result] = [
    _po(3, 166, 163, 5638),
    _po(3, None, None, None),
    _listings(
        419,
        (
            _listing("1", 438, 64, 3, "992", Decimal("0.24741235375404358"), 468),
            _listing("2", 95, 13, 1, None, None, None),
        ),
    ),
    _listings(0, ()),
    _ob(3, 3, None, 2, 0),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_result_round_trip(result: Result) -> None:
    # Given a result as it travels (JSON), I expect the same result back, its kind kept.
    wire = json.loads(json.dumps(result.model_dump(mode="json")))
    assert wire["kind"] == result.kind
    assert TypeAdapter(Result).validate_python(wire) == result


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"kind": "order_book", "currency": 3, "lowest_price": 1}, id="wrong-kind"),
        pytest.param({"kind": "price_overview", "currency": 3, "lowest_price": True}, id="bool"),
        pytest.param({"kind": "price_overview", "currency": 3, "price": 1}, id="unknown-field"),
        pytest.param({"kind": "candles", "currency": 3}, id="unknown-kind"),
        pytest.param(
            {"kind": "listings", "total_count": 1, "listings": [{"price": 1}]}, id="bad-listing"
        ),
    ],
)
def test_a_malformed_result_is_refused(data: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        TypeAdapter(Result).validate_python(data)


# --- search ----------------------------------------------------------------------------------


def test_search_names_are_the_hash_names_of_the_app_in_steams_order() -> None:
    body = {
        "success": True,
        "start": 0,
        "pagesize": 10,
        "total_count": 3,
        "results": [
            {"hash_name": "AK-47 | Redline (Field-Tested)", "asset_description": {"appid": 730}},
            {"hash_name": "Mann Co. Supply Crate Key", "asset_description": {"appid": 440}},
            {"name": "x", "asset_description": {"appid": 730, "market_hash_name": "AWP | Dune"}},
        ],
    }
    names = parse_search_names(json.dumps(body).encode(), appid=730)
    assert names == ["AK-47 | Redline (Field-Tested)", "AWP | Dune"]


@pytest.mark.parametrize(
    "name",
    [
        "search_render__html_start100000_no_items__pvanassen-steam-api.json",
        "search_render__html_start100000_error__pvanassen-steam-api.json",
    ],
)
def test_a_real_search_page_without_results_is_empty_whatever_its_html_says(name: str) -> None:
    assert parse_search_names(sample(name), appid=730) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"success":false}',
        b'{"success":true,"results":{"a":1}}',
        b'{"success":true,"results":[{}]}',
    ],
)
def test_a_search_answer_of_another_shape_is_a_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse) as caught:
        parse_search_names(body, appid=730)
    assert caught.value.endpoint == "search"
