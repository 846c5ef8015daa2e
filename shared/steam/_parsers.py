"""Turn Steam market response bodies into results, or into a typed `SteamError`.

Pure functions, one per endpoint, each `(body, *, currency, appid, market_hash_name)`.
Nothing but `SteamError` subclasses leaves them: a body that is HTML, `null`, not an
object, or has a field of the wrong type raises `BadResponse`; Steam's own "no such
item" answers raise `ItemNotFound`. Money is integer minor units; wear floats are
`Decimal` read from the wire text, never through `float`. Bool is never a number.

What each format rests on:

- Legacy endpoints (`priceoverview`, `listings/.../render`, `itemordershistogram`,
  `search/render`): the real captures in `tests/fixtures/steam_samples/` (SOURCES.md names
  each one's repository and commit).
- The new market's order book, `GET /market/orderbook?q=Load&qp=[appid,"hash name"]`: a real
  answer recorded from Steam on 2026-10-09 and published in a public repository's tests
  (`orderbook__wrapped_chf__public-capture.json`), and somespecialone/aiosteampy's parser
  (`rj["data"]["data"]`, fixed 2026-08-14 after Steam wrapped it twice)::

      {"data": {"success": true, "data": {"amtMaxBuyOrder": 525, "amtMinSellOrder": 572,
       "eCurrency": 4, "cBuyOrders": 71894, "cSellOrders": 1054,
       "rgCompactBuyOrders": [525, 11, 520, 3], "rgCompactSellOrders": [572, 1, 587, 1]}}}

  Amounts are minor units; the level arrays are flat `[price, quantity, price, quantity…]`,
  each quantity for its own level (not cumulative), sells rising and buys falling. The
  currency is the one Steam picks for the caller's region, which may not be the one asked.
- `GET /market/actions?q=QueryListingsForItem&qp=[{…}]`: aiosteampy's parser (2026-08-19, when
  the call moved from POST `routeAction` to GET `queryAction`) and field lists of clients that
  read it in production: ``{"data": {"more", "start", "total_count", "listings": [{"listingid",
  "unPrice", "unFee", "eCurrency", "strSubtotal", "description": {"market_hash_name"…},
  "asset": {"assetid", "asset_properties": [{"propertyid", "int_value" | "float_value"}]…}}],
  "facets"}}``. `data` is null when nothing matches. A query by a group id answers every item of
  the group (all five wears of a skin), so rows whose description names another item are left
  out. No complete real body has been published; no sample here pretends to be one.

Numbers may arrive as strings of digits; `amt*` may be null (an empty side). `success` is 1 or
true; false or 8 (EResult "no match") is an unknown item; anything else is `BadResponse`. In both
listing formats a listing whose price + fee is 0 (sold while the page was built) is left out,
and each listing keeps the currency its body states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NoReturn, TypeVar

from shared.steam._errors import BadResponse, ItemNotFound
from shared.steam._prices import currency_from_wallet_id, parse_price
from shared.steam._results import MAX_LEVELS, Level, Listing, Listings, OrderBook, PriceOverview

Route = Literal[
    "priceoverview",
    "listings",
    "itemordershistogram",
    "QueryListingsForItem",
    "orderbook",
    "search",
]

# Steam's EResult for "no such file/item", used by the new market for an unknown item.
_RESULT_NOT_FOUND = 8
PROPERTY_PATTERN_SEED = 1
PROPERTY_WEAR = 2
_PROPS = "asset_properties."

_DIGITS = re.compile(r"[0-9]+")
_GRAPH_SLACK = Decimal("0.001")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+")

R = TypeVar("R")


class _Malformed(Exception):
    """Raised inside a parser when a field has the wrong type or value; becomes BadResponse."""


def _fail(reason: str) -> NoReturn:
    raise _Malformed(reason)


def _show(value: Any) -> str:
    return f"{value!r:.60}"


def _parse(endpoint: Route, body: bytes | str, build: Callable[[dict[str, Any]], R]) -> R:
    """Decode `body` to a JSON object and run `build` on it; every failure becomes BadResponse."""
    text = _decode(endpoint, body)
    data = _load(endpoint, text)
    try:
        return build(data)
    except _Malformed as e:
        raise BadResponse.from_body(text, endpoint=endpoint, reason=str(e), is_html=False) from e
    except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
        # Safety net: the field helpers should catch everything first, but a shape nobody
        # foresaw must still surface as BadResponse, not crash a worker with a KeyError.
        reason = f"unexpected {type(e).__name__}: {e}"
        raise BadResponse.from_body(text, endpoint=endpoint, reason=reason, is_html=False) from e


def _decode(endpoint: Route, body: bytes | str) -> str:
    if isinstance(body, str):
        return body.lstrip("\ufeff")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadResponse.from_body(body, endpoint=endpoint, reason="body is not UTF-8") from e


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {name}")


def _load(endpoint: Route, text: str) -> dict[str, Any]:
    stripped = text.strip()
    if not stripped:
        raise BadResponse.from_body(text, endpoint=endpoint, reason="empty body", is_html=False)
    if stripped.startswith("<"):
        raise BadResponse.from_body(
            text, endpoint=endpoint, reason="HTML page instead of JSON", is_html=True
        )
    try:
        data = json.loads(stripped, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        # `<html` is only a verdict when JSON failed: valid JSON may carry HTML in a string.
        if "<html" in stripped.lower():
            reason = "HTML page instead of JSON"
            raise BadResponse.from_body(text, endpoint=endpoint, reason=reason, is_html=True) from e
        reason = f"malformed JSON: {e}"
        raise BadResponse.from_body(text, endpoint=endpoint, reason=reason, is_html=False) from e
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        reason = f"expected a JSON object, got {kind}"
        raise BadResponse.from_body(text, endpoint=endpoint, reason=reason, is_html=False)
    return data


def _require(data: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in data:
        _fail(f"missing field {where}{key}")
    return data[key]


def _count(value: Any, field: str) -> int:
    """A non-negative integer sent as a JSON number or a string of digits."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value)
    _fail(f"{field} must be a non-negative integer, got {_show(value)}")


