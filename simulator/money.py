"""Steam money arithmetic in integer minor units: fixed exchange rates and listing fees.

Steam keeps every listing in the seller's wallet currency and converts it for each
viewer, then computes the fees again on the converted amount; the simulator does the
same so the `price`/`converted_price` pairs in its listings add up the way Steam's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from shared.steam import SUPPORTED_CURRENCIES, minor_digits

USD = 1

# Units of each currency per US dollar: fixed, plausible rates (no live feed exists here).
RATES: dict[int, Fraction] = {
    1: Fraction("1"),
    2: Fraction("0.79"),
    3: Fraction("0.92"),
    4: Fraction("0.88"),
    5: Fraction("92"),
    6: Fraction("3.95"),
    7: Fraction("5.4"),
    8: Fraction("150"),
    9: Fraction("10.8"),
    17: Fraction("32.5"),
    18: Fraction("41"),
    20: Fraction("1.37"),
    21: Fraction("1.52"),
    23: Fraction("7.2"),
    37: Fraction("470"),
    47: Fraction("4.6"),
    10: Fraction("16300"),
    11: Fraction("4.7"),
    12: Fraction("58"),
    13: Fraction("1.35"),
    14: Fraction("36"),
    15: Fraction("25400"),
    16: Fraction("1380"),
    19: Fraction("18.5"),
    22: Fraction("1.68"),
    24: Fraction("84"),
    25: Fraction("950"),
    26: Fraction("3.75"),
    27: Fraction("4100"),
    28: Fraction("18.3"),
    29: Fraction("7.8"),
    30: Fraction("32"),
    31: Fraction("3.75"),
    32: Fraction("3.67"),
    33: Fraction("10.6"),
    34: Fraction("980"),
    35: Fraction("3.7"),
    36: Fraction("3.3"),
    38: Fraction("0.31"),
    39: Fraction("3.64"),
    40: Fraction("510"),
    41: Fraction("40"),
    42: Fraction("1.8"),
    43: Fraction("6.9"),
    44: Fraction("23"),
    45: Fraction("6.85"),
    46: Fraction("360"),
}
assert set(RATES) == set(SUPPORTED_CURRENCIES)

STEAM_FEE = Fraction(5, 100)
PUBLISHER_FEE = Fraction(1, 10)
"""Valve's own games (CS2, Dota 2, TF2) all take 10%, the only publisher fee simulated."""

_TOTAL_FACTOR = float(1 + STEAM_FEE + PUBLISHER_FEE)

PUBLISHER_FEE_TEXT = "0.100000001490116119"
"""How Steam prints the publisher fee: the float32 nearest 0.1, to 18 places."""

WHOLE_UNITS_ONLY = frozenset({8})
"""Currencies Steam shows without a fraction (its `bWholeUnitsOnly`): JPY."""


def _unit(currency: int) -> int:
    """The smallest amount Steam charges in a currency, in minor units."""
    return 10 ** minor_digits(currency) if currency in WHOLE_UNITS_ONLY else 1


def coerce_currency(currency: int | None) -> int:
    """The currency Steam would answer in: unknown or missing ids fall back to USD."""
    return currency if currency in RATES else USD


def convert(amount: int, from_currency: int, to_currency: int) -> int:
    """Convert minor units between currencies at the fixed rates, rounding half up."""
    if from_currency == to_currency:
        return amount
    unit = _unit(to_currency)
    rate_from, rate_to = RATES[from_currency], RATES[to_currency]
    # Integer arithmetic on the rates' fractions: exact, and fast enough for tick replay.
    numerator = amount * rate_to.numerator * rate_from.denominator * 10 ** minor_digits(to_currency)
    denominator = (
        rate_to.denominator * rate_from.numerator * 10 ** minor_digits(from_currency) * unit
    )
    return max((numerator * 2 + denominator) // (denominator * 2), 1) * unit


@dataclass(frozen=True, slots=True)
class Fees:
    """The fees on one listing: the buyer pays `price + total`."""

    steam: int
    publisher: int

    @property
    def total(self) -> int:
        return self.steam + self.publisher


def fees_for(price: int, currency: int) -> Fees:
    """Fees on a seller-receives `price`, as Steam's market JS computes them (floor, min 1).

    In a whole-units currency each fee is floored to whole units, at least one unit.
    """
    unit = _unit(currency)
    steam = max(price * STEAM_FEE.numerator // (STEAM_FEE.denominator * unit), 1)
    publisher = max(price * PUBLISHER_FEE.numerator // (PUBLISHER_FEE.denominator * unit), 1)
    return Fees(steam=steam * unit, publisher=publisher * unit)


def price_from_total(total: int, currency: int) -> int:
    """The largest seller-receives price whose buyer total does not exceed `total`."""
    unit = _unit(currency)
    price = max(int(total / _TOTAL_FACTOR / unit), 1) * unit
    while price + unit + fees_for(price + unit, currency).total <= total:
        price += unit
    while price > unit and price + fees_for(price, currency).total > total:
        price -= unit
    return price
