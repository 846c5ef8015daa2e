"""Fees and conversion in integer minor units, checked against Steam's captured listings."""

from __future__ import annotations

import pytest

from simulator.money import convert, fees_for, price_from_total


@pytest.mark.parametrize(
    ("price", "currency", "steam", "publisher"),
    [(438, 3, 21, 43), (70, 2, 3, 7), (95, 1, 4, 9), (1, 1, 1, 1)],
    ids=["eur-sample", "gbp-sample", "usd-converted-sample", "minimum-one-each"],
)
def test_fees_match_steams_captured_listings(
    price: int, currency: int, steam: int, publisher: int
) -> None:
    fees = fees_for(price, currency)
    assert (fees.steam, fees.publisher, fees.total) == (steam, publisher, steam + publisher)


@pytest.mark.parametrize("total", [3, 10, 115, 502, 999, 12_345, 1_000_000])
def test_price_from_total_is_the_largest_price_a_buyer_total_covers(total: int) -> None:
    price = price_from_total(total, 1)
    assert price + fees_for(price, 1).total <= total
    assert price + 1 + fees_for(price + 1, 1).total > total


def test_jpy_amounts_are_whole_yen() -> None:
    assert convert(123, 1, 8) % 100 == 0
    assert fees_for(17_300, 8).steam % 100 == 0


def test_same_currency_conversion_is_identity_and_round_trips_stay_close() -> None:
    assert convert(438, 3, 3) == 438
    assert abs(convert(convert(10_000, 1, 3), 3, 1) - 10_000) <= 1
