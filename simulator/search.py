"""The market search (`/market/search/render/`): items matching a query, most traded first.

Steam answers `success: true` even when the page is past the end (then `results_html`
carries a "no items" message), as the captured samples show; `norender=1` gives a
`results` list instead of HTML.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.steam import format_price
from simulator.catalogue import APP_NAMES, Item
from simulator.endpoints import int_param, legacy_response, page_bounds, switched_off
from simulator.money import coerce_currency
from simulator.pages import search_rows
from simulator.payloads import APP_ICON, ICON_URL, class_id, name_color
from simulator.state import STATE


def search_render(
    items: list[Item],
    summaries: list[tuple[int, int | None]],
    currency: int,
    *,
    start: int,
    count: int,
    total: int,
    query: str,
    norender: bool,
) -> dict[str, Any]:
    """The search body for one page of items with their (listing count, lowest price)."""
    body: dict[str, Any] = {
        "success": True,
        "start": start,
        "pagesize": count,
        "total_count": total,
        "searchdata": {
            "query": query,
            "search_descriptions": False,
            "total_count": total,
            "pagesize": count,
            "prefix": "searchResults",
            "class_prefix": "market",
        },
    }
    if not norender:
        prices = [lowest for _, lowest in summaries]
        body["results_html"] = search_rows(items, prices, currency)
        return body
    results = []
    for item, (listings, lowest) in zip(items, summaries, strict=True):
        text = format_price(lowest, currency) if lowest is not None else ""
        results.append(
            {
                "name": item.market_hash_name,
                "hash_name": item.market_hash_name,
                "sell_listings": listings,
                "sell_price": lowest or 0,
                "sell_price_text": text,
                "app_icon": APP_ICON.format(item.appid),
                "app_name": APP_NAMES[item.appid],
                "asset_description": {
                    "appid": item.appid,
                    "classid": class_id(item),
                    "instanceid": "0",
                    "background_color": "",
                    "icon_url": ICON_URL,
                    "tradable": 1,
                    "name": item.market_hash_name,
                    "name_color": name_color(item.market_hash_name, item.appid),
                    "market_name": item.market_hash_name,
                    "market_hash_name": item.market_hash_name,
                    "commodity": 0 if item.has_float else 1,
                    **_group_of(item),
                },
                "sale_price_text": text,
            }
        )
    body["results"] = results
    return body


def _group_of(item: Item) -> dict[str, str]:
    """The new market's group of a skin's wears, as search results name it."""
    if item.group_id is None:
        return {}
    return {"market_bucket_group_id": item.group_id, "market_bucket_group_name": item.group_name}


async def search(request: web.Request) -> web.Response:
    off = switched_off(request)
    if off is not None:
        return off
    state = request.app[STATE]
    query = request.query.get("query", "").strip()
    words = query.casefold().split()  # like Steam: every word, anywhere in the name
    appid = int_param(request, "appid")
    currency = coerce_currency(int_param(request, "currency"))
    start, count = page_bounds(int_param(request, "start"), int_param(request, "count"))
    found = [
        it
        for it in state.catalogue
        if (appid is None or it.appid == appid)
        and all(w in it.market_hash_name.casefold() for w in words)
    ]
    found.sort(key=lambda it: (-it.daily_volume, it.market_hash_name))  # "popular" first
    page = found[start : start + count]
    summaries = [state.market.summary(it, currency) for it in page]
    body = search_render(
        page,
        summaries,
        currency,
        start=start,
        count=count,
        total=len(found),
        query=query,
        norender=request.query.get("norender") == "1",
    )
    return legacy_response(body)
