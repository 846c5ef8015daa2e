"""What the API reads and writes. Request bodies carry the fields the CLI's options name and
are checked by the same code (:func:`shared.tasks.parse_task`,
:func:`shared.notify.parse_subscription`); these models only shape the JSON and the document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from shared.db import SUBSCRIPTION_STATUSES, TASK_STATUSES, WATCH_KINDS

Scalar = StrictStr | StrictInt | StrictFloat

_FIELD_HELP = {
    "owner": "Whose watch; an owner's token may leave it out (its own), an admin's must give it.",
    "appid": "Steam app id: 730 (CS2), 570 (Dota 2), 440 (TF2).",
    "item": "Market hash name, e.g. 'AK-47 | Redline (Field-Tested)'.",
    "currency": "USD, EUR, GBP, ... or Steam's currency id (default USD).",
    "kind": "lowest_price, new_listings or order_book.",
    "interval": "Seconds between checks, or 90s, 5m, 2h, 1d (the minimum is configured).",
    "max_price": "lowest_price, new_listings: alert at or under this price: 12.5 or '12,50€'.",
    "float_min": "new_listings: only listings with a float of at least this.",
    "float_max": "new_listings: only listings with a float of at most this.",
    "max_lowest_sell": "order_book: alert when the lowest sell is at or under this.",
    "min_highest_buy": "order_book: alert when the highest buy is at or over this.",
    "sell_depth_count": "order_book: alert when at least this many sell orders are at or under "
    "sell_depth_price.",
    "sell_depth_price": "order_book: the price for sell_depth_count.",
    "buy_depth_count": "order_book: alert when at least this many buy orders are at or over "
    "buy_depth_price.",
    "buy_depth_price": "order_book: the price for buy_depth_count.",
    "match": "order_book with several tests: any (default) or all.",
}


class WatchChange(BaseModel):
    """A change: a new interval, and/or new conditions (replacing the old ones whole)."""

    model_config = ConfigDict(extra="forbid")

    interval: Scalar | None = Field(default=None, description=_FIELD_HELP["interval"])
    max_price: Scalar | None = Field(default=None, description=_FIELD_HELP["max_price"])
    float_min: Scalar | None = Field(default=None, description=_FIELD_HELP["float_min"])
    float_max: Scalar | None = Field(default=None, description=_FIELD_HELP["float_max"])
    max_lowest_sell: Scalar | None = Field(default=None, description=_FIELD_HELP["max_lowest_sell"])
    min_highest_buy: Scalar | None = Field(default=None, description=_FIELD_HELP["min_highest_buy"])
    sell_depth_count: Scalar | None = Field(
        default=None, description=_FIELD_HELP["sell_depth_count"]
    )
    sell_depth_price: Scalar | None = Field(
        default=None, description=_FIELD_HELP["sell_depth_price"]
    )
    buy_depth_count: Scalar | None = Field(default=None, description=_FIELD_HELP["buy_depth_count"])
    buy_depth_price: Scalar | None = Field(default=None, description=_FIELD_HELP["buy_depth_price"])
    match: Scalar | None = Field(default=None, description=_FIELD_HELP["match"])


class WatchIn(WatchChange):
    """A new watch: the CLI's ``tasks add`` options as JSON (text or numbers), checked by
    :func:`shared.tasks.parse_task`; the fields are :data:`TASK_FIELDS` and
    :data:`CONDITION_FIELDS` (a test holds them equal)."""

    owner: Scalar | None = Field(default=None, description=_FIELD_HELP["owner"])
    appid: Scalar = Field(description=_FIELD_HELP["appid"])
    item: Scalar = Field(description=_FIELD_HELP["item"])
    currency: Scalar | None = Field(default=None, description=_FIELD_HELP["currency"])
    kind: Scalar = Field(description=_FIELD_HELP["kind"])
    interval: Scalar = Field(description=_FIELD_HELP["interval"])


class Watch(BaseModel):
    id: int
    owner: str
    appid: int
    item: str
    currency: int
    currency_code: str | None
    kind: Literal[WATCH_KINDS]  # type: ignore[valid-type]
    conditions: dict[str, Any] = Field(description="As stored: prices in minor units.")
    interval: int
    status: Literal[TASK_STATUSES]  # type: ignore[valid-type]
    is_active: bool
    next_check: datetime
    consecutive_errors: int
    last_error: str | None
    last_checked_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WatchPage(BaseModel):
    items: list[Watch]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    watches: list[dict[str, Any]] = Field(description="Watches as for POST /v1/watches.")
    skip_invalid: StrictBool = Field(
        default=False, description="Import the good ones, list the bad."
    )


class SkippedRow(BaseModel):
    index: int
    error: str


class ImportOut(BaseModel):
    imported: int
    ids: list[int]
    skipped: list[SkippedRow]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: StrictStr | None = Field(default=None, description="As for watches.")
    url: StrictStr = Field(
        min_length=1, description="An Apprise URL: tgram://, discord://, json://, ..."
    )
    kinds: StrictStr | list[StrictStr] = Field(
        default="price_at_or_below,new_listing,order_book,failed,subscription_paused",
        description="Event kinds, a list or comma-separated, or 'all'.",
    )
    watch_id: StrictInt | None = Field(default=None, description="Only this watch's events.")
    template: StrictStr | None = Field(default=None, description="Message text with {names}.")


class Subscription(BaseModel):
    id: int
    owner: str
    watch_id: int | None
    destination: str = Field(description="The URL masked: tokens never leave the database.")
    scheme: str
    kinds: list[str]
    template: str | None
    status: Literal[SUBSCRIPTION_STATUSES]  # type: ignore[valid-type]
    paused_reason: str | None
    created_at: datetime


class SubscriptionPage(BaseModel):
    items: list[Subscription]
    next_cursor: str | None


class EventOut(BaseModel):
    stream_id: str
    event: dict[str, Any] = Field(description="The event as on the stream (README: Events).")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Older events: pass as `cursor`; null: none.")


class HistoryPoint(BaseModel):
    at: datetime
    checks: int
    first: int | None
    min: int | None
    max: int | None
    last: int | None
    volume: int | None


class History(BaseModel):
    watch_id: int
    currency: int
    currency_code: str | None
    price: str = Field(description="Which price: lowest_price, or lowest_sell for an order book.")
    resolution: str
    since: datetime
    until: datetime
    points: list[HistoryPoint]


class Health(BaseModel):
    status: str
    service: str
    checks: dict[str, str] = Field(default_factory=dict)