def _opt_count(value: Any, field: str) -> int | None:
    return None if value is None else _count(value, field)


def _id(value: Any, field: str) -> str:
    return str(_count(value, field))


def _is_ok(success: Any) -> bool:
    return success is True or (type(success) is int and success == 1)


def _currency(value: Any, field: str) -> int:
    """A currency id, plain (3) or as a wallet id (2003), number or string."""
    if type(value) is not int and not isinstance(value, str):
        _fail(f"{field} must be a currency id, got {_show(value)}")
    try:
        return currency_from_wallet_id(value)
    except ValueError as e:
        raise _Malformed(f"{field}: {e}") from e


def _price_text(value: Any, field: str, currency: int) -> int | None:
    """A localized price string such as `1,66€`, or null / absent for no data."""
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(f"{field} must be a price string, got {_show(value)}")
    try:
        minor = parse_price(value, currency)
    except ValueError as e:
        raise _Malformed(f"{field}: {e}") from e
    if minor < 0:
        _fail(f"{field} is negative: {_show(value)}")
    return minor


def _volume(value: Any) -> int | None:
    """Units sold in 24 hours; Steam groups thousands with commas (`5,638`)."""
    if value is None or type(value) is int:
        return _opt_count(value, "volume")
    if isinstance(value, str) and _GROUPED.fullmatch(value.strip()):
        return int(value.replace(",", ""))
    _fail(f"volume must be a count, got {_show(value)}")


def _wear(value: Any) -> Decimal:
    """A CS2 wear float in [0, 1], kept exact from the wire text."""
    if isinstance(value, str):
        try:
            wear = Decimal(value.strip())
        except InvalidOperation:
            _fail(f"asset_properties.float_value is not a number: {_show(value)}")
    elif isinstance(value, Decimal) or type(value) is int:
        wear = Decimal(value)
    else:
        _fail(f"asset_properties.float_value must be a number, got {_show(value)}")
    if not wear.is_finite() or not 0 <= wear <= 1:
        _fail(f"asset_properties.float_value out of range: {_show(value)}")
    return wear


def _properties(props: Any) -> tuple[Decimal | None, int | None]:
    """Wear and pattern seed from CS2 `asset_properties`; unknown property ids are skipped."""
    if props is None:
        return None, None
    if not isinstance(props, list):
        _fail(f"asset_properties must be a list, got {_show(props)}")
    wear: Decimal | None = None
    seed: int | None = None
    for prop in props:
        if not isinstance(prop, dict):
            _fail(f"asset_properties entry must be an object, got {_show(prop)}")
        pid = _count(_require(prop, "propertyid", _PROPS), _PROPS + "propertyid")
        if pid == PROPERTY_PATTERN_SEED:
            seed = _count(_require(prop, "int_value", _PROPS), _PROPS + "int_value")
        elif pid == PROPERTY_WEAR:
            wear = _wear(_require(prop, "float_value", _PROPS))
    return wear, seed


