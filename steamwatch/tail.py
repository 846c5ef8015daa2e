"""``steamwatch tail``: the event stream, live, one line an event (or JSON lines for scripts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio

from shared.alerts import EVENTS_STREAM, Event, read_events
from shared.runtime import async_client


def describe(event: Event) -> str:
    """One human line: when, what, which watch, and the prices that made it happen."""
    data = event.data
    texts = {k.removesuffix("_text"): v for k, v in data.items() if k.endswith("_text") and v}
    if event.kind == "price_at_or_below" and "price" in texts:
        detail = f"{texts['price']} <= {texts.get('max_price', '?')}"
    elif event.kind == "new_listing":
        detail = f"listing {data.get('listing_id')} at {texts.get('price', '?')}"
        if data.get("float_value"):
            detail += f" (float {data['float_value']})"
    elif event.kind == "order_book":
        detail = ", ".join(_book_reason(side, data, texts) for side in data.get("reasons") or [])
        detail = detail or ", ".join(f"{k} {v}" for k, v in texts.items())
    elif event.kind in ("stalled", "failed"):
        detail = str(data.get("error") or "")
    else:
        detail = ", ".join(f"{k} {v}" for k, v in texts.items())
    when = event.at.strftime("%H:%M:%S")
    return (
        f"{when} {event.kind:<17} task {event.task_id} ({event.owner}) "
        f"{event.item.market_hash_name}: {detail}".rstrip(": ")
    )


def _book_reason(side: str, data: dict[str, Any], texts: dict[str, Any]) -> str:
    """One test of an order-book event in words: "sell 5,72€ <= 6,00€", "3 sells <= 6,00€"."""
    if side == "lowest_sell":
        return f"sell {texts.get('lowest_sell', '?')} <= {texts.get('max_lowest_sell', '?')}"
    if side == "highest_buy":
        return f"buy {texts.get('highest_buy', '?')} >= {texts.get('min_highest_buy', '?')}"
    if side in ("sell_depth", "buy_depth"):
        which, rel = ("sells", "<=") if side == "sell_depth" else ("buys", ">=")
        return f"{data.get(side)} {which} {rel} {texts.get(side + '_price', '?')}"
    return side


async def latest_id(client: redis.asyncio.Redis, stream: str = EVENTS_STREAM) -> str:
    newest = await client.xrevrange(stream, count=1)
    if not newest:
        return "0-0"
    stream_id = newest[0][0]
    return stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)


async def follow(
    redis_url: str,
    *,
    emit: Callable[[str], None],
    from_start: bool = False,
    task_id: int | None = None,
    owner: str | None = None,
    as_json: bool = False,
    limit: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Print events as they arrive until ``limit`` were shown or ``stop`` is set."""
    client = async_client(redis_url)
    shown = 0
    try:
        since = "0-0" if from_start else await latest_id(client)
        while (stop is None or not stop.is_set()) and (limit is None or shown < limit):
            for stored in await read_events(client, since=since, count=100, block=1.0):
                since = stored.stream_id
                event = stored.event
                if task_id is not None and event.task_id != task_id:
                    continue
                if owner is not None and event.owner != owner:
                    continue
                emit(event.to_json() if as_json else describe(event))
                shown += 1
                if limit is not None and shown >= limit:
                    break
    finally:
        await client.aclose()
    return shown
