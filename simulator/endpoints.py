"""The market endpoints, in Steam's formats: legacy JSON, item pages and the 2026 new market.

Handlers only read parameters, find the item and pick a payload; limits, faults and
counting happen in the middleware around them, keyed by `ENDPOINT_OF_HANDLER`. Legacy
endpoints obey the legacy switch: when Steam has turned them off they answer with the
new market's page or a redirect.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator import payloads
from simulator.catalogue import Item
from simulator.config import Endpoint
from simulator.market import Quote
from simulator.money import coerce_currency
from simulator.orderbook import build_order_book
from simulator.pages import classic_listing_page, error_page, item_url, new_market_page
from simulator.state import STATE, SimulatorState

_JSON = "application/json"
_MAX_PAGE = 100
_NOT_FOUND = 8  # EResult "no match", the new market's answer for an unknown item
_HISTOGRAM_NO_ITEM = 16  # a non-1 EResult, as the histogram sends for an unknown item_nameid
_QUERY_ACTION = "queryAction"
_NEW_PAGE = 20  # rows per QueryListingsForItem page, as on Steam
_FLOAT_SLACK = Decimal("1e-7")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _state(request: web.Request) -> SimulatorState:
    return request.app[STATE]


def int_param(request: web.Request, key: str, default: int | None = None) -> int | None:
    """An integer query parameter; missing or not a plain ASCII integer gives `default`."""
    value = (request.query.get(key) or "").strip()
    if not (value.isascii() and value.removeprefix("-").isdigit()):
        return default
    return int(value)


def legacy_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=payloads.legacy_json(body), status=status, content_type=_JSON)


def html_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def switched_off(request: web.Request, target: str = "/market/") -> web.Response | None:
    """What an old endpoint says once Steam has turned the old market off, else None."""
    mode = _state(request).legacy
    if mode == "html":
        return html_response(new_market_page())
    if mode == "redirect":
        return web.Response(status=302, headers={"Location": target})
    return None


async def priceoverview(request: web.Request) -> web.Response:
    off = switched_off(request)
    if off is not None:
        return off
    state = _state(request)
    appid, name = int_param(request, "appid"), request.query.get("market_hash_name")
    item = state.catalogue.find(appid, name) if appid is not None and name else None
    if item is None:
        return legacy_response({"success": False}, status=500)
    currency = coerce_currency(int_param(request, "currency"))
    return legacy_response(payloads.priceoverview(state.market.overview(item, currency), currency))


def _item_from_path(request: web.Request) -> Item | None:
    appid = request.match_info["appid"]
    if not appid.isdigit():
        return None
    return _state(request).catalogue.find(int(appid), request.match_info["name"])


def page_bounds(start: int | None, count: int | None) -> tuple[int, int]:
    return max(0, start or 0), min(max(1, count or 10), _MAX_PAGE)


async def listings_render(request: web.Request) -> web.Response:
    item = _item_from_path(request)
    target = item_url(item) if item is not None else "/market/"
    off = switched_off(request, target)
    if off is not None:
        return off
    if request.cookies.get("bMarketOptOut") != "1":
        # Since the new market, the old render answers only to those who opted out.
        return web.Response(status=302, headers={"Location": target})
    if item is None:
        return legacy_response({"success": False})
    state = _state(request)
    currency = coerce_currency(int_param(request, "currency"))
    start, count = page_bounds(int_param(request, "start"), int_param(request, "count"))
    total, quotes = state.market.quotes(item, currency)
    body = payloads.listings_render(item, total, quotes[start : start + count], start, count)
    return legacy_response(body)


async def listings_page(request: web.Request) -> web.Response:
    item = _item_from_path(request)
    if _state(request).legacy != "on":
        return html_response(new_market_page())
    if item is None:
        return html_response(error_page("There are no listings for this item."))
    return html_response(classic_listing_page(item))


async def histogram(request: web.Request) -> web.Response:
    off = switched_off(request)
    if off is not None:
        return off
    state = _state(request)
    nameid = int_param(request, "item_nameid")
    item = state.catalogue.by_nameid(nameid) if nameid is not None else None
    if item is None:
        return legacy_response({"success": _HISTOGRAM_NO_ITEM})
    book = build_order_book(state.market, item, coerce_currency(int_param(request, "currency")))
    norender = request.query.get("norender") == "1"
    return legacy_response(payloads.histogram(book, norender=norender))


def _new_market_json(request: web.Request, body: dict[str, Any]) -> web.Response:
    """New-market JSON with an ETag; a matching If-None-Match gets an empty 304."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    etag = '"' + hashlib.sha1(text.encode()).hexdigest()[:24] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    wanted = {
        tag.strip().removeprefix("W/")
        for tag in request.headers.get("If-None-Match", "").split(",")
    }
    if etag in wanted or "*" in wanted:
        return web.Response(status=304, headers=headers)
    return web.Response(text=text, content_type=_JSON, headers=headers)


def _query_params(request: web.Request) -> list[Any] | None:
    try:
        params = json.loads(request.query.get("qp", ""))
    except ValueError:
        return None
    return params if isinstance(params, list) else None


