"""The message a trader reads at a glance: item, price in its currency, limit, link, float."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.alerts import Event
from shared.notify import render
from shared.steam import Item

REDLINE = Item(730, "AK-47 | Redline (Field-Tested)", 3)


def _event(kind: Any, **data: Any) -> Event:
    return Event(
        id=f"7:lease:{kind}",
        kind=kind,
        task_id=7,
        owner="alice",
        item=REDLINE,
        at=datetime(2026, 12, 3, 10, 32, 5, tzinfo=UTC),
        data=data,
    )


def test_a_price_alert_names_item_price_limit_and_links_the_market_page() -> None:
    event = _event(
        "price_at_or_below", price=950, price_text="9,50€", max_price=1000, max_price_text="10,--€"
    )
    title, body = render(event)
    assert title == "Price alert: AK-47 | Redline (Field-Tested)"
    assert "is at 9,50€ (your limit 10,--€)" in body
    assert body.endswith(
        "https://steamcommunity.com/market/listings/730/AK-47%20%7C%20Redline%20%28Field-Tested%29"
    )


def test_a_listing_shows_its_float_and_pattern_seed() -> None:
    event = _event(
        "new_listing",
        listing_id="123",
        price=1234,
        price_text="12,34€",
        max_price=1500,
        max_price_text="15,--€",
        float_value="0.0712",
        paint_seed=661,
    )
    _, body = render(event)
    assert "listed at 12,34€ (your limit 15,--€)" in body
    assert "Float 0.0712, pattern seed 661." in body


def test_an_order_book_alert_names_the_sides_watched() -> None:
    event = _event(
        "order_book",
        lowest_sell=900,
        lowest_sell_text="9,--€",
        max_lowest_sell=1000,
        max_lowest_sell_text="10,--€",
        highest_buy=None,
        min_highest_buy=None,
    )
    _, body = render(event)
    assert "lowest sell 9,--€ (limit 10,--€)" in body
    assert "highest buy" not in body


def test_a_failed_watch_says_how_to_resume_it() -> None:
    _, body = render(_event("failed", error="Steam answered 500", recovery_attempts=10))
    assert "stopped after 10 recovery attempts" in body
    assert "steamwatch tasks resume 7" in body


def test_a_template_fills_the_known_names() -> None:
    event = _event("price_at_or_below", price=950, price_text="9,50€", max_price=1000)
    title, body = render(event, "{item}: {price} <= {threshold} [{event_id}] {at}")
    assert body == (
        "AK-47 | Redline (Field-Tested): 9,50€ <= 1000 [7:lease:price_at_or_below] "
        "2026-12-03T10:32:05.000000Z"
    )
    assert title.startswith("Price alert")
