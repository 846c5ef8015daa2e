"""Steam's JSON bodies, built from market state with Steam's field names and quirks.

Quirks kept on purpose: legacy bodies are PHP-encoded (`\\/`, `\\u20ac`); priceoverview
omits fields it has no data for; listing `currencyid`s are strings "2000 + id";
histogram counts are a string of digits, or the number 0 when a side is empty; empty
PHP maps are `[]`. Each function returns a plain dict; `legacy_json` encodes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from shared.steam import WALLET_ID_OFFSET, format_price, minor_digits
from simulator.catalogue import APP_NAMES, CONTEXT_ID, Item
from simulator.market import Listing, Overview, Quote
from simulator.money import PUBLISHER_FEE_TEXT
from simulator.orderbook import Level, OrderBook
from simulator.pages import listing_rows, order_summary, order_table

_INSPECT = "steam://rungame/730/76561202255233023/+csgo_econ_action_preview%20M{}A{}D{}"
APP_ICON = "https://cdn.fastly.steamstatic.com/steamcommunity/public/images/apps/{}/icon.jpg"
ICON_URL = "fWFc82js0fmoRAP-qOIPu5THSWqfSmTELLqcUywGkijVjZYMUrsm1j-9xgEObwgfEh_nvjlWhNzZCveCDfI"
_GRAPH_POINTS = 50  # the buy side fits whole; a long sell side is cut, as on Steam


def legacy_json(data: Any) -> str:
    """Encode like PHP's json_encode: ASCII only, slashes escaped."""
    return json.dumps(data, separators=(",", ":")).replace("/", "\\/")


def count_field(count: int) -> int | str:
    """Steam's order counts: 0 as a number, anything else as a string of digits."""
    return str(count) if count else 0


def priceoverview(overview: Overview, currency: int) -> dict[str, Any]:
    data: dict[str, Any] = {"success": True}
    if overview.lowest is not None:
        data["lowest_price"] = format_price(overview.lowest, currency)
    if overview.volume:
        data["volume"] = f"{overview.volume:,}"
    if overview.median is not None:
        data["median_price"] = format_price(overview.median, currency)
    return data


def _properties(listing: Listing) -> list[dict[str, Any]]:
    if listing.pattern_seed is None or listing.wear is None:
        return []
    return [
        {"propertyid": 1, "int_value": str(listing.pattern_seed)},
        {"propertyid": 2, "float_value": listing.wear},
    ]


def _inspect_d(listing: Listing) -> int:
    return listing.assetid * 2_654_435_761 % 10**19


def asset_description(item: Item, listing: Listing) -> dict[str, Any]:
    """The `assets` entry of a listed item, as in the captured CS2 listing."""
    name = item.market_hash_name
    wear = item.wear
    short = name[: -len(wear) - 3] if wear else name
    entry: dict[str, Any] = {
        "currency": 0,
        "appid": item.appid,
        "contextid": CONTEXT_ID,
        "id": str(listing.assetid),
        "classid": class_id(item),
        "instanceid": str(item.item_nameid % 500_000_000) if item.has_float else "0",
        "amount": "1",
        "status": 2,
        "background_color": "",
        "icon_url": ICON_URL,
        "icon_url_large": ICON_URL,
        "descriptions": _descriptions(item),
        "tradable": 1,
        "name": short,
        "name_color": name_color(name, item.appid),
        "type": _type(item),
        "market_name": name,
        "market_hash_name": name,
        "commodity": 0 if item.has_float else 1,
        "market_tradable_restriction": 7,
        "marketable": 1,
        "app_icon": APP_ICON.format(item.appid),
        "owner": 0,
    }
    if item.appid == 730 and item.has_float:
        link = _INSPECT.format(listing.listingid, "%assetid%", _inspect_d(listing))
        entry["actions"] = entry["market_actions"] = [{"link": link, "name": "Inspect in Game..."}]
    properties = _properties(listing)
    if properties:
        entry["asset_properties"] = properties
    return entry


def class_id(item: Item) -> str:
    """A stable stand-in for Steam's classid of an item."""
    return str(300_000_000 + item.item_nameid * 7 % 4_000_000_000)


def _descriptions(item: Item) -> list[dict[str, str]]:
    lines = [{"type": "html", "value": f"Exterior: {item.wear}"}] if item.wear else []
    return lines + [{"type": "html", "value": " "}]


