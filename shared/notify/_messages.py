"""What a notification says: a default a trader reads at a glance, or the owner's template.

The default names the item, the price in its currency against the threshold, a link to the
item's market page, and for a listing its float and pattern seed. Plain text: every service
shows it, the ones without formatting included. A template is ``str.format`` text over a fixed
set of plain names (``{item} fell to {price}``); attribute and index lookups are refused, so a
template cannot reach into the event's objects.
"""

from __future__ import annotations

import string
import unicodedata
from typing import Any
from urllib.parse import quote

from shared.alerts import Event

MARKET_URL = "https://steamcommunity.com/market/listings/{appid}/{name}"
TEMPLATE_MAX = 2000
#: The names a template may use, with what each holds.
TEMPLATE_FIELDS: dict[str, str] = {
    "title": "the default title (e.g. 'Price alert: AK-47 | Redline (Field-Tested)')",
    "message": "the default message body",
    "item": "the item's market hash name",
    "kind": "the event kind (price_at_or_below, new_listing, ...)",
    "price": "the price seen, in the item's currency (e.g. 9,50€)",
    "threshold": "the watch's threshold, in the item's currency",
    "url": "the item's Steam market page",
    "float": "a listing's float value (empty when none)",
    "seed": "a listing's pattern seed (empty when none)",
    "listing_id": "a listing's id (empty when none)",
    "task_id": "the watch's id",
    "event_id": "the event's id",
    "at": "when the check saw it (UTC, ISO 8601)",
}


class TemplateError(ValueError):
    """Raised when a template cannot be used; names the offending part."""


def check_template(template: str) -> str:
    """The template, if it uses only known names; :class:`TemplateError` otherwise."""
    if not template.strip():
        raise TemplateError("is empty; leave it out for the default message")
    if len(template) > TEMPLATE_MAX:
        raise TemplateError(f"is {len(template)} characters; at most {TEMPLATE_MAX}")
    for char in template:
        if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cs"):
            raise TemplateError(
                f"contains a control character (U+{ord(char):04X}); line breaks and tabs only"
            )
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise TemplateError(
            f"is not a valid template ({e}); write a literal brace as {{{{"
        ) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            raise TemplateError(
                f"uses {{{name}}}, which is not a known name; known: "
                + ", ".join(f"{{{n}}}" for n in TEMPLATE_FIELDS)
            )
        if spec or conversion:
            raise TemplateError(f"formats {{{name}}} with a spec or conversion; use {{{name}}}")
    return template


def market_url(event: Event) -> str:
    return MARKET_URL.format(
        appid=event.item.appid, name=quote(event.item.market_hash_name, safe="")
    )


def _text(data: dict[str, Any], name: str) -> str:
    """A money amount's display text, or its minor units when it had none."""
    shown = data.get(f"{name}_text")
    if shown:
        return str(shown)
    value = data.get(name)
    return "" if value is None else str(value)


def fields(event: Event) -> dict[str, str]:
    """The template names' values for one event (every name present, empty when n/a)."""
    data = event.data
    item = event.item.market_hash_name
    url = market_url(event)
    price = threshold = ""
    lines: list[str]
    if event.kind == "price_at_or_below":
        price, threshold = _text(data, "price"), _text(data, "max_price")
        title = f"Price alert: {item}"
        lines = [f"{item} is at {price} (your limit {threshold})."]
    elif event.kind == "new_listing":
        price, threshold = _text(data, "price"), _text(data, "max_price")
        title = f"New listing: {item}"
        lines = [f"{item} listed at {price} (your limit {threshold})."]
        extras = []
        if data.get("float_value"):
            extras.append(f"float {data['float_value']}")
        if data.get("paint_seed") is not None:
            extras.append(f"pattern seed {data['paint_seed']}")
        if extras:
            lines.append(", ".join(extras).capitalize() + ".")
    elif event.kind == "order_book":
        title = f"Order book alert: {item}"
        sides = []
        if data.get("max_lowest_sell") is not None:
            sides.append(
                f"lowest sell {_text(data, 'lowest_sell') or 'none'} "
                f"(limit {_text(data, 'max_lowest_sell')})"
            )
        if data.get("min_highest_buy") is not None:
            sides.append(
                f"highest buy {_text(data, 'highest_buy') or 'none'} "
                f"(at least {_text(data, 'min_highest_buy')})"
            )
        if data.get("sell_depth_count") is not None:
            sides.append(
                f"{data.get('sell_depth')} sell orders at or under "
                f"{_text(data, 'sell_depth_price')} (wanted {data['sell_depth_count']})"
            )
        if data.get("buy_depth_count") is not None:
            sides.append(
                f"{data.get('buy_depth')} buy orders at or over "
                f"{_text(data, 'buy_depth_price')} (wanted {data['buy_depth_count']})"
            )
        price = _text(data, "lowest_sell")
        threshold = _text(data, "max_lowest_sell") or _text(data, "min_highest_buy")
        lines = [f"{item}: " + "; ".join(sides) + "."]
    elif event.kind == "stalled":
        title = f"Watch stalled: {item}"
        lines = [
            f"Watch {event.task_id} failed {data.get('consecutive_errors', 'several')} checks in "
            f"a row and is retried with back-off. Last error: {data.get('error') or 'unknown'}."
        ]
    elif event.kind == "recovered":
        title = f"Watch recovered: {item}"
        lines = [f"Watch {event.task_id} is checking again."]
    elif event.kind == "failed":
        title = f"Watch gave up: {item}"
        lines = [
            f"Watch {event.task_id} stopped after {data.get('recovery_attempts', 'its')} "
            f"recovery attempts. Last error: {data.get('error') or 'unknown'}. "
            f"Resume it with `steamwatch tasks resume {event.task_id}`."
        ]
    else:  # subscription_paused
        title = f"Notifications paused: {data.get('destination', 'a destination')}"
        lines = [
            f"Deliveries to {data.get('destination', 'a destination')} are paused: "
            f"{data.get('reason', 'it refused them')}. Fix it, then `steamwatch notify resume "
            f"{data.get('subscription_id', '')}`."
        ]
    lines.append(url)
    return {
        "title": title,
        "message": "\n".join(lines),
        "item": item,
        "kind": event.kind,
        "price": price,
        "threshold": threshold,
        "url": url,
        "float": str(data.get("float_value") or ""),
        "seed": "" if data.get("paint_seed") is None else str(data["paint_seed"]),
        "listing_id": str(data.get("listing_id") or ""),
        "task_id": str(event.task_id),
        "event_id": event.id,
        "at": event.model_dump(mode="json", by_alias=True)["at"],
    }


def render(event: Event, template: str | None = None) -> tuple[str, str]:
    """The (title, body) a subscription sends for ``event``."""
    values = fields(event)
    if template is None:
        return values["title"], values["message"]
    return values["title"], template.format_map(values)
