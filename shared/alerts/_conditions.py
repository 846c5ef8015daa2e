"""What a watch waits for, validated once, and its pure evaluation against one check's result.

Evaluation is a function of (condition, result, previous state): the caller carries the small
JSON-safe state between checks, so the edge rule ("alert when it becomes true") survives
restarts and redeliveries without anything here remembering.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypedDict

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.db import WatchKind
from shared.steam import (
    Listing,
    Listings,
    OrderBook,
    PriceError,
    PriceOverview,
    Result,
    format_price,
    parse_price,
)

SignalKind = Literal["price_at_or_below", "new_listing", "order_book"]

# strict: a bool or 12.0 is a mistake, not a price; strings are converted before validation.
Price = Annotated[int, Field(gt=0, strict=True)]
FloatBound = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be a whole number, got true/false")
    return value


# A number of orders: 5 or "5" (the CLI gives text), never true or 5.5.
Count = Annotated[int, BeforeValidator(_no_bool), Field(gt=0)]


class ConditionError(ValueError):
    """Raised when a condition cannot be built or cannot be evaluated."""


class InvalidCondition(ConditionError):
    """Raised when a task's conditions are malformed; `field` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class WrongResult(ConditionError):
    """Raised when a check's result is not one the condition's watch kind produces."""

    def __init__(self, kind: str, result: object) -> None:
        got = getattr(result, "kind", type(result).__name__)
        super().__init__(f"a {kind} condition cannot be evaluated on a {got} result")
        self.kind = kind
        self.result = result


class _Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    KIND: ClassVar[WatchKind]
    PRICE_FIELDS: ClassVar[tuple[str, ...]]


class LowestPriceCondition(_Condition):
    """The lowest price is at or under `max_price`."""

    KIND: ClassVar[WatchKind] = "lowest_price"
    PRICE_FIELDS: ClassVar[tuple[str, ...]] = ("max_price",)

    max_price: Price


class NewListingCondition(_Condition):
    """A listing the buyer can have for at most `max_price`, optionally within a float range."""

    KIND: ClassVar[WatchKind] = "new_listings"
    PRICE_FIELDS: ClassVar[tuple[str, ...]] = ("max_price",)

    max_price: Price
    float_min: FloatBound | None = None
    float_max: FloatBound | None = None

    @model_validator(mode="after")
    def _ordered(self) -> NewListingCondition:
        if self.float_min is not None and self.float_max is not None:
            if self.float_min > self.float_max:
                raise PydanticCustomError(
                    "condition",
                    "must not exceed float_max ({low} > {high})",
                    {"field": "float_min", "low": str(self.float_min), "high": str(self.float_max)},
                )
        return self


class OrderBookCondition(_Condition):
    """The order book: its top (best sell at or under, best buy at or over) and its depth.

    Depth reads the book's levels: "at least ``sell_depth_count`` sell orders at or under
    ``sell_depth_price``" (enough stock near a price), "at least ``buy_depth_count`` buy orders
    at or over ``buy_depth_price``" (enough demand). With several of them, ``match`` says how
    they combine: ``any`` (one is enough, the default) or ``all`` (every one at once).
    """

    KIND: ClassVar[WatchKind] = "order_book"
    PRICE_FIELDS: ClassVar[tuple[str, ...]] = (
        "max_lowest_sell",
        "min_highest_buy",
        "sell_depth_price",
        "buy_depth_price",
    )

    max_lowest_sell: Price | None = None
    min_highest_buy: Price | None = None
    sell_depth_count: Count | None = None
    sell_depth_price: Price | None = None
    buy_depth_count: Count | None = None
    buy_depth_price: Price | None = None
    match: Literal["any", "all"] = "any"

    @model_validator(mode="after")
    def _something_to_watch(self) -> OrderBookCondition:
        for side in ("sell", "buy"):
            count, price = f"{side}_depth_count", f"{side}_depth_price"
            if (getattr(self, count) is None) != (getattr(self, price) is None):
                missing = count if getattr(self, count) is None else price
                other = price if missing == count else count
                raise PydanticCustomError(
                    "condition", "is required with {other}", {"field": missing, "other": other}
                )
        if not self.watched:
            raise PydanticCustomError(
                "condition",
                "at least one of max_lowest_sell, min_highest_buy, sell_depth_count (with "
                "sell_depth_price) and buy_depth_count (with buy_depth_price) must be set",
                {"field": "max_lowest_sell"},
            )
        return self

    @property
    def watched(self) -> list[str]:
        """The tests this condition makes, as named in an event's ``reasons``."""
        tests = []
        if self.max_lowest_sell is not None:
            tests.append("lowest_sell")
        if self.min_highest_buy is not None:
            tests.append("highest_buy")
        if self.sell_depth_count is not None:
            tests.append("sell_depth")
        if self.buy_depth_count is not None:
            tests.append("buy_depth")
        return tests