def _object(value: Any, field: str) -> dict[str, Any]:
    """A JSON object, where PHP-style `[]` (and absence) means an empty one."""
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        _fail(f"{field} must be an object, got {_show(value)}")
    return value


# --- legacy endpoints -------------------------------------------------------------------


def parse_search_results(body: bytes | str, *, appid: int) -> list[tuple[str, str | None]]:
    """``(market_hash_name, market bucket group id or None)`` of every result of
    `/market/search/render/?norender=1` in ``appid``, in Steam's order (an empty page is [])."""

    def build(data: dict[str, Any]) -> list[tuple[str, str | None]]:
        if not _is_ok(_require(data, "success")):
            _fail(f"success is {_show(data['success'])}")
        results = data.get("results")
        if results is None or results == []:
            return []
        if not isinstance(results, list):
            _fail(f"results must be a list, got {_show(results)}")
        found: list[tuple[str, str | None]] = []
        for entry in results:
            if not isinstance(entry, dict):
                _fail(f"a result must be an object, got {_show(entry)}")
            described = _object(entry.get("asset_description"), "asset_description")
            if described.get("appid", appid) != appid:
                continue
            name = entry.get("hash_name") or described.get("market_hash_name")
            if not isinstance(name, str) or not name:
                _fail(f"a result has no hash_name: {_show(entry)}")
            group = described.get("market_bucket_group_id")
            found.append((name, group if isinstance(group, str) and group else None))
        return found

    return _parse("search", body, build)


def parse_search_names(body: bytes | str, *, appid: int) -> list[str]:
    """The ``market_hash_name`` of every result of `/market/search/render/?norender=1`."""
    return [name for name, _ in parse_search_results(body, appid=appid)]


def parse_priceoverview(
    body: bytes | str, *, currency: int, appid: int, market_hash_name: str
) -> PriceOverview:
    """Parse `/market/priceoverview`; `{"success":false}` is an unknown item."""

    def build(data: dict[str, Any]) -> PriceOverview:
        success = _require(data, "success")
        if success is False:
            raise ItemNotFound(
                endpoint="priceoverview", appid=appid, market_hash_name=market_hash_name
            )
        if not _is_ok(success):
            _fail(f"success is {_show(success)}")
        return PriceOverview(
            currency=currency,
            lowest_price=_price_text(data.get("lowest_price"), "lowest_price", currency),
            median_price=_price_text(data.get("median_price"), "median_price", currency),
            volume=_volume(data.get("volume")),
        )

    return _parse("priceoverview", body, build)


def parse_listings_render(
    body: bytes | str, *, currency: int, appid: int, market_hash_name: str
) -> Listings:
    """Parse `/market/listings/{appid}/{name}/render?format=json`, in Steam's order.

    Steam answers an unknown item here, as on priceoverview, with `{"success":false}`.
    """

    def build(data: dict[str, Any]) -> Listings:
        success = _require(data, "success")
        if success is False:
            raise ItemNotFound(endpoint="listings", appid=appid, market_hash_name=market_hash_name)
        if not _is_ok(success):
            _fail(f"success is {_show(success)}")
        total_count = _count(_require(data, "total_count"), "total_count")
        infos = _object(_require(data, "listinginfo"), "listinginfo")
        assets = _object(data.get("assets"), "assets")
        found = (_render_listing(key, info, assets, appid) for key, info in infos.items())
        return Listings(
            total_count=total_count, listings=tuple(item for item in found if item is not None)
        )

    return _parse("listings", body, build)


def _render_listing(key: str, info: Any, assets: dict[str, Any], appid: int) -> Listing | None:
    if not isinstance(info, dict):
        _fail(f"listinginfo[{key}] must be an object, got {_show(info)}")
    listing_id = _id(info.get("listingid", key), "listingid")
    # The converted_* fields are in the currency we asked for; the plain ones in the seller's.
    prefix = "converted_" if info.get("converted_price") is not None else ""
    price = _count(_require(info, prefix + "price"), prefix + "price")
    fee = _count(_require(info, prefix + "fee"), prefix + "fee")
    listing_currency = _currency(_require(info, prefix + "currencyid"), prefix + "currencyid")
    if price + fee == 0:
        return None  # a listing sold or withdrawn while the page rendered; nobody can buy it
    asset = _object(info.get("asset"), "asset")
    if not asset:
        return Listing(listing_id=listing_id, price=price, fee=fee, currency=listing_currency)
    asset_id = _id(_require(asset, "id", "asset."), "asset.id")
    props = asset.get("asset_properties")
    if props is None:
        by_context = _object(assets.get(str(asset.get("appid", appid))), "assets[appid]")
        by_asset = _object(by_context.get(str(asset.get("contextid"))), "assets[appid][context]")
        props = _object(by_asset.get(asset_id), "assets entry").get("asset_properties")
    wear, seed = _properties(props)
    return Listing(
        listing_id=listing_id,
        price=price,
        fee=fee,
        currency=listing_currency,
        asset_id=asset_id,
        float_value=wear,
        paint_seed=seed,
    )


