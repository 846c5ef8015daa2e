"""Conditions: validation of what a watch waits for, and the edge rules of evaluating it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.alerts import (
    Condition,
    ConditionError,
    Evaluation,
    InvalidCondition,
    LowestPriceCondition,
    NewListingCondition,
    OrderBookCondition,
    WrongResult,
    evaluate,
    parse_conditions,
)
from shared.steam import Listing, Listings, OrderBook, PriceOverview, Result, format_price

EUR, USD = 3, 1


def overview(lowest: int | None) -> PriceOverview:
    return PriceOverview(currency=EUR, lowest_price=lowest, median_price=None, volume=None)


def book(lowest_sell: int | None = None, highest_buy: int | None = None) -> OrderBook:
    return OrderBook(
        currency=EUR, highest_buy=highest_buy, lowest_sell=lowest_sell, buy_count=3, sell_count=4
    )


def listing(listing_id: str, price: int, fee: int = 0, float_value: str | None = None) -> Listing:
    return Listing(
        listing_id=listing_id,
        price=price,
        fee=fee,
        currency=EUR,
        asset_id=f"a{listing_id}",
        float_value=None if float_value is None else Decimal(float_value),
        paint_seed=None if float_value is None else 661,
    )


def page(*listings: Listing) -> Listings:
    return Listings(total_count=len(listings), listings=listings)


def signalled_checks(condition: Condition, results: Sequence[Result]) -> list[int]:
    """Run checks 1..n the way the publisher will, state through JSON; which checks signalled."""
    state: Any = None
    fired = []
    for number, result in enumerate(results, start=1):
        evaluation = evaluate(condition, result, state)
        state = json.loads(json.dumps(evaluation.state))
        if evaluation.signals:
            fired.append(number)
    return fired


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "data", "currency", "expected"),
    [
        ("lowest_price", {"max_price": 1250}, EUR, LowestPriceCondition(max_price=1250)),
        ("lowest_price", {"max_price": "12,50€"}, EUR, LowestPriceCondition(max_price=1250)),
        ("lowest_price", {"max_price": "23,--€"}, EUR, LowestPriceCondition(max_price=2300)),
        ("lowest_price", {"max_price": "$5"}, USD, LowestPriceCondition(max_price=500)),
        ("new_listings", {"max_price": 100}, EUR, NewListingCondition(max_price=100)),
        (
            "new_listings",
            {"max_price": "1,00€", "float_min": "0.15", "float_max": 0.18},
            EUR,
            NewListingCondition(
                max_price=100, float_min=Decimal("0.15"), float_max=Decimal("0.18")
            ),
        ),
        (
            "new_listings",
            {"max_price": 100, "float_min": 0, "float_max": 0},
            EUR,
            NewListingCondition(max_price=100, float_min=Decimal(0), float_max=Decimal(0)),
        ),
        (
            "new_listings",
            {"max_price": 100, "float_max": 1, "float_min": None},
            EUR,
            NewListingCondition(max_price=100, float_max=Decimal(1)),
        ),
        ("order_book", {"max_lowest_sell": 99}, EUR, OrderBookCondition(max_lowest_sell=99)),
        (
            "order_book",
            {"min_highest_buy": "0,80€", "max_lowest_sell": None},
            EUR,
            OrderBookCondition(min_highest_buy=80),
        ),
        (
            "order_book",
            {"max_lowest_sell": 99, "min_highest_buy": 120},
            EUR,
            OrderBookCondition(max_lowest_sell=99, min_highest_buy=120),
        ),
    ],
    ids=[
        "lowest-int",
        "lowest-eur-string",
        "lowest-eur-dash-fraction",
        "lowest-usd-string",
        "listings-no-floats",
        "listings-float-range",
        "listings-float-point-range",
        "listings-only-max-float",
        "book-sell-only",
        "book-buy-only-string",
        "book-both",
    ],
)
def test_valid_conditions_parse(
    kind: str, data: dict[str, Any], currency: int, expected: Condition
) -> None:
    condition = parse_conditions(kind, data, currency=currency)
    assert condition == expected
    assert condition.KIND == kind
    # What a condition dumps (for the JSONB column) parses back to the same condition.
    stored = json.loads(json.dumps(condition.model_dump(mode="json")))
    assert parse_conditions(kind, stored, currency=currency) == condition


@pytest.mark.parametrize(
    ("kind", "data", "field", "reason"),
    [
        ("price", {"max_price": 1}, "kind", "must be one of"),
        ("lowest_price", ["max_price", 1], "conditions", "must be an object"),
        ("lowest_price", {}, "max_price", "is required"),
        ("lowest_price", {"max_price": 0}, "max_price", "greater than 0"),
        ("lowest_price", {"max_price": -5}, "max_price", "greater than 0"),
        ("lowest_price", {"max_price": "0,00€"}, "max_price", "greater than 0"),
        ("lowest_price", {"max_price": True}, "max_price", "whole number of minor units"),
        ("lowest_price", {"max_price": 12.5}, "max_price", "'12,50€'"),
        ("lowest_price", {"max_price": "$12.50"}, "max_price", "cannot read '$12.50'"),
        ("lowest_price", {"max_price": "12,5€"}, "max_price", "expected 2 digits"),
        ("lowest_price", {"max_price": 1, "min_price": 1}, "min_price", "not a field"),
        ("new_listings", {"float_min": 0.1}, "max_price", "is required"),
        ("new_listings", {"max_price": 1, "float_min": 1.5}, "float_min", "between 0 and 1"),
        ("new_listings", {"max_price": 1, "float_max": "-0.1"}, "float_max", "between 0 and 1"),
        ("new_listings", {"max_price": 1, "float_min": "low"}, "float_min", "must be a number"),
        ("new_listings", {"max_price": 1, "float_min": "NaN"}, "float_min", "must be a number"),
        ("new_listings", {"max_price": 1, "float_max": False}, "float_max", "must be a number"),
        (
            "new_listings",
            {"max_price": 1, "float_min": "0.5", "float_max": "0.2"},
            "float_min",
            "must not exceed float_max (0.5 > 0.2)",
        ),
        ("order_book", {}, "max_lowest_sell", "at least one of"),
        (
            "order_book",
            {"max_lowest_sell": None, "min_highest_buy": None},
            "max_lowest_sell",
            "at least one of",
        ),
        ("order_book", {"min_highest_buy": 0}, "min_highest_buy", "greater than 0"),
        ("order_book", {"max_price": 5}, "max_price", "not a field of order_book conditions"),
    ],
    ids=[
        "unknown-kind",
        "not-a-mapping",
        "missing-max-price",
        "zero-price",
        "negative-price",
        "zero-price-string",
        "bool-price",
        "fractional-price-suggests-a-string",
        "wrong-currency-string",
        "malformed-string",
        "unknown-field",
        "listings-missing-max-price",
        "float-above-one",
        "float-below-zero",
        "float-not-a-number",
        "float-nan",
        "float-bool",
        "float-range-reversed",
        "book-nothing-set",
        "book-both-null",
        "book-zero-buy",
        "book-foreign-field",
    ],
)
def test_invalid_conditions_name_their_field(kind: str, data: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidCondition) as caught:
        parse_conditions(kind, data, currency=EUR)
    message = str(caught.value)
    assert caught.value.field == field
    assert message.startswith(f"{field}: ")
    assert reason in message
    assert isinstance(caught.value, ConditionError) and isinstance(caught.value, ValueError)
    assert "pydantic" not in message and "validation error" not in message.lower()


def test_conditions_are_frozen() -> None:
    condition = LowestPriceCondition(max_price=100)
    with pytest.raises(ValidationError):
        condition.max_price = 1


# --- lowest price ----------------------------------------------------------------------------

ABOVE, BELOW, LIMIT = 1500, 900, 1000


@pytest.mark.parametrize(
    ("prices", "fired"),
    [
        ([ABOVE, BELOW, BELOW, ABOVE, BELOW], [2, 5]),
        ([BELOW, BELOW, ABOVE], [1]),
        ([LIMIT, LIMIT + 1, LIMIT], [1, 3]),
        ([ABOVE, ABOVE, ABOVE], []),
        ([BELOW, None, BELOW], [1, 3]),
        ([None, BELOW], [2]),
    ],
    ids=[
        "becomes-true-twice",
        "true-on-first-check",
        "at-the-limit-counts",
        "never-true",
        "no-data-is-false",
        "no-data-first",
    ],
)
def test_lowest_price_signals_on_each_rising_edge(
    prices: list[int | None], fired: list[int]
) -> None:
    condition = LowestPriceCondition(max_price=LIMIT)
    assert signalled_checks(condition, [overview(p) for p in prices]) == fired


def test_lowest_price_reads_the_order_book_fallback() -> None:
    condition = LowestPriceCondition(max_price=LIMIT)
    results: list[Result] = [overview(BELOW), book(lowest_sell=BELOW), book(lowest_sell=ABOVE)]
    results += [book(lowest_sell=None), book(lowest_sell=BELOW)]
    assert signalled_checks(condition, results) == [1, 5]
    evaluation = evaluate(condition, book(lowest_sell=BELOW, highest_buy=800), None)
    assert evaluation.signals[0].data["source"] == "order_book"


def test_lowest_price_signal_carries_prices_and_their_display_text() -> None:
    evaluation = evaluate(LowestPriceCondition(max_price=1250), overview(1166), None)
    assert evaluation.state == {"met": True}
    (signal,) = evaluation.signals
    assert (signal.kind, signal.key) == ("price_at_or_below", "price")
    assert signal.data == {
        "price": 1166,
        "max_price": 1250,
        "price_text": "11,66€",
        "max_price_text": "12,50€",
        "currency": EUR,
        "source": "price_overview",
    }
    assert json.loads(json.dumps(signal.data)) == signal.data


@pytest.mark.parametrize(
    "previous", [{}, {"met": "yes"}, {"met": 1}], ids=["empty", "string", "int"]
)
def test_unreadable_state_counts_as_not_met(previous: dict[str, Any]) -> None:
    evaluation = evaluate(LowestPriceCondition(max_price=LIMIT), overview(BELOW), previous)
    assert len(evaluation.signals) == 1


# --- order book ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_sell", "min_buy", "sell", "buy", "reasons"),
    [
        (100, None, 100, None, ["lowest_sell"]),
        (100, None, 101, 500, []),
        (None, 80, 500, 80, ["highest_buy"]),
        (None, 80, 50, 79, []),
        (100, 80, 90, 85, ["lowest_sell", "highest_buy"]),
        (100, 80, 150, 85, ["highest_buy"]),
        (100, 80, 90, 50, ["lowest_sell"]),
        (100, 80, 150, 50, []),
        (100, 80, None, None, []),
    ],
    ids=[
        "sell-at-limit",
        "sell-above",
        "buy-at-limit",
        "buy-below-and-sell-unwatched",
        "both-hold",
        "buy-holds",
        "sell-holds",
        "neither-holds",
        "empty-book",
    ],
)
def test_order_book_thresholds(
    max_sell: int | None, min_buy: int | None, sell: int | None, buy: int | None, reasons: list[str]
) -> None:
    condition = OrderBookCondition(max_lowest_sell=max_sell, min_highest_buy=min_buy)
    evaluation = evaluate(condition, book(lowest_sell=sell, highest_buy=buy), None)
    assert evaluation.state == {"met": bool(reasons)}
    assert [(s.data["reasons"], s.data["match"]) for s in evaluation.signals] == (
        [(reasons, "any")] if reasons else []
    )
    assert all(s.kind == "order_book" and s.key == "book" for s in evaluation.signals)


def test_order_book_signals_on_each_rising_edge() -> None:
    condition = OrderBookCondition(max_lowest_sell=100, min_highest_buy=80)
    results = [
        book(lowest_sell=150, highest_buy=50),
        book(lowest_sell=95, highest_buy=50),
        book(lowest_sell=150, highest_buy=90),  # still true, by the other threshold
        book(lowest_sell=150, highest_buy=50),
        book(lowest_sell=150, highest_buy=80),
    ]
    assert signalled_checks(condition, results) == [2, 5]
    evaluation = evaluate(condition, results[1], None)
    assert evaluation.signals[0].data["lowest_sell_text"] == "0,95€"
    assert evaluation.signals[0].data["min_highest_buy_text"] == "0,80€"


@pytest.mark.parametrize(
    ("sell", "buy", "fires", "reasons"),
    [
        (90, 85, True, ["lowest_sell", "highest_buy"]),
        (150, 85, False, ["highest_buy"]),
        (90, 50, False, ["lowest_sell"]),
        (150, 50, False, []),
        (None, 85, False, ["highest_buy"]),
    ],
    ids=["both-hold", "buy-only", "sell-only", "neither", "no-sell-orders"],
)
def test_order_book_match_all_needs_both_sides_at_once(
    sell: int | None, buy: int | None, fires: bool, reasons: list[str]
) -> None:
    condition = OrderBookCondition(max_lowest_sell=100, min_highest_buy=80, match="all")
    evaluation = evaluate(condition, book(lowest_sell=sell, highest_buy=buy), None)
    assert evaluation.state == {"met": fires}
    assert [(s.data["reasons"], s.data["match"]) for s in evaluation.signals] == (
        [(reasons, "all")] if fires else []
    )


def test_order_book_match_all_with_one_threshold_is_that_threshold() -> None:
    condition = OrderBookCondition(min_highest_buy=80, match="all")
    assert evaluate(condition, book(lowest_sell=None, highest_buy=80), None).state == {"met": True}


def test_order_book_match_defaults_to_any_for_stored_conditions_without_it() -> None:
    condition = parse_conditions("order_book", {"max_lowest_sell": 100}, currency=EUR)
    assert isinstance(condition, OrderBookCondition) and condition.match == "any"


def test_order_book_match_other_than_any_or_all_is_refused_naming_match() -> None:
    with pytest.raises(InvalidCondition) as caught:
        parse_conditions("order_book", {"max_lowest_sell": 100, "match": "both"}, currency=EUR)
    assert (caught.value.field, caught.value.reason) == (
        "match",
        "must be 'any' or 'all', got 'both'",
    )


# --- new listings ----------------------------------------------------------------------------


def test_each_matching_listing_signals_once() -> None:
    condition = NewListingCondition(max_price=1000)
    first = page(listing("1", 800, 120), listing("2", 900, 135), listing("3", 700, 105))
    evaluation = evaluate(condition, first, None)
    # "2" costs the buyer 1035 although the seller asks 900: the buyer's total is what counts.
    assert [s.key for s in evaluation.signals] == ["listing:1", "listing:3"]
    assert evaluation.new_listing_ids == {"1", "3"}
    assert evaluation.state == {"met": True}

    second = page(listing("3", 700, 105), listing("4", 100, 15), listing("1", 800, 120))
    again = evaluate(condition, second, evaluation.state, already_seen=evaluation.new_listing_ids)
    assert [s.key for s in again.signals] == ["listing:4"]
    assert again.new_listing_ids == {"4"}


def test_a_listing_repeated_in_one_page_signals_once() -> None:
    evaluation = evaluate(
        NewListingCondition(max_price=1000), page(listing("7", 10), listing("7", 10)), None
    )
    assert [s.key for s in evaluation.signals] == ["listing:7"]


def test_no_match_leaves_nothing_to_remember() -> None:
    evaluation = evaluate(NewListingCondition(max_price=100), page(listing("1", 500)), None)
    assert evaluation == Evaluation(state={"met": False})


@pytest.mark.parametrize(
    ("float_min", "float_max", "float_value", "matches"),
    [
        ("0.15", "0.18", "0.15", True),
        ("0.15", "0.18", "0.18", True),
        ("0.15", "0.18", "0.1500001", True),
        ("0.15", "0.18", "0.1499999", False),
        ("0.15", "0.18", "0.1800001", False),
        ("0.9", None, "0.95", True),
        ("0.9", None, "0.85", False),
        (None, "0.07", "0.0612", True),
        (None, "0.07", "0.08", False),
        ("0.15", "0.18", None, False),
        (None, "0.07", None, False),
        (None, None, None, True),
        (None, None, "0.99", True),
    ],
    ids=[
        "at-min",
        "at-max",
        "just-above-min",
        "just-below-min",
        "just-above-max",
        "min-only-above",
        "min-only-below",
        "max-only-below",
        "max-only-above",
        "range-without-float",
        "max-without-float",
        "no-bounds-no-float",
        "no-bounds-any-float",
    ],
)
def test_float_bounds(
    float_min: str | None, float_max: str | None, float_value: str | None, matches: bool
) -> None:
    condition = NewListingCondition(
        max_price=1000,
        float_min=None if float_min is None else Decimal(float_min),
        float_max=None if float_max is None else Decimal(float_max),
    )
    evaluation = evaluate(condition, page(listing("5", 500, 75, float_value)), None)
    assert len(evaluation.signals) == (1 if matches else 0)


def test_listing_signal_carries_what_the_owner_needs() -> None:
    condition = NewListingCondition(max_price=1000, float_max=Decimal("0.07"))
    (signal,) = evaluate(condition, page(listing("42", 800, 120, "0.0612")), None).signals
    assert signal.kind == "new_listing"
    assert signal.data == {
        "listing_id": "42",
        "price": 920,
        "seller_price": 800,
        "fee": 120,
        "max_price": 1000,
        "price_text": "9,20€",
        "max_price_text": "10,--€",
        "currency": EUR,
        "asset_id": "a42",
        "float_value": "0.0612",
        "paint_seed": 661,
    }
    assert json.loads(json.dumps(signal.data)) == signal.data


# --- mismatched results ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "result"),
    [
        (LowestPriceCondition(max_price=1), page(listing("1", 1))),
        (NewListingCondition(max_price=1), overview(1)),
        (NewListingCondition(max_price=1), book(lowest_sell=1)),
        (OrderBookCondition(max_lowest_sell=1), overview(1)),
        (OrderBookCondition(max_lowest_sell=1), page()),
    ],
    ids=[
        "lowest-price-on-listings",
        "listings-on-overview",
        "listings-on-book",
        "book-on-overview",
        "book-on-listings",
    ],
)
def test_a_result_of_the_wrong_kind_is_refused(condition: Condition, result: Result) -> None:
    with pytest.raises(WrongResult) as caught:
        evaluate(condition, result, None)
    assert isinstance(caught.value, ConditionError)
    assert condition.KIND in str(caught.value) and result.kind in str(caught.value)


# --- order-book depth -------------------------------------------------------------------


def deep_book(
    sells: tuple[tuple[int, int], ...], buys: tuple[tuple[int, int], ...] = ()
) -> OrderBook:
    return OrderBook(
        currency=EUR,
        highest_buy=buys[0][0] if buys else None,
        lowest_sell=sells[0][0] if sells else None,
        buy_count=sum(q for _, q in buys),
        sell_count=sum(q for _, q in sells),
        sells=sells,
        buys=buys,
    )


SELLS = ((572, 1), (587, 1), (592, 1), (605, 1), (606, 3))  # the real CHF capture's sells
BUYS = ((525, 11), (520, 3), (519, 3), (517, 15))


@pytest.mark.parametrize(
    ("count", "price", "met"),
    [
        (3, 600, True),  # 572, 587, 592: exactly three at or under 6,00
        (4, 600, False),
        (7, 606, True),  # the 606 level holds three orders: levels, not listings, are counted
        (8, 606, False),
        (1, 571, False),
    ],
)
def test_sell_depth_counts_orders_at_or_under_the_price(count: int, price: int, met: bool) -> None:
    condition = parse_conditions(
        "order_book", {"sell_depth_count": count, "sell_depth_price": price}, currency=EUR
    )
    judged = evaluate(condition, deep_book(SELLS), None)
    assert judged.state == {"met": met}
    if met:
        (signal,) = judged.signals
        assert signal.data["reasons"] == ["sell_depth"]
        assert signal.data["sell_depth"] >= count == signal.data["sell_depth_count"]
        assert signal.data["sell_depth_price_text"] == format_price(price, EUR)


def test_buy_depth_counts_orders_at_or_over_the_price() -> None:
    condition = parse_conditions(
        "order_book", {"buy_depth_count": "17", "buy_depth_price": "5,19€"}, currency=EUR
    )
    judged = evaluate(condition, deep_book(SELLS, BUYS), None)
    assert judged.state == {"met": True}
    assert judged.signals[0].data["buy_depth"] == 17  # 11 + 3 + 3 at 5,19€ or over


def test_depth_alerts_on_the_rising_edge_only_and_combines_with_match_all() -> None:
    condition = parse_conditions(
        "order_book",
        {"max_lowest_sell": 580, "sell_depth_count": 3, "sell_depth_price": 600, "match": "all"},
        currency=EUR,
    )
    thin = deep_book(((572, 1), (650, 5)))
    first = evaluate(condition, thin, None)
    assert first.state == {"met": False} and not first.signals  # the top holds, the depth not
    second = evaluate(condition, deep_book(SELLS), first.state)
    assert second.state == {"met": True}
    assert second.signals[0].data["reasons"] == ["lowest_sell", "sell_depth"]
    third = evaluate(condition, deep_book(SELLS), second.state)
    assert third.state == {"met": True} and not third.signals  # still met: no second alert


def test_a_book_without_levels_has_no_depth() -> None:
    condition = parse_conditions(
        "order_book", {"sell_depth_count": 1, "sell_depth_price": 10_000}, currency=EUR
    )
    assert evaluate(condition, book(lowest_sell=500), None).state == {"met": False}


@pytest.mark.parametrize(
    ("given", "field", "reason"),
    [
        ({"sell_depth_count": 3}, "sell_depth_price", "is required with sell_depth_count"),
        ({"buy_depth_price": 500}, "buy_depth_count", "is required with buy_depth_price"),
        ({"sell_depth_count": True, "sell_depth_price": 5}, "sell_depth_count", "whole number"),
        ({"sell_depth_count": 2.5, "sell_depth_price": 5}, "sell_depth_count", "whole number"),
        ({"sell_depth_count": -1, "sell_depth_price": 5}, "sell_depth_count", "greater than 0"),
        ({"sell_depth_count": 2, "sell_depth_price": "lots"}, "sell_depth_price", "lots"),
    ],
)
def test_bad_depth_conditions_name_the_field(
    given: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidCondition) as caught:
        parse_conditions("order_book", given, currency=EUR)
    assert caught.value.field == field
    assert reason in caught.value.reason
