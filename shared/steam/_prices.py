"""Steam's localized price strings, read into and written from integer minor units.

Steam sends prices as display text ("1,66€", "¥ 1.01", "1,10 pуб."), so every
comparison must go through one exact, per-currency conversion that never touches floats.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

CurrencyCode = Literal[
    "USD",
    "GBP",
    "EUR",
    "CHF",
    "RUB",
    "PLN",
    "BRL",
    "JPY",
    "NOK",
    "IDR",
    "MYR",
    "PHP",
    "SGD",
    "THB",
    "VND",
    "KRW",
    "TRY",
    "UAH",
    "MXN",
    "CAD",
    "AUD",
    "NZD",
    "CNY",
    "INR",
    "CLP",
    "PEN",
    "COP",
    "ZAR",
    "HKD",
    "TWD",
    "SAR",
    "AED",
    "SEK",
    "ARS",
    "ILS",
    "BYN",
    "KZT",
    "KWD",
    "QAR",
    "CRC",
    "UYU",
    "BGN",
    "HRK",
    "CZK",
    "DKK",
    "HUF",
    "RON",
]

WALLET_ID_OFFSET = 2000
"""Listings carry `currencyid` = 2000 + currency id (2003 is EUR)."""

_MAX_LENGTH = 64  # Steam's longest real price is about 20 characters.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")
_GROUP_MARKS = frozenset({",", ".", " ", "'", "\u2019"})


class PriceError(ValueError):
    """Raised when a Steam price or currency cannot be handled."""


class UnknownCurrency(PriceError):
    """Raised when a currency id is not one steamwatch supports."""

    def __init__(self, currency: object) -> None:
        super().__init__(f"unknown Steam currency id {currency!r}")
        self.currency = currency


class PriceFormatError(PriceError):
    """Raised when a price string cannot be read for its currency."""

    def __init__(self, text: object, currency: int, reason: str) -> None:
        code = _FORMATS[currency].code if currency in _FORMATS else str(currency)
        super().__init__(f"cannot read {text!r} as a {code} price: {reason}")
        self.text = text
        self.currency = currency
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Format:
    """How Steam displays one currency, plus the other spellings we accept when reading."""

    code: CurrencyCode
    symbol: str
    side: Literal["prefix", "suffix"]
    gap: str  # between symbol and number
    decimal: str
    thousands: str  # "" means Steam writes no thousands mark
    minor_digits: int = 2
    omit_zero_fraction: bool = False  # "336 pуб." rather than "336,00 pуб."
    dash_zero_fraction: bool = False  # "23,--€" rather than "23,00€"
    aliases: tuple[str, ...] = ()


# Source: Steam's own `g_rgCurrencyData` (strCode, eCurrencyCode, strSymbol, bSymbolIsPrefix,
# bWholeUnitsOnly, strDecimalSymbol, strThousandsSeparator, strSymbolAndNumberSeparator) and its
# `v_currencyformat()`, as mirrored from Steam's JavaScript in public repositories (SteamDatabase/
# SteamTracking's help.js and userscripts that embed it). It lists ids 1 to 47 (11 of them no
# longer sold in, such as TRY and SEK, still appear on old listings). Checked against captured
# strings: "1,66€", "23,--€" (EUR), "¥ 1.01" (CNY), "1,10 pуб." and "336 pуб." (RUB, no ",00"
# and no thousands mark: "1500,01 pуб."), "4 659,03₴" and "1 757₴" (UAH), "$2,079.86" (USD),
# "¥ 6,228" / "¥ 8,330.36" (JPY), "Rp 700 697" / "Rp 937 354.99" (IDR).
#
# Whole-unit currencies (bWholeUnitsOnly: JPY, IDR, VND, KRW, UAH, INR, CLP, COP, TWD, KZT, CRC,
# UYU) drop a zero fraction, so a lowest price reads "¥ 6,228" while a median keeps its cents;
# reading accepts both. RUB drops it too on the market, although the JS exempts it. Minor units
# are Steam's own integer units, hundredths for every currency (v_currencyformat divides all of
# them by 100), JPY included: "¥ 1,234" is 123400, the same integer a JPY listing carries, so
# parsed strings and integer fields compare directly. Steam's thousands marks are the table's;
# reading also takes any one other mark (a no-break space, a "." or ","), the ISO code as a
# symbol, the symbol at either end, HTML entities ("&#8364;") and a trailing " USD".
_FORMATS: dict[int, _Format] = {
    1: _Format("USD", "$", "prefix", "", ".", ","),
    2: _Format("GBP", "£", "prefix", "", ".", ","),
    3: _Format("EUR", "€", "suffix", "", ",", " ", dash_zero_fraction=True),
    4: _Format("CHF", "CHF", "prefix", " ", ".", " "),
    # Steam's "p" is Latin; the Cyrillic spelling and the ruble sign are read too.
    5: _Format(
        "RUB", "pуб.", "suffix", " ", ",", "", omit_zero_fraction=True, aliases=("руб.", "₽")
    ),
    6: _Format("PLN", "zł", "suffix", "", ",", " "),
    7: _Format("BRL", "R$", "prefix", " ", ",", "."),
    8: _Format("JPY", "¥", "prefix", " ", ".", ",", omit_zero_fraction=True, aliases=("JP¥", "￥")),
    9: _Format("NOK", "kr", "suffix", " ", ",", "."),
    10: _Format("IDR", "Rp", "prefix", " ", ".", " ", omit_zero_fraction=True),
    11: _Format("MYR", "RM", "prefix", "", ".", ","),
    12: _Format("PHP", "P", "prefix", "", ".", ",", aliases=("₱",)),
    13: _Format("SGD", "S$", "prefix", "", ".", ","),
    14: _Format("THB", "฿", "prefix", "", ".", ","),
    15: _Format("VND", "₫", "suffix", "", ",", ".", omit_zero_fraction=True),
    16: _Format("KRW", "₩", "prefix", " ", ".", ",", omit_zero_fraction=True),
    17: _Format("TRY", "TL", "suffix", " ", ",", ".", aliases=("₺",)),
    18: _Format("UAH", "₴", "suffix", "", ",", " ", omit_zero_fraction=True),
    19: _Format("MXN", "Mex$", "prefix", " ", ".", ","),
    20: _Format("CAD", "CDN$", "prefix", " ", ".", ","),
    21: _Format("AUD", "A$", "prefix", " ", ".", ","),
    22: _Format("NZD", "NZ$", "prefix", " ", ".", ","),
    23: _Format("CNY", "¥", "prefix", " ", ".", ",", aliases=("CN¥", "￥", "元")),
    24: _Format("INR", "₹", "prefix", " ", ".", ",", omit_zero_fraction=True),
    25: _Format("CLP", "CLP$", "prefix", " ", ",", ".", omit_zero_fraction=True),
    26: _Format("PEN", "S/.", "prefix", "", ".", ","),
    27: _Format("COP", "COL$", "prefix", " ", ",", ".", omit_zero_fraction=True),
    28: _Format("ZAR", "R", "prefix", " ", ".", " "),
    29: _Format("HKD", "HK$", "prefix", " ", ".", ","),
    30: _Format("TWD", "NT$", "prefix", " ", ".", ",", omit_zero_fraction=True),
    31: _Format("SAR", "SR", "suffix", " ", ".", ","),
    32: _Format("AED", "AED", "suffix", " ", ".", ","),
    33: _Format("SEK", "kr", "suffix", " ", ".", ","),
    34: _Format("ARS", "ARS$", "prefix", " ", ",", "."),
    35: _Format("ILS", "₪", "prefix", "", ".", ","),
    36: _Format("BYN", "Br", "prefix", "", ".", ","),
    37: _Format("KZT", "₸", "suffix", "", ",", " ", omit_zero_fraction=True),
    38: _Format("KWD", "KD", "suffix", " ", ".", ","),
    39: _Format("QAR", "QR", "suffix", " ", ".", ","),
    40: _Format("CRC", "₡", "prefix", "", ",", ".", omit_zero_fraction=True),
    41: _Format("UYU", "$U", "prefix", "", ",", ".", omit_zero_fraction=True),
    42: _Format("BGN", "лв", "suffix", " ", ".", ","),
    43: _Format("HRK", "kn", "suffix", " ", ".", ","),
    44: _Format("CZK", "Kč", "suffix", " ", ".", ","),
    45: _Format("DKK", "kr.", "suffix", " ", ".", ","),
    46: _Format("HUF", "Ft", "suffix", " ", ".", ","),
    47: _Format("RON", "lei", "suffix", " ", ".", ","),
}

SUPPORTED_CURRENCIES: frozenset[int] = frozenset(_FORMATS)


def _format_of(currency: int) -> _Format:
    if isinstance(currency, bool) or currency not in _FORMATS:
        raise UnknownCurrency(currency)
    return _FORMATS[currency]


def currency_code(currency: int) -> CurrencyCode:
    """ISO 4217 code of a Steam currency id (3 -> "EUR")."""
    return _format_of(currency).code


def minor_digits(currency: int) -> int:
    """How many minor-unit digits Steam counts in this currency (2 for all, JPY included)."""
    return _format_of(currency).minor_digits


def currency_from_wallet_id(currencyid: int | str) -> int:
    """Steam currency id from a listing's `currencyid` (2003 or "2003" -> 3); plain ids pass."""
    value: int | None = None
    if isinstance(currencyid, int) and not isinstance(currencyid, bool):
        value = currencyid
    elif isinstance(currencyid, str) and currencyid.strip().isascii():
        digits = currencyid.strip()
        value = int(digits) if digits.isdigit() else None
    if value is not None and value > WALLET_ID_OFFSET:
        value -= WALLET_ID_OFFSET
    if value is None or value not in _FORMATS:
        raise UnknownCurrency(currencyid)
    return value