def name_color(name: str, appid: int) -> str:
    if appid == 440:
        return "CF6A32" if name.startswith("Strange") else "7D6D00"
    if "StatTrak™" in name:
        return "CF6A32"
    if name.startswith("Souvenir"):
        return "FFD700"
    return "8650AC" if name.startswith("★") else "D2D2D2"


def _type(item: Item) -> str:
    name = item.market_hash_name
    if item.appid != 730:
        return "Tool" if item.appid == 440 and not name.startswith("Strange ") else "Wearable"
    if name.endswith(("Case", "Capsule")) or "Capsule" in name:
        return "Base Grade Container"
    if name.startswith("Sticker |"):
        return "High Grade Sticker"
    if name.startswith("★"):
        return "★ Covert Gloves" if "Gloves" in name or "Wraps" in name else "★ Covert Knife"
    return "Classified Rifle" if item.wear else "Master Agent"


def _listing_info(item: Item, quote: Quote) -> dict[str, Any]:
    listing, fees, conv = quote.listing, quote.fees, quote.converted_fees
    asset: dict[str, Any] = {
        "currency": 0,
        "appid": item.appid,
        "contextid": CONTEXT_ID,
        "id": str(listing.assetid),
        "amount": "1",
    }
    if item.appid == 730 and item.has_float:
        link = _INSPECT.format("%listingid%", "%assetid%", _inspect_d(listing))
        asset["market_actions"] = [{"link": link, "name": "Inspect in Game..."}]
    if _properties(listing):
        asset["asset_properties"] = _properties(listing)
    return {
        "listingid": str(listing.listingid),
        "price": listing.price,
        "fee": fees.total,
        "publisher_fee_app": item.appid,
        "publisher_fee_percent": PUBLISHER_FEE_TEXT,
        "currencyid": str(WALLET_ID_OFFSET + listing.currency),
        "steam_fee": fees.steam,
        "publisher_fee": fees.publisher,
        "converted_price": quote.converted_price,
        "converted_fee": conv.total,
        "converted_currencyid": str(WALLET_ID_OFFSET + quote.currency),
        "converted_steam_fee": conv.steam,
        "converted_publisher_fee": conv.publisher,
        "converted_price_per_unit": quote.converted_price,
        "converted_fee_per_unit": conv.total,
        "converted_steam_fee_per_unit": conv.steam,
        "converted_publisher_fee_per_unit": conv.publisher,
        "asset": asset,
    }


def listings_render(
    item: Item, total: int, page: Sequence[Quote], start: int, count: int
) -> dict[str, Any]:
    """`/market/listings/{appid}/{name}/render/`: one page of listings and their assets."""
    infos = {str(q.listing.listingid): _listing_info(item, q) for q in page}
    assets = {str(q.listing.assetid): asset_description(item, q.listing) for q in page}
    return {
        "success": True,
        "start": start,
        "pagesize": count,
        "total_count": total,
        "results_html": listing_rows(page),
        "listinginfo": infos or [],
        "assets": {str(item.appid): {CONTEXT_ID: assets}} if assets else [],
        "currency": [],
        "hovers": "",
        "app_data": {
            str(item.appid): {
                "appid": item.appid,
                "name": APP_NAMES[item.appid],
                "icon": APP_ICON.format(item.appid),
                "link": f"https://steamcommunity.com/app/{item.appid}",
            }
        },
    }


def _affixes(currency: int) -> tuple[str, str]:
    text = format_price(123_456, currency)
    digits = [m.start() for m in re.finditer(r"[0-9]", text)]
    return text[: digits[0]].strip(), text[digits[-1] + 1 :].strip()


def _graph(levels: tuple[Level, ...], currency: int, side: str) -> list[list[Any]]:
    points, running = [], 0
    for level in levels[:_GRAPH_POINTS]:
        running += level.quantity
        price = format_price(level.price, currency)
        label = (
            f"{running:,} buy orders at {price} or higher"
            if side == "buy"
            else f"{running:,} sell orders at {price} or lower"
        )
        points.append([level.price / 10 ** minor_digits(currency), running, label])
    return points