def parse_orders_histogram(
    body: bytes | str, *, currency: int, appid: int, market_hash_name: str
) -> OrderBook:
    """Parse `/market/itemordershistogram`, both the `norender=1` and the HTML-table form."""

    def build(data: dict[str, Any]) -> OrderBook:
        success = _require(data, "success")
        if not _is_ok(success):
            _fail(f"success is {_show(success)}")
        return OrderBook(
            currency=currency,
            highest_buy=_opt_count(_require(data, "highest_buy_order"), "highest_buy_order"),
            lowest_sell=_opt_count(_require(data, "lowest_sell_order"), "lowest_sell_order"),
            buy_count=_order_count(data, "buy_order_count", "buy_order_graph"),
            sell_count=_order_count(data, "sell_order_count", "sell_order_graph"),
            buys=_graph_levels(data.get("buy_order_graph"), "buy_order_graph"),
            sells=_graph_levels(data.get("sell_order_graph"), "sell_order_graph"),
        )

    return _parse("itemordershistogram", body, build)


def _graph_levels(graph: Any, field: str) -> tuple[Level, ...]:
    """Per-level quantities from the histogram's cumulative `[price, total so far, label]`."""
    if graph is None:
        return ()
    if not isinstance(graph, list):
        _fail(f"{field} must be a list, got {_show(graph)}")
    levels: list[Level] = []
    running = 0
    for point in graph[:MAX_LEVELS]:
        if not isinstance(point, list) or len(point) < 2:
            _fail(f"{field} point must be [price, quantity, label], got {_show(point)}")
        price = _graph_price(point[0], field)
        total = _count(point[1], f"{field} quantity")
        if total < running:
            _fail(f"{field} quantities must add up, got {total} after {running}")
        levels.append((price, total - running))
        running = total
    return tuple(levels)


def _graph_price(value: Any, field: str) -> int:
    """A graph price in whole units (`0.47`, read exactly) as minor units.

    An encoder printing floats at 17 digits writes 0.29 as `0.28999999999999998`: a value
    within a thousandth of a cent of a whole cent is that cent; anything further is refused.
    """
    if type(value) is int or isinstance(value, Decimal):
        minor = Decimal(value) * 100
        if minor.is_finite() and minor >= 0:
            whole = minor.to_integral_value()
            if abs(minor - whole) < _GRAPH_SLACK:
                return int(whole)
    _fail(f"{field} price must be an amount with at most 2 decimals, got {_show(value)}")


def _order_count(data: dict[str, Any], count_key: str, graph_key: str) -> int:
    """The explicit count, or else the last cumulative quantity of the depth graph."""
    if data.get(count_key) is not None:
        return _count(data[count_key], count_key)
    graph = _require(data, graph_key)
    if not isinstance(graph, list):
        _fail(f"{graph_key} must be a list, got {_show(graph)}")
    if not graph:
        return 0
    last = graph[-1]
    if not isinstance(last, list) or len(last) < 2:
        _fail(f"{graph_key} point must be [price, quantity, label], got {_show(last)}")
    return _count(last[1], f"{graph_key} quantity")


# --- new market (see the module docstring for what each format rests on) -------------------


def _new_market_payload(
    data: dict[str, Any], endpoint: Route, appid: int, market_hash_name: str, *, holds: str
) -> dict[str, Any] | None:
    """The object holding ``holds`` inside Steam's `{"data": {"success", "data": {…}}}` wrapping.

    Each level's `success`, where there is one, is checked on the way in; None when the answer
    says there is nothing (`"data": null`).
    """
    payload: Any = data
    where = ""
    for _ in range(3):
        if "success" in payload:
            _new_market_success(payload, endpoint, appid, market_hash_name)
        if holds in payload:
            return dict(payload)
        if "data" not in payload:
            _fail(f"missing field {where}data (or {where}{holds})")
        payload = payload["data"]
        where += "data."
        if payload is None or payload == []:
            return None
        if not isinstance(payload, dict):
            _fail(f"{where.rstrip('.')} must be an object, got {_show(payload)}")
    _fail(f"missing field {holds}")