Condition = LowestPriceCondition | NewListingCondition | OrderBookCondition

_BY_KIND: dict[
    str, type[LowestPriceCondition] | type[NewListingCondition] | type[OrderBookCondition]
] = {c.KIND: c for c in (LowestPriceCondition, NewListingCondition, OrderBookCondition)}


def parse_conditions(kind: str, data: Mapping[str, Any], *, currency: int) -> Condition:
    """Validate a task's stored conditions; price strings ("12,50€") are read in `currency`."""
    model = _BY_KIND.get(kind)
    if model is None:
        raise InvalidCondition("kind", f"must be one of {', '.join(_BY_KIND)}, got {kind!r}")
    if not isinstance(data, Mapping):
        raise InvalidCondition("conditions", f"must be an object, got {type(data).__name__}")
    values = dict(data)
    for name in model.PRICE_FIELDS:
        if isinstance(values.get(name), str):
            try:
                values[name] = parse_price(values[name], currency)
            except PriceError as exc:
                raise InvalidCondition(name, str(exc)) from exc
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _explain(exc, kind=kind, currency=currency) from None  # pydantic's text is noise


def _explain(exc: ValidationError, *, kind: str, currency: int) -> InvalidCondition:
    """The first problem pydantic found, in our words, naming its field."""
    error = exc.errors()[0]
    context = error.get("ctx") or {}
    name = ".".join(str(part) for part in error["loc"]) or str(context.get("field", "conditions"))
    kind_of_error = error["type"]
    if kind_of_error == "missing":
        return InvalidCondition(name, "is required")
    if kind_of_error == "extra_forbidden":
        return InvalidCondition(name, f"is not a field of {kind} conditions")
    if kind_of_error.startswith("int") and name.endswith("_count"):
        return InvalidCondition(name, f"must be a whole number of orders, got {error['input']!r}")
    if kind_of_error.startswith("int"):
        try:
            example = f" or a price string such as {format_price(1250, currency)!r}"
        except PriceError:
            example = ""
        return InvalidCondition(name, f"must be a whole number of minor units{example}")
    if kind_of_error == "greater_than":
        return InvalidCondition(name, "must be greater than 0")
    if kind_of_error in ("decimal_type", "decimal_parsing", "finite_number"):
        return InvalidCondition(name, "must be a number")
    if kind_of_error in ("greater_than_equal", "less_than_equal"):
        return InvalidCondition(name, "must be between 0 and 1")
    if kind_of_error == "literal_error":  # match: say what was given, not only what is allowed
        return InvalidCondition(name, f"must be {context['expected']}, got {error['input']!r}")
    return InvalidCondition(name, error["msg"])


class ConditionState(TypedDict):
    """What one check leaves for the next: whether the condition held."""

    met: bool


@dataclass(frozen=True)
class Signal:
    """Something worth telling the owner; `key` is unique within one check."""

    kind: SignalKind
    key: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Evaluation:
    """The state to carry to the next check, what to announce, and listing ids to remember."""

    state: ConditionState
    signals: tuple[Signal, ...] = ()
    new_listing_ids: frozenset[str] = field(default_factory=frozenset)


def evaluate(
    condition: Condition,
    result: Result,
    previous: Mapping[str, Any] | None,
    *,
    already_seen: Set[str] = frozenset(),
) -> Evaluation:
    """Apply one check's result to a condition; `previous` is the last Evaluation's state."""
    # Corrupt or missing state reads as "was not met": at worst one repeated alert, never none.
    was_met = previous is not None and previous.get("met") is True
    if isinstance(condition, LowestPriceCondition):
        return _lowest_price(condition, result, was_met)
    if isinstance(condition, OrderBookCondition):
        return _order_book(condition, result, was_met)
    return _new_listings(condition, result, already_seen)


def _lowest_price(condition: LowestPriceCondition, result: Result, was_met: bool) -> Evaluation:
    # The client falls back to the order book when priceoverview is unusable.
    source: str
    if isinstance(result, PriceOverview):
        price, source = result.lowest_price, result.kind
    elif isinstance(result, OrderBook):
        price, source = result.lowest_sell, result.kind
    else:
        raise WrongResult(condition.KIND, result)
    met = price is not None and price <= condition.max_price
    if price is None or not met or was_met:
        return Evaluation(state={"met": met})
    data = {
        "price": price,
        "max_price": condition.max_price,
        **_texts(result.currency, price=price, max_price=condition.max_price),
        "currency": result.currency,
        "source": source,
    }
    return Evaluation(state={"met": True}, signals=(Signal("price_at_or_below", "price", data),))