def _refused(request: web.Request) -> web.Response | None:
    """What Steam says before a new-market call reaches its handler, if anything.

    A moved route answers with the market's page; Steam's WAF turns away a call without an
    Accept-Language header (403, an HTML page: aiosteampy added the header on 2026-07-24 for
    this); a call without the page's `x-valve-request-type: queryAction` is refused too.
    """
    if _state(request).new_market == "route_changed":
        return html_response(new_market_page())
    if not request.headers.get("Accept-Language", "").strip():
        return html_response(error_page("Access Denied"), status=403)
    if request.headers.get("x-valve-request-type") != _QUERY_ACTION:
        return html_response(error_page("Invalid request."), status=400)
    return None


def _listing_query(request: web.Request) -> dict[str, Any] | None:
    """The object `QueryListingsForItem` takes as `qp=[{…}]`, or None if it is not one."""
    params = _query_params(request)
    if not params or not isinstance(params[0], dict):
        return None
    query: dict[str, Any] = params[0]
    return query


def _bound(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        bound = Decimal(str(value))
    except ArithmeticError:
        return None
    return bound if bound.is_finite() else None


def _wanted(quote: Quote, price: dict[str, Any], wear: dict[str, Any]) -> bool:
    """Whether a row passes the query's price bounds (what the buyer pays) and wear filter."""
    low, high = _bound(price.get("unMin")), _bound(price.get("unMax"))
    if (low is not None and quote.total < low) or (high is not None and quote.total > high):
        return False
    if not wear:
        return True
    if quote.listing.wear is None:
        return False
    value = Decimal(quote.listing.wear)
    float_min, float_max = _bound(wear.get("float_min")), _bound(wear.get("float_max"))
    # The filter travels as a float: allow for its last digits, as Steam's own filter does.
    if float_min is not None and value < float_min - _FLOAT_SLACK:
        return False
    return float_max is None or value <= float_max + _FLOAT_SLACK


async def actions(request: web.Request) -> web.Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    query = _listing_query(request)
    if request.query.get("q") != "QueryListingsForItem" or query is None:
        return html_response(error_page("Invalid request."), status=400)
    state = _state(request)
    appid, name = query.get("appid"), query.get("strItemName")
    if type(appid) is not int or not isinstance(name, str):
        return _new_market_json(request, {"data": None})
    # A group id answers for every wear in the group; a grouped skin's own name answers nothing
    # (as on Steam, where name-keyed queries for grouped CS2 items find 0 listings).
    items = state.catalogue.group(appid, name)
    if not items:
        item = state.catalogue.find(appid, name)
        items = [item] if item is not None and item.group_id is None else []
    asked_price = query.get("price")
    price: dict[str, Any] = asked_price if isinstance(asked_price, dict) else {}
    currency = coerce_currency(price.get("eCurrency") if type(price.get("eCurrency")) is int else 1)
    properties = query.get("propertyFilters")
    wear: dict[str, Any] = {}
    if isinstance(properties, dict) and isinstance(properties.get("2"), dict):
        wear = properties["2"]
    rows: list[tuple[Item, Quote]] = []
    totals = 0
    for item in items:
        total, quotes = state.market.quotes(item, currency)
        totals += total
        rows += [(item, q) for q in quotes if _wanted(q, price, wear)]
    rows.sort(key=lambda row: (row[1].total, row[1].listing.listingid))
    filtered = bool(wear) or "unMin" in price or "unMax" in price
    asked_start = query.get("start")
    start: int = asked_start if type(asked_start) is int else 0
    body = payloads.query_listings(
        rows, total=len(rows) if filtered else totals, start=max(0, start), page_size=_NEW_PAGE
    )
    return _new_market_json(request, body)


async def orderbook(request: web.Request) -> web.Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    params = _query_params(request)
    item = _new_market_item(request, params)
    if request.query.get("q") != "Load" or item is None or params is None:
        return _new_market_json(request, {"data": {"success": False}})
    state = _state(request)
    # No currency is asked: the book comes in the caller's region's currency.
    book = build_order_book(state.market, item, coerce_currency(state.region_currency))
    return _new_market_json(request, payloads.orderbook(book))


def _new_market_item(request: web.Request, params: list[Any] | None) -> Item | None:
    if not params or len(params) < 2 or not isinstance(params[1], str):
        return None
    appid = params[0]
    if isinstance(appid, str) and appid.isdigit():
        appid = int(appid)
    if type(appid) is not int:
        return None
    return _state(request).catalogue.find(appid, params[1])


async def market_home(request: web.Request) -> web.Response:
    return html_response(new_market_page())


ENDPOINT_OF_HANDLER: dict[Handler, Endpoint] = {
    priceoverview: "priceoverview",
    listings_render: "listings_render",
    listings_page: "listings_page",
    histogram: "histogram",
    actions: "actions",
    orderbook: "orderbook",
}


def add_routes(app: web.Application) -> None:
    """Register the market routes (search has its own module)."""
    r = app.router
    r.add_get("/market/priceoverview/", priceoverview)
    r.add_get("/market/priceoverview", priceoverview)
    r.add_get("/market/listings/{appid}/{name}/render/", listings_render)
    r.add_get("/market/listings/{appid}/{name}/render", listings_render)
    r.add_get("/market/listings/{appid}/{name}", listings_page)
    r.add_get("/market/itemordershistogram", histogram)
    r.add_get("/market/itemordershistogram/", histogram)
    r.add_get("/market/actions", actions)
    r.add_get("/market/orderbook", orderbook)
    r.add_get("/market/", market_home)
