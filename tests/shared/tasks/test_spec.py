"""Task definitions: what becomes a ``tasks`` row, and how every bad one is named and explained."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.alerts import parse_conditions
from shared.tasks import TaskSpec, TaskSpecError, parse_task

USD, EUR, RUB, JPY, GBP, BRL, CNY, UAH, CHF = 1, 3, 5, 8, 2, 7, 23, 18, 4
FLOOR = 30

BASE: dict[str, Any] = {
    "owner": "alice",
    "appid": "730",
    "item": "AK-47 | Redline (Field-Tested)",
    "currency": "EUR",
    "kind": "lowest_price",
    "interval": "300",
    "max_price": "12,50€",
}


def task(*, min_interval: int = FLOOR, **changes: Any) -> TaskSpec:
    """BASE with some fields changed; a value of None removes the field."""
    data = {**BASE, **changes}
    return parse_task({k: v for k, v in data.items() if v is not None}, min_interval=min_interval)


def rejection(*, min_interval: int = FLOOR, **changes: Any) -> TaskSpecError:
    with pytest.raises(TaskSpecError) as caught:
        task(min_interval=min_interval, **changes)
    return caught.value


def test_a_cli_definition_becomes_a_row() -> None:
    spec = task()
    assert spec.row() == {
        "owner": "alice",
        "appid": 730,
        "market_hash_name": "AK-47 | Redline (Field-Tested)",
        "currency": EUR,
        "kind": "lowest_price",
        "conditions": {"max_price": 1250},
        "check_interval": 300,
    }
    assert spec.watch == ("alice", 730, "AK-47 | Redline (Field-Tested)", "lowest_price")


def test_a_json_object_with_typed_values_and_column_names_becomes_the_same_row() -> None:
    data = {
        "owner": "alice",
        "appid": 730,
        "market_hash_name": "AK-47 | Redline (Field-Tested)",
        "currency": 3,
        "kind": "lowest_price",
        "check_interval": 300,
        "max_price": 12.5,
    }
    assert parse_task(data, min_interval=FLOOR).row() == task().row()


@pytest.mark.parametrize(
    ("currency", "price", "minor"),
    [
        ("EUR", "12,50€", 1250),
        ("EUR", "23,--€", 2300),
        ("EUR", "1 234,56€", 123456),
        ("eur", "12,50 EUR", 1250),
        ("USD", "$3.49", 349),
        ("usd", "$2,079.86", 207986),
        ("GBP", "£1,234.56", 123456),
        ("RUB", "1 500,01 pуб.", 150001),
        ("RUB", "336 руб.", 33600),
        ("JPY", "¥ 1,234", 123400),
        ("CNY", "¥ 1.01", 101),
        ("BRL", "R$ 5,00", 500),
        ("UAH", "4 659,03₴", 465903),
        ("CHF", "CHF 12.40", 1240),
        ("23", "¥ 7.50", 750),  # CNY by Steam's currency id
    ],
)
def test_localized_prices_are_read_in_the_tasks_currency(
    currency: str, price: str, minor: int
) -> None:
    assert task(currency=currency, max_price=price).conditions == {"max_price": minor}


@pytest.mark.parametrize(
    ("price", "minor"),
    [
        ("12.5", 1250),
        ("12.50", 1250),
        ("12.500", 1250),  # no finer than cents: only a trailing zero
        ("12", 1200),
        (".5", 50),
        (" 0.01 ", 1),
        (12, 1200),
        (12.5, 1250),
        (0.07, 7),
    ],
)
def test_plain_numbers_are_in_the_currencys_main_unit(price: Any, minor: int) -> None:
    assert task(max_price=price).conditions == {"max_price": minor}


def test_currency_is_an_iso_code_or_a_steam_id_and_defaults_to_usd() -> None:
    assert task(currency="eur").currency == EUR
    assert task(currency=" 3 ").currency == EUR
    assert task(currency=EUR).currency == EUR
    assert task(currency="JPY", max_price="¥ 5").currency == JPY
    assert task(currency=None, max_price="$1.00").currency == USD
    assert task(currency="", max_price="1").currency == USD  # an empty CSV cell


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [
        ("300", 300),
        (300, 300),
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86_400),
        ("7d", 604_800),
        (" 30 ", 30),
        ("5M", 300),
    ],
)
def test_intervals_are_seconds_or_a_number_with_a_unit(interval: Any, seconds: int) -> None:
    assert task(interval=interval).check_interval == seconds


def test_the_interval_floor_is_the_one_passed_in() -> None:
    assert task(interval="60", min_interval=60).check_interval == 60
    error = rejection(interval="59", min_interval=60)
    assert (error.field, error.reason) == (
        "interval",
        "must be at least 60 seconds (the configured minimum), got 59",
    )
    assert task(interval="5", min_interval=1).check_interval == 5


def test_each_kind_builds_its_conditions() -> None:
    listings = task(kind="new_listings", max_price="80", float_min="0", float_max=0.07)
    assert listings.conditions == {"max_price": 8000, "float_min": "0", "float_max": "0.07"}
    book = task(kind="order_book", max_price=None, max_lowest_sell="1,00€", min_highest_buy="0.8")
    assert book.conditions == {"max_lowest_sell": 100, "min_highest_buy": 80}
    buy_only = task(kind="Order-Book", max_price=None, min_highest_buy=2)
    assert (buy_only.kind, buy_only.conditions) == ("order_book", {"min_highest_buy": 200})


def test_stored_conditions_read_back_as_the_same_condition() -> None:
    spec = task(kind="new_listings", max_price="80,--€", float_min="0.15", float_max="0.18")
    stored = json.loads(json.dumps(spec.row()["conditions"]))
    assert parse_conditions(spec.kind, stored, currency=spec.currency) == spec.condition


def test_empty_cells_of_other_kinds_conditions_are_not_given() -> None:
    """A CSV has a column for every condition; a row fills only its kind's."""
    spec = task(float_min="", float_max=" ", max_lowest_sell="", min_highest_buy=None)
    assert spec.conditions == {"max_price": 1250}


