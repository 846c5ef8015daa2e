"""How `steamwatch tasks` shows watches: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from shared.db import PriceSnapshot, Task
from shared.steam import PriceError, currency_code, format_price

_COLUMNS = tuple(column.key for column in Task.__table__.columns)
MONEY_COLUMNS = ("lowest_price", "median_price", "highest_buy", "lowest_sell")


def console() -> Console:
    # Item names are data: "[Holo]" must not be read as markup, nor ":x:" as an emoji.
    return Console(markup=False, emoji=False, highlight=False)


def plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def task_json(task: Task) -> dict[str, Any]:
    data = {name: plain(getattr(task, name)) for name in _COLUMNS}
    try:
        data["currency_code"] = currency_code(task.currency)
    except PriceError:
        data["currency_code"] = None
    return data


def check_json(check: PriceSnapshot) -> dict[str, Any]:
    data = {name: plain(getattr(check, name)) for name in PriceSnapshot.__table__.columns.keys()}
    for name in MONEY_COLUMNS:
        data[f"{name}_text"] = None if data[name] is None else money(data[name], check.currency)
    return data


def money(minor: Any, currency: int) -> str:
    if minor is None:
        return "-"
    try:
        return format_price(minor, currency)
    except (PriceError, TypeError, ValueError):
        return str(minor)


def watching(task: Task) -> str:
    """The conditions in words: "<= 12,50€", "sell <= 1,00€ or buy >= 0,80€"."""
    given = task.conditions or {}
    parts = []
    if "max_price" in given:
        parts.append(f"<= {money(given['max_price'], task.currency)}")
    if "float_min" in given or "float_max" in given:
        parts.append(f"float {given.get('float_min', 0)}-{given.get('float_max', 1)}")
    if "max_lowest_sell" in given:
        parts.append(f"sell <= {money(given['max_lowest_sell'], task.currency)}")
    if "min_highest_buy" in given:
        parts.append(f"buy >= {money(given['min_highest_buy'], task.currency)}")
    if "sell_depth_count" in given and "sell_depth_price" in given:
        price = money(given["sell_depth_price"], task.currency)
        parts.append(f">= {given['sell_depth_count']} sells <= {price}")
    if "buy_depth_count" in given and "buy_depth_price" in given:
        price = money(given["buy_depth_price"], task.currency)
        parts.append(f">= {given['buy_depth_count']} buys >= {price}")
    if given.get("match") == "all" and len(parts) > 1:
        return " and ".join(parts)
    if task.kind == "order_book" and len(parts) > 1:
        return " or ".join(parts)
    return ", ".join(parts) or json.dumps(given)


def duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def when(moment: datetime | None, *, short: bool = False) -> str:
    shape = "%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S"
    return "-" if moment is None else moment.astimezone(UTC).strftime(shape)


def or_dash(value: object) -> str:
    return "-" if value is None else str(value)