def _nice_ceiling(value: int) -> int:
    return value if value <= 10 else -(-value // 10) * 10


def histogram(book: OrderBook, *, norender: bool) -> dict[str, Any]:
    """`/market/itemordershistogram`: the `norender=1` form, or the HTML-table form."""
    c = book.currency
    buy_graph, sell_graph = _graph(book.buys, c, "buy"), _graph(book.sells, c, "sell")
    prefix, suffix = _affixes(c)
    common: dict[str, Any] = {
        "highest_buy_order": None if book.highest_buy is None else str(book.highest_buy),
        "lowest_sell_order": None if book.lowest_sell is None else str(book.lowest_sell),
        "buy_order_graph": buy_graph,
        "sell_order_graph": sell_graph,
        "graph_max_y": _nice_ceiling(max([p[1] for p in buy_graph + sell_graph], default=0)),
        "graph_min_x": buy_graph[-1][0] if buy_graph else (sell_graph[0][0] if sell_graph else 0),
        "graph_max_x": sell_graph[-1][0] if sell_graph else 0,
        "price_prefix": prefix,
        "price_suffix": suffix,
    }
    if not norender:
        return {
            "success": 1,
            "sell_order_table": order_table(book.sells, c, "sell"),
            "sell_order_summary": order_summary(book.sells, book.sell_count, c, "sell"),
            "buy_order_table": order_table(book.buys, c, "buy"),
            "buy_order_summary": order_summary(book.buys, book.buy_count, c, "buy"),
            **common,
        }

    def table(levels: tuple[Level, ...]) -> list[dict[str, str]] | None:
        rows = [
            {"price": format_price(lv.price, c), "quantity": str(lv.quantity)} for lv in levels[:6]
        ]
        return rows or None

    return {
        "success": 1,
        "sell_order_count": count_field(book.sell_count),
        "sell_order_price": None if book.lowest_sell is None else format_price(book.lowest_sell, c),
        "sell_order_table": table(book.sells),
        "buy_order_count": count_field(book.buy_count),
        "buy_order_price": None if book.highest_buy is None else format_price(book.highest_buy, c),
        "buy_order_table": table(book.buys),
        **common,
    }


def query_listing(item: Item, quote: Quote) -> dict[str, Any]:
    """One row of the new market's `QueryListingsForItem`: prices in the asked currency."""
    listing = quote.listing
    description: dict[str, Any] = {
        "appid": item.appid,
        "classid": class_id(item),
        "instanceid": "0",
        "icon_url": ICON_URL,
        "tradable": 1,
        "name": item.group_name if item.wear else item.market_hash_name,
        "name_color": name_color(item.market_hash_name, item.appid),
        "type": _type(item),
        "market_name": item.market_hash_name,
        "market_hash_name": item.market_hash_name,
        "commodity": 0 if item.has_float else 1,
        "marketable": 1,
    }
    if item.group_id is not None:
        description["market_bucket_group_id"] = item.group_id
        description["market_bucket_group_name"] = item.group_name
    return {
        "listingid": str(listing.listingid),
        "unPrice": quote.converted_price,
        "unFee": quote.converted_fees.total,
        "unSteamFee": quote.converted_fees.steam,
        "unPublisherFee": quote.converted_fees.publisher,
        "eCurrency": quote.currency,
        "strSubtotal": format_price(quote.total, quote.currency),
        "publisherFeeApp": item.appid,
        "publisherFeePct": 0.10000000149011612,
        "bMine": False,
        "description": description,
        "asset": {
            "appid": item.appid,
            "contextid": CONTEXT_ID,
            "id": str(listing.assetid),
            "assetid": str(listing.assetid),
            "classid": class_id(item),
            "instanceid": "0",
            "amount": "1",
            "asset_properties": _properties(listing),
            "asset_accessories": [],
        },
        "enhanced_appearances": [],
    }


def query_listings(
    rows: Sequence[tuple[Item, Quote]], *, total: int, start: int, page_size: int
) -> dict[str, Any]:
    """New market `QueryListingsForItem`: one page of rows, as `{"data": {...}}`."""
    page = rows[start : start + page_size]
    return {
        "data": {
            "more": start + len(page) < total,
            "start": start,
            "total_count": total,
            "listings": [query_listing(item, quote) for item, quote in page],
            "facets": [],
        }
    }


def _compact(levels: tuple[Level, ...]) -> list[int]:
    flat: list[int] = []
    for level in levels[:_GRAPH_POINTS]:
        flat += [level.price, level.quantity]
    return flat


def orderbook(book: OrderBook) -> dict[str, Any]:
    """New market order book, wrapped twice as Steam sends it; levels as flat pairs."""
    return {
        "data": {
            "success": True,
            "data": {
                "amtMaxBuyOrder": book.highest_buy,
                "amtMinSellOrder": book.lowest_sell,
                "eCurrency": book.currency,
                "cBuyOrders": book.buy_count,
                "cSellOrders": book.sell_count,
                "rgCompactBuyOrders": _compact(book.buys),
                "rgCompactSellOrders": _compact(book.sells),
            },
        }
    }