def test_field_names_are_read_like_cli_options_and_text_is_trimmed() -> None:
    data = {
        " Owner ": " alice ",
        "APPID": "730",
        "Market-Hash-Name": " AK-47 | Redline (Field-Tested) ",
        "currency": "EUR",
        "kind": " lowest_price ",
        "Check-Interval": "5m",
        "Max-Price": " 12,50€ ",
    }
    assert parse_task(data, min_interval=FLOOR).row() == task().row()


def test_names_keep_their_unicode() -> None:
    name = "★ StatTrak™ Karambit | Doppler (Factory New)"
    assert task(item=name).market_hash_name == name
    assert task(item="x" * 255, owner="o" * 64).market_hash_name == "x" * 255


def test_the_error_is_a_value_error_naming_its_field() -> None:
    error = rejection(appid="cs2")
    assert isinstance(error, ValueError)
    assert error.field == "appid"
    assert str(error) == f"appid: {error.reason}"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        # owner
        ({"owner": None}, "owner", "is required"),
        ({"owner": "  "}, "owner", "must not be empty"),
        ({"owner": "o" * 65}, "owner", "at most 64 characters"),
        ({"owner": "al\x1bice"}, "owner", "control characters (U+001B)"),
        ({"owner": 42}, "owner", "must be text"),
        # appid
        ({"appid": None}, "appid", "is required"),
        ({"appid": True}, "appid", "whole number"),
        ({"appid": 730.5}, "appid", "whole number"),
        ({"appid": 730.0}, "appid", "whole number"),
        ({"appid": "730.5"}, "appid", "whole number"),
        ({"appid": "cs2"}, "appid", "whole number"),
        ({"appid": 0}, "appid", "between 1 and 2147483647"),
        ({"appid": "-730"}, "appid", "between 1 and 2147483647"),
        ({"appid": 2**31}, "appid", "between 1 and 2147483647"),
        # item
        ({"item": None}, "item", "is required"),
        ({"item": " \t "}, "item", "must not be empty"),
        ({"item": "x" * 256}, "item", "at most 255 characters"),
        ({"item": "AK-47\nRedline"}, "item", "control characters (U+000A)"),
        ({"item": "AK-47\u2028Redline"}, "item", "control characters (U+2028)"),
        ({"item": None, "market_hash_name": ""}, "market_hash_name", "must not be empty"),
        ({"market_hash_name": "M4A1-S"}, "market_hash_name", "given twice (also as item)"),
        # currency
        ({"currency": "XBT"}, "currency", "not a supported currency"),
        ({"currency": "99"}, "currency", "not a supported currency"),
        ({"currency": 0}, "currency", "not a supported currency"),
        ({"currency": True}, "currency", "not a supported currency"),
        ({"currency": "€"}, "currency", "not a supported currency"),
        # kind
        ({"kind": None}, "kind", "is required"),
        ({"kind": "cheapest"}, "kind", "must be one of lowest_price, new_listings, order_book"),
        # interval
        ({"interval": None}, "interval", "is required"),
        ({"interval": "29"}, "interval", "at least 30 seconds"),
        ({"interval": 0}, "interval", "at least 30 seconds"),
        ({"interval": "8d"}, "interval", "at most 7 days"),
        ({"interval": 604_801}, "interval", "at most 7 days"),
        ({"interval": "soon"}, "interval", "whole seconds"),
        ({"interval": 60.5}, "interval", "whole seconds"),
        ({"interval": "1.5m"}, "interval", "whole seconds"),
        ({"check_interval": "60"}, "check_interval", "given twice (also as interval)"),
        # thresholds
        ({"max_price": None}, "max_price", "is required"),
        ({"max_price": "12.505"}, "max_price", "more decimals than EUR has (2)"),
        ({"max_price": 0.001}, "max_price", "more decimals than EUR has (2)"),
        ({"currency": "USD", "max_price": "12,50"}, "max_price", "no '$' symbol"),
        ({"max_price": "$3.49"}, "max_price", "cannot read '$3.49' as a EUR price"),
        ({"currency": "USD", "max_price": "$5.001"}, "max_price", "expected 2 digits"),
        ({"max_price": "0"}, "max_price", "greater than 0"),
        ({"max_price": "0,00€"}, "max_price", "greater than 0"),
        ({"max_price": -1}, "max_price", "greater than 0"),
        ({"max_price": True}, "max_price", "must be a price"),
        ({"max_price": float("nan")}, "max_price", "must be a number or a price text"),
        ({"max_price": "1e3"}, "max_price", "cannot read"),
        ({"max_price": 10**12}, "max_price", "at most 1000000000 EUR"),
        ({"max_price": ["12"]}, "max_price", "must be a number or a price text"),
        # conditions per kind
        ({"float_max": "0.2"}, "float_max", "not a field of lowest_price conditions"),
        ({"kind": "new_listings", "float_max": "1.5"}, "float_max", "between 0 and 1"),
        ({"kind": "new_listings", "float_min": "low"}, "float_min", "must be a number"),
        (
            {"kind": "new_listings", "float_min": "0.5", "float_max": "0.2"},
            "float_min",
            "must not exceed float_max",
        ),
        (
            {"kind": "order_book", "max_price": None},
            "max_lowest_sell",
            "at least one of max_lowest_sell, min_highest_buy, sell_depth_count",
        ),
        (
            {"kind": "order_book", "currency": "USD", "max_price": None, "min_highest_buy": "0,80"},
            "min_highest_buy",
            "no '$' symbol",
        ),
        ({"kind": "order_book"}, "max_price", "not a field of order_book conditions"),
        (
            {"kind": "order_book", "max_price": None, "sell_depth_count": "5"},
            "sell_depth_price",
            "is required with sell_depth_count",
        ),
        (
            {
                "kind": "order_book",
                "max_price": None,
                "buy_depth_count": "many",
                "buy_depth_price": "1.00",
            },
            "buy_depth_count",
            "must be a whole number of orders, got 'many'",
        ),
        (
            {"kind": "order_book", "max_price": None, "sell_depth_count": 0, "sell_depth_price": 1},
            "sell_depth_count",
            "greater than 0",
        ),
        # the definition itself
        ({"colour": "red"}, "colour", "is not a task field"),
        ({"conditions": {"max_price": 1}}, "conditions", "is not a task field"),
    ],
)
def test_bad_definitions_name_the_field_and_say_what_is_wrong(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    error = rejection(**changes)
    assert error.field == field
    assert reason in error.reason


@pytest.mark.parametrize(
    ("currency", "text", "minor"),
    [("EUR", "12,50", 1250), ("EUR", "10,5", 1050), ("RUB", "99,9", 9990), ("EUR", "0,80", 80)],
)
def test_a_comma_decimal_reads_in_a_currency_steam_writes_with_one(
    currency: str, text: str, minor: int
) -> None:
    spec = task(currency=currency, max_price=text)
    assert spec.conditions == {"max_price": minor}


def test_a_definition_must_be_a_mapping() -> None:
    with pytest.raises(TaskSpecError) as caught:
        parse_task(["alice", 730], min_interval=FLOOR)  # type: ignore[arg-type]
    assert caught.value.field == "task"
    assert "must be an object" in caught.value.reason


def test_the_first_problem_in_field_order_is_reported() -> None:
    error = rejection(owner="", appid="x", interval="1")
    assert error.field == "owner"
