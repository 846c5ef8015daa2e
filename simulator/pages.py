"""The HTML Steam serves: item pages, error pages, and the HTML fragments inside JSON.

Clients scrape some of it (`Market_LoadOrderSpread( <item_nameid> );` on the classic
item page) and must recognise the rest as "not the JSON I asked for".
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from shared.steam import format_price
from simulator.catalogue import APP_NAMES, Item
from simulator.market import Quote
from simulator.orderbook import Level

_HEAD = (
    '<!DOCTYPE html>\n<html class=" responsive" lang="en">\n<head>\n'
    '\t<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
    "\t<title>{title}</title>\n"
    '\t<link href="https://community.fastly.steamstatic.com/public/shared/css/motiva_sans.css"'
    ' rel="stylesheet" type="text/css">\n</head>\n'
)


def item_url(item: Item) -> str:
    """The item page's path, quoted the way Steam links it."""
    return f"/market/listings/{item.appid}/{quote(item.market_hash_name, safe='')}"


def classic_listing_page(item: Item) -> str:
    """The pre-2026 item page; its script hands the item_nameid to the order-spread loader."""
    name = escape(item.market_hash_name)
    return (
        _HEAD.format(title=f"Steam Community Market :: Listings for {name}")
        + '<body class="responsive_page">\n<div id="BG_bottom">\n'
        + f'\t<div class="market_listing_nav"><a href="/market/search?appid={item.appid}">'
        + f"{escape(APP_NAMES[item.appid])}</a> &gt; {name}</div>\n"
        + '\t<div id="market_commodity_order_spread"></div>\n'
        + '\t<div id="searchResultsRows"></div>\n</div>\n'
        + '<script type="text/javascript">\n'
        + "\tvar g_rgAppContextData = {};\n"
        + f'\tvar g_strAppName = "{escape(APP_NAMES[item.appid])}";\n'
        + "\t$J( function() {\n"
        + f"\t\tMarket_LoadOrderSpread( {item.item_nameid} );\t// initial load\n"
        + "\t\tPollOnUserActionAfterInterval( 'orderspread', 5000, function() "
        + f"{{ Market_LoadOrderSpread( {item.item_nameid} ); }}, 60000 );\n"
        + "\t} );\n</script>\n</body>\n</html>\n"
    )


def new_market_page(title: str = "Steam Community Market") -> str:
    """The mid-2026 market: a client-rendered shell with no data and no item_nameid."""
    return (
        _HEAD.format(title=escape(title))
        + '<body class="v6 responsive_page">\n'
        + '<div id="application_root" data-market="new"></div>\n'
        + '<script type="text/javascript">window.SSR = window.SSR || {};'
        + ' window.SSR.renderContext = {"market": "v2"};</script>\n'
        + '<script src="https://community.fastly.steamstatic.com/public/javascript/applications'
        + '/community/market.js"></script>\n</body>\n</html>\n'
    )


def error_page(
    message: str = "There was an error processing your request. Please try again later.",
) -> str:
    """Steam's generic error page, served with 200 as often as with an error status."""
    return (
        _HEAD.format(title="Steam Community :: Error")
        + '<body class="responsive_page">\n<div id="BG_bottom">\n<div class="error_ctn">\n'
        + "\t<h2>Error</h2>\n\t<h3>An error was encountered while processing your request:</h3>\n"
        + f"\t<br>\n\t{escape(message)}\n</div>\n</div>\n</body>\n</html>\n"
    )


def listing_rows(quotes: Sequence[Quote]) -> str:
    """The `results_html` of a listings render: one row per listing, both prices shown."""
    if not quotes:
        return (
            '<div class="market_listing_table_message">'
            "There are no listings for this item.</div>\r\n"
        )
    rows = []
    for quote_ in quotes:
        lid = quote_.listing.listingid
        rows.append(
            f'<div class="market_listing_row market_recent_listing_row listing_{lid}"'
            f' id="listing_{lid}">\r\n'
            '\t<div class="market_listing_price_listings_block">\r\n'
            '\t\t<span class="market_listing_price market_listing_price_with_fee">\r\n'
            f"\t\t\t{format_price(quote_.total, quote_.currency)}\t\t</span>\r\n"
            '\t\t<span class="market_listing_price market_listing_price_without_fee">\r\n'
            f"\t\t\t{format_price(quote_.converted_price, quote_.currency)}\t\t</span>\r\n"
            "\t</div>\r\n</div>\r\n"
        )
    return "".join(rows)


def order_table(levels: tuple[Level, ...], currency: int, side: str, limit: int = 5) -> str:
    """The legacy histogram's HTML table; the last row folds the rest "or lower/more"."""
    if not levels:
        return ""
    rows = [
        '<table class="market_commodity_orders_table"><tr><th align="right">Price</th>'
        '<th align="right">Quantity</th></tr>'
    ]
    shown = levels[: limit + 1]
    for position, level in enumerate(shown):
        label = format_price(level.price, currency)
        quantity = level.quantity
        if position == limit:
            label += " or lower" if side == "buy" else " or more"
            quantity = sum(rest.quantity for rest in levels[limit:])
        rows.append(
            f'<tr><td align="right" class="">{label}</td><td align="right">{quantity}</td></tr>'
        )
    return "".join(rows) + "</table>"


def order_summary(levels: tuple[Level, ...], count: int, currency: int, side: str) -> str:
    """The one-line summary above each legacy histogram table."""
    if not levels:
        return (
            "There are no active listings for this item."
            if side == "sell"
            else "There are no active buy orders for this item."
        )
    promote = '<span class="market_commodity_orders_header_promote">{}</span>'
    price = promote.format(format_price(levels[0].price, currency))
    if side == "sell":
        return f"{promote.format(f'{count:,}')} for sale starting at {price}"
    return f"{promote.format(f'{count:,}')} requests to buy at {price} or lower"


def search_rows(items: list[Item], prices: list[int | None], currency: int) -> str:
    """The search render's `results_html`, or Steam's "no items" message when empty."""
    if not items:
        return (
            '\t<div class="market_listing_table_message">There were no items matching your'
            " search. Try again with different keywords.</div>\r\n"
        )
    rows = []
    for item, price in zip(items, prices, strict=True):
        shown = format_price(price, currency) if price is not None else ""
        rows.append(
            f'<a class="market_listing_row_link" href="https://steamcommunity.com{item_url(item)}">'
            f'<div class="market_listing_row market_recent_listing_row market_listing_searchresult"'
            f' data-appid="{item.appid}" data-hash-name="{escape(item.market_hash_name)}">'
            f'<span class="normal_price" data-price="{price or 0}">{shown}</span>'
            f'<span class="market_listing_item_name">{escape(item.market_hash_name)}</span>'
            "</div></a>\r\n"
        )
    return "".join(rows)