def _new_market_success(
    data: dict[str, Any], endpoint: Route, appid: int, market_hash_name: str
) -> None:
    success = data["success"]
    if success is False or (type(success) is int and success == _RESULT_NOT_FOUND):
        raise ItemNotFound(endpoint=endpoint, appid=appid, market_hash_name=market_hash_name)
    if not _is_ok(success):
        _fail(f"success is {_show(success)}")


def parse_query_listings(
    body: bytes | str, *, currency: int, appid: int, market_hash_name: str
) -> Listings:
    """Parse the new market's `/market/actions?q=QueryListingsForItem`.

    Rows about another item of the same group (another wear) are left out; `total_count` is
    Steam's, for everything the query matched.
    """

    def build(data: dict[str, Any]) -> Listings:
        payload = _new_market_payload(
            data, "QueryListingsForItem", appid, market_hash_name, holds="listings"
        )
        if payload is None:
            return Listings(total_count=0, listings=())
        total_count = _count(payload.get("total_count", 0), "total_count")
        entries = payload["listings"]
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            _fail(f"listings must be a list, got {_show(entries)}")
        found = (_query_listing(entry, market_hash_name) for entry in entries)
        return Listings(
            total_count=total_count, listings=tuple(item for item in found if item is not None)
        )

    return _parse("QueryListingsForItem", body, build)


def _query_listing(entry: Any, market_hash_name: str) -> Listing | None:
    if not isinstance(entry, dict):
        _fail(f"listing must be an object, got {_show(entry)}")
    listing_id = _id(_require(entry, "listingid"), "listingid")
    price = _count(_require(entry, "unPrice"), "unPrice")
    fee = _count(_require(entry, "unFee"), "unFee")
    listing_currency = _currency(_require(entry, "eCurrency"), "eCurrency")
    described = _object(entry.get("description"), "description")
    name = described.get("market_hash_name")
    if isinstance(name, str) and name and name != market_hash_name:
        return None  # another item of the group the query asked about
    if price + fee == 0:
        return None  # same reading as the legacy render: not buyable
    asset = _object(entry.get("asset"), "asset")
    if not asset:
        return Listing(listing_id=listing_id, price=price, fee=fee, currency=listing_currency)
    asset_key = "assetid" if "assetid" in asset else "id"
    asset_id = _id(_require(asset, asset_key, "asset."), f"asset.{asset_key}")
    wear, seed = _properties(asset.get("asset_properties"))
    return Listing(
        listing_id=listing_id,
        price=price,
        fee=fee,
        currency=listing_currency,
        asset_id=asset_id,
        float_value=wear,
        paint_seed=seed,
    )


def parse_orderbook(
    body: bytes | str, *, currency: int, appid: int, market_hash_name: str
) -> OrderBook:
    """Parse the new market's `/market/orderbook?q=Load`, wrapped as Steam wraps it."""

    def build(data: dict[str, Any]) -> OrderBook:
        book = _new_market_payload(data, "orderbook", appid, market_hash_name, holds="eCurrency")
        if book is None:
            _fail("data is null: no order book in the answer")
        return OrderBook(
            currency=_currency(book["eCurrency"], "eCurrency"),
            highest_buy=_opt_count(_require(book, "amtMaxBuyOrder"), "amtMaxBuyOrder"),
            lowest_sell=_opt_count(_require(book, "amtMinSellOrder"), "amtMinSellOrder"),
            buy_count=_count(_require(book, "cBuyOrders"), "cBuyOrders"),
            sell_count=_count(_require(book, "cSellOrders"), "cSellOrders"),
            buys=_compact_levels(book.get("rgCompactBuyOrders"), "rgCompactBuyOrders"),
            sells=_compact_levels(book.get("rgCompactSellOrders"), "rgCompactSellOrders"),
        )

    return _parse("orderbook", body, build)


def _compact_levels(values: Any, field: str) -> tuple[Level, ...]:
    """Pairs from a flat `[price, quantity, price, quantity…]` array (absent: no levels)."""
    if values is None:
        return ()
    if not isinstance(values, list):
        _fail(f"{field} must be a list, got {_show(values)}")
    if len(values) % 2:
        _fail(f"{field} must hold price, quantity pairs, got {len(values)} numbers")
    pairs = values[: 2 * MAX_LEVELS]
    return tuple(
        (_count(pairs[i], f"{field} price"), _count(pairs[i + 1], f"{field} quantity"))
        for i in range(0, len(pairs), 2)
    )