def parse_price(text: str, currency: int) -> int:
    """Read a Steam display price ("1.234,56€", "$5", "23,--€") as integer minor units."""
    spec = _format_of(currency)
    if not isinstance(text, str):
        raise PriceFormatError(text, currency, "not a string")
    if len(text) > _MAX_LENGTH:
        raise PriceFormatError(text, currency, f"longer than {_MAX_LENGTH} characters")
    cleaned = text.translate(_SPACES).strip()
    if not cleaned:
        raise PriceFormatError(text, currency, "empty")
    if "&" in cleaned or "\\u" in cleaned:
        # Old bodies escape the symbol: "261,35&#8364; ", or "\\u20ac" escaped twice.
        cleaned = _unescape(cleaned)
    if any(c in cleaned for c in "<>&"):
        raise PriceFormatError(text, currency, "looks like HTML, not a price")
    number = _strip_symbol(cleaned, spec)
    if number is None:
        raise PriceFormatError(text, currency, f"no {spec.symbol!r} symbol at either end")
    try:
        return _parse_number(number, spec)
    except ValueError as exc:
        raise PriceFormatError(text, currency, str(exc)) from exc


def _unescape(text: str) -> str:
    """HTML character references and literal ``\\uXXXX`` escapes turned into characters."""
    text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    return html.unescape(text).translate(_SPACES).strip()