def _order_book(condition: OrderBookCondition, result: Result, was_met: bool) -> Evaluation:
    if not isinstance(result, OrderBook):
        raise WrongResult(condition.KIND, result)
    sell, buy = result.lowest_sell, result.highest_buy
    sell_depth = buy_depth = None
    reasons: list[str] = []  # the tests that passed, named in the event
    if condition.max_lowest_sell is not None and sell is not None:
        if sell <= condition.max_lowest_sell:
            reasons.append("lowest_sell")
    if condition.min_highest_buy is not None and buy is not None:
        if buy >= condition.min_highest_buy:
            reasons.append("highest_buy")
    if condition.sell_depth_count is not None and condition.sell_depth_price is not None:
        sell_depth = result.sell_depth(condition.sell_depth_price)
        if sell_depth >= condition.sell_depth_count:
            reasons.append("sell_depth")
    if condition.buy_depth_count is not None and condition.buy_depth_price is not None:
        buy_depth = result.buy_depth(condition.buy_depth_price)
        if buy_depth >= condition.buy_depth_count:
            reasons.append("buy_depth")
    met = reasons == condition.watched if condition.match == "all" else bool(reasons)
    if not met or was_met:
        return Evaluation(state={"met": met})
    data = {
        "lowest_sell": sell,
        "highest_buy": buy,
        "max_lowest_sell": condition.max_lowest_sell,
        "min_highest_buy": condition.min_highest_buy,
        **_texts(
            result.currency,
            lowest_sell=sell,
            highest_buy=buy,
            max_lowest_sell=condition.max_lowest_sell,
            min_highest_buy=condition.min_highest_buy,
        ),
        "currency": result.currency,
        "reasons": reasons,
        "match": condition.match,
    }
    if condition.sell_depth_count is not None:
        data |= {
            "sell_depth": sell_depth,
            "sell_depth_count": condition.sell_depth_count,
            "sell_depth_price": condition.sell_depth_price,
            **_texts(result.currency, sell_depth_price=condition.sell_depth_price),
        }
    if condition.buy_depth_count is not None:
        data |= {
            "buy_depth": buy_depth,
            "buy_depth_count": condition.buy_depth_count,
            "buy_depth_price": condition.buy_depth_price,
            **_texts(result.currency, buy_depth_price=condition.buy_depth_price),
        }
    return Evaluation(state={"met": True}, signals=(Signal("order_book", "book", data),))


def _new_listings(
    condition: NewListingCondition, result: Result, already_seen: Set[str]
) -> Evaluation:
    if not isinstance(result, Listings):
        raise WrongResult(condition.KIND, result)
    matching = [listing for listing in result.listings if _matches(condition, listing)]
    signals: dict[str, Signal] = {}
    for listing in matching:
        if listing.listing_id in already_seen or listing.listing_id in signals:
            continue
        signals[listing.listing_id] = Signal(
            "new_listing", f"listing:{listing.listing_id}", _listing_data(condition, listing)
        )
    return Evaluation(
        state={"met": bool(matching)},
        signals=tuple(signals.values()),
        new_listing_ids=frozenset(signals),
    )


def _matches(condition: NewListingCondition, listing: Listing) -> bool:
    if listing.total > condition.max_price:
        return False
    bounded = condition.float_min is not None or condition.float_max is not None
    if not bounded:
        return True
    if listing.float_value is None:  # a float range asks for a float; no float, no match
        return False
    if condition.float_min is not None and listing.float_value < condition.float_min:
        return False
    return condition.float_max is None or listing.float_value <= condition.float_max


def _listing_data(condition: NewListingCondition, listing: Listing) -> dict[str, Any]:
    return {
        "listing_id": listing.listing_id,
        "price": listing.total,
        "seller_price": listing.price,
        "fee": listing.fee,
        "max_price": condition.max_price,
        **_texts(listing.currency, price=listing.total, max_price=condition.max_price),
        "currency": listing.currency,
        "asset_id": listing.asset_id,
        "float_value": None if listing.float_value is None else str(listing.float_value),
        "paint_seed": listing.paint_seed,
    }


def _texts(currency: int, **amounts: int | None) -> dict[str, str | None]:
    """`<name>_text` display strings for the amounts; None where absent or not displayable."""
    texts: dict[str, str | None] = {}
    for name, minor in amounts.items():
        try:
            texts[f"{name}_text"] = None if minor is None else format_price(minor, currency)
        except PriceError:  # an alert without pretty text beats no alert
            texts[f"{name}_text"] = None
    return texts