def _strip_symbol(text: str, spec: _Format) -> str | None:
    """The number left once the currency's symbol is taken off either end, or None."""
    symbols = sorted({spec.symbol, *spec.aliases, spec.code}, key=len, reverse=True)
    for symbol in symbols:
        if text.startswith(symbol):
            rest = text[len(symbol) :].lstrip(" ")
            # Steam appends " USD" to dollar prices shown outside the US: "$0.15 USD".
            if spec.code == "USD" and symbol == "$" and rest.endswith(" USD"):
                rest = rest[: -len(" USD")].rstrip(" ")
            return rest
    for symbol in symbols:
        if text.endswith(symbol):
            return text[: -len(symbol)].rstrip(" ")
    return None


def _parse_number(number: str, spec: _Format) -> int:
    """Minor units of a bare localized number; ValueError says what is wrong with it."""
    if not number:
        raise ValueError("no digits")
    fraction = ""
    if spec.dash_zero_fraction and number.endswith(spec.decimal + "--"):
        number, fraction = number[:-3], "0" * spec.minor_digits
    elif number.count(spec.decimal) > 1:
        raise ValueError(f"more than one decimal mark {spec.decimal!r}")
    elif spec.decimal in number:
        number, fraction = number.split(spec.decimal)
        if spec.minor_digits == 0:
            raise ValueError(f"{spec.code} has no minor unit")
        if len(fraction) != spec.minor_digits or not _is_digits(fraction):
            raise ValueError(f"expected {spec.minor_digits} digits after {spec.decimal!r}")
    units = _parse_units(number, spec)
    return units * 10**spec.minor_digits + (int(fraction) if fraction else 0)


def _parse_units(whole: str, spec: _Format) -> int:
    """The whole-unit part, with one consistent thousands mark or none."""
    marks = {c for c in whole if c not in "0123456789"}
    if not whole or not marks.issubset(_GROUP_MARKS - {spec.decimal}) or len(marks) > 1:
        raise ValueError("not a number")
    groups = whole.split(marks.pop()) if marks else [whole]
    first, rest = groups[0], groups[1:]
    if not _is_digits(first) or (rest and len(first) > 3):
        raise ValueError("misplaced thousands mark")
    if any(len(group) != 3 or not _is_digits(group) for group in rest):
        raise ValueError("misplaced thousands mark")
    if len(first) > 1 and first.startswith("0"):
        raise ValueError("leading zero")
    return int("".join(groups))


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts superscripts and other scripts' digits; Steam sends ASCII.
    return bool(text) and text.isascii() and text.isdigit()


def format_price(minor: int, currency: int) -> str:
    """Write integer minor units the way Steam displays them (1234567, 3 -> "12 345,67€")."""
    spec = _format_of(currency)
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, got {minor!r}")
    if minor < 0:
        raise ValueError(f"Steam prices are never negative, got {minor}")
    units, cents = divmod(minor, 10**spec.minor_digits)
    number = _group(units, spec.thousands)
    if spec.minor_digits:
        if cents == 0 and spec.omit_zero_fraction:
            pass
        elif cents == 0 and spec.dash_zero_fraction:
            number += spec.decimal + "--"
        else:
            number += spec.decimal + str(cents).zfill(spec.minor_digits)
    if spec.side == "prefix":
        return spec.symbol + spec.gap + number
    return number + spec.gap + spec.symbol


def _group(units: int, mark: str) -> str:
    digits = str(units)
    if not mark:
        return digits
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return mark.join(groups)
