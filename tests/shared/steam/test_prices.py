"""Steam price strings: exact reads, strict rejections, and format -> parse round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.steam import (
    SUPPORTED_CURRENCIES,
    PriceFormatError,
    UnknownCurrency,
    currency_code,
    currency_from_wallet_id,
    format_price,
    minor_digits,
    parse_price,
)

SAMPLES = Path(__file__).parents[2] / "fixtures" / "steam_samples"
USD, GBP, EUR, CHF, RUB, PLN, BRL, JPY, NOK = 1, 2, 3, 4, 5, 6, 7, 8, 9
TRY, UAH, CAD, AUD, CNY, KZT, RON = 17, 18, 20, 21, 23, 37, 47
IDR, MYR, PHP, SGD, THB, VND, KRW, MXN, NZD, INR = 10, 11, 12, 13, 14, 15, 16, 19, 22, 24
CLP, PEN, COP, ZAR, HKD, TWD, SAR, AED, SEK, ARS = 25, 26, 27, 28, 29, 30, 31, 32, 33, 34
ILS, BYN, KWD, QAR, CRC, UYU, BGN, HRK, CZK, DKK, HUF = 35, 36, 38, 39, 40, 41, 42, 43, 44, 45, 46


def _sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data


# Strings as Steam shows them. The first block is every price in the captured payloads.
VALID = [
    pytest.param("1,66€", EUR, 166, id="EUR-sample-lowest-1,66"),
    pytest.param("1,63€", EUR, 163, id="EUR-sample-median-1,63"),
    pytest.param("0,03€", EUR, 3, id="EUR-sample-lowest-0,03"),
    pytest.param("0,01€", EUR, 1, id="EUR-sample-median-0,01"),
    pytest.param("¥ 1.01", CNY, 101, id="CNY-sample-lowest-1.01"),
    pytest.param("¥ 1.02", CNY, 102, id="CNY-sample-median-1.02"),
    pytest.param("¥ 0.50", CNY, 50, id="CNY-sample-histogram-0.50"),
    pytest.param("1,10 pуб.", RUB, 110, id="RUB-latin-p-1,10"),
    pytest.param("$1.23", USD, 123, id="USD-1.23"),
    pytest.param("$5", USD, 500, id="USD-no-fraction"),
    pytest.param("$1,234.56", USD, 123456, id="USD-thousands"),
    pytest.param("$2,079.86", USD, 207986, id="USD-2079.86"),
    pytest.param("$1,000,000.00", USD, 100000000, id="USD-million"),
    pytest.param("$0.15 USD", USD, 15, id="USD-outside-US-suffix"),
    pytest.param("\r\n\t\t$0.03\t\t", USD, 3, id="USD-surrounding-whitespace"),
    pytest.param("£2.69", GBP, 269, id="GBP-2.69"),
    pytest.param("£1,234.56", GBP, 123456, id="GBP-thousands"),
    pytest.param("23,--€", EUR, 2300, id="EUR-dash-fraction"),
    pytest.param("1.234,56€", EUR, 123456, id="EUR-dot-thousands"),
    pytest.param("1 234,56€", EUR, 123456, id="EUR-space-thousands"),
    pytest.param("1\u00a0234,56\u00a0€", EUR, 123456, id="EUR-nbsp"),
    pytest.param("1\u202f234,56€", EUR, 123456, id="EUR-narrow-nbsp"),
    pytest.param("CHF 1.50", CHF, 150, id="CHF-1.50"),
    pytest.param("CHF 1 234.50", CHF, 123450, id="CHF-space-thousands"),
    pytest.param("CHF 1'234.50", CHF, 123450, id="CHF-apostrophe-thousands"),
    pytest.param("336 pуб.", RUB, 33600, id="RUB-whole"),
    pytest.param("292,19 pуб.", RUB, 29219, id="RUB-292,19"),
    pytest.param("1500,01 pуб.", RUB, 150001, id="RUB-no-thousands-mark"),
    pytest.param("1 500,01 pуб.", RUB, 150001, id="RUB-space-thousands"),
    pytest.param("12,50 руб.", RUB, 1250, id="RUB-cyrillic-r"),
    pytest.param("4,99zł", PLN, 499, id="PLN-4,99"),
    pytest.param("1 234,56zł", PLN, 123456, id="PLN-thousands"),
    pytest.param("R$ 5,49", BRL, 549, id="BRL-5,49"),
    pytest.param("R$ 1.234,56", BRL, 123456, id="BRL-thousands"),
    pytest.param("¥ 123", JPY, 12300, id="JPY-123"),
    pytest.param("¥ 12,345", JPY, 1234500, id="JPY-thousands"),
    pytest.param("￥ 980", JPY, 98000, id="JPY-fullwidth-yen"),
    pytest.param("12,50 kr", NOK, 1250, id="NOK-12,50"),
    pytest.param("1.234,56 kr", NOK, 123456, id="NOK-thousands"),
    pytest.param("36,72 TL", TRY, 3672, id="TRY-36,72"),
    pytest.param("1.234,56 TL", TRY, 123456, id="TRY-thousands"),
    pytest.param("163,46₴", UAH, 16346, id="UAH-163,46"),
    pytest.param("4 659,03₴", UAH, 465903, id="UAH-thousands"),
    pytest.param("70₴", UAH, 7000, id="UAH-whole"),
    pytest.param("CDN$ 1.23", CAD, 123, id="CAD-1.23"),
    pytest.param("CDN$ 1,234.56", CAD, 123456, id="CAD-thousands"),
    pytest.param("A$ 0.99", AUD, 99, id="AUD-0.99"),
    pytest.param("A$ 12,345.67", AUD, 1234567, id="AUD-thousands"),
    pytest.param("¥ 4,234.35", CNY, 423435, id="CNY-thousands"),
    pytest.param("￥ 4,234.35", CNY, 423435, id="CNY-fullwidth-yuan"),
    pytest.param("1 234,56₸", KZT, 123456, id="KZT-thousands"),
    pytest.param("500₸", KZT, 50000, id="KZT-whole"),
    pytest.param("87,20₸", KZT, 8720, id="KZT-87,20"),
    pytest.param("4.99 lei", RON, 499, id="RON-4.99"),
    pytest.param("1,234.56 lei", RON, 123456, id="RON-thousands"),
    pytest.param("$90,071,992,547,409.93", USD, 9007199254740993, id="USD-beyond-float"),
    # Whole-unit currencies: a lowest price without decimals while the median has them.
    pytest.param("¥ 6,228", JPY, 622800, id="JPY-whole-lowest"),
    pytest.param("¥ 8,330.36", JPY, 833036, id="JPY-median-with-fraction"),
    pytest.param("JP¥ 6,228", JPY, 622800, id="JPY-JP-yen-symbol"),
    pytest.param("Rp 700 697", IDR, 70069700, id="IDR-whole-lowest"),
    pytest.param("Rp 937 354.99", IDR, 93735499, id="IDR-median-with-fraction"),
    pytest.param("Rp\u00a015\u00a0000", IDR, 1500000, id="IDR-nbsp-thousands"),
    pytest.param("1 757₴", UAH, 175700, id="UAH-whole-thousands"),
    # Older encodings: an HTML entity, a JSON escape left in the text, a trailing space.
    pytest.param("261,35&#8364; ", EUR, 26135, id="EUR-html-entity-trailing-space"),
    pytest.param("1,66&euro;", EUR, 166, id="EUR-named-entity"),
    pytest.param("12,50\\u20ac", EUR, 1250, id="EUR-json-escape-left-in-text"),
    pytest.param("CN¥ 4.20", CNY, 420, id="CNY-CN-yen-symbol"),
    pytest.param("2.39元", CNY, 239, id="CNY-yuan-character-suffix"),
    pytest.param("1,10 ₽", RUB, 110, id="RUB-ruble-sign"),
    # The rest of Steam's currencies, as v_currencyformat() and the market write them.
    pytest.param("RM12.34", MYR, 1234, id="MYR"),
    pytest.param("P1,234.56", PHP, 123456, id="PHP"),
    pytest.param("₱58.00", PHP, 5800, id="PHP-peso-sign"),
    pytest.param("S$1.35", SGD, 135, id="SGD"),
    pytest.param("฿36.00", THB, 3600, id="THB"),
    pytest.param("25.400₫", VND, 2540000, id="VND-whole"),
    pytest.param("₩ 1,380", KRW, 138000, id="KRW-whole"),
    pytest.param("Mex$ 18.50", MXN, 1850, id="MXN"),
    pytest.param("NZ$ 1.68", NZD, 168, id="NZD"),
    pytest.param("₹ 8,400", INR, 840000, id="INR-whole"),
    pytest.param("₹ 84.25", INR, 8425, id="INR-with-fraction"),
    pytest.param("CLP$ 9.500", CLP, 950000, id="CLP-whole"),
    pytest.param("S/.3.75", PEN, 375, id="PEN"),
    pytest.param("COL$ 41.000", COP, 4100000, id="COP-whole"),
    pytest.param("R 18.30", ZAR, 1830, id="ZAR"),
    pytest.param("R 1 830.00", ZAR, 183000, id="ZAR-space-thousands"),
    pytest.param("HK$ 7.80", HKD, 780, id="HKD"),
    pytest.param("NT$ 320", TWD, 32000, id="TWD-whole"),
    pytest.param("3.75 SR", SAR, 375, id="SAR"),
    pytest.param("3.67 AED", AED, 367, id="AED"),
    pytest.param("10.60 kr", SEK, 1060, id="SEK-dot-decimal"),
    pytest.param("ARS$ 980,00", ARS, 98000, id="ARS"),
    pytest.param("₪3.70", ILS, 370, id="ILS"),
    pytest.param("Br3.30", BYN, 330, id="BYN"),
    pytest.param("0.31 KD", KWD, 31, id="KWD"),
    pytest.param("3.64 QR", QAR, 364, id="QAR"),
    pytest.param("₡510", CRC, 51000, id="CRC-whole"),
    pytest.param("$U40", UYU, 4000, id="UYU-whole"),
    pytest.param("1.80 лв", BGN, 180, id="BGN"),
    pytest.param("6.90 kn", HRK, 690, id="HRK"),
    pytest.param("23.00 Kč", CZK, 2300, id="CZK"),
    pytest.param("6.85 kr.", DKK, 685, id="DKK"),
    pytest.param("360.00 Ft", HUF, 36000, id="HUF"),
]


@pytest.mark.parametrize(("text", "currency", "expected"), VALID)
def test_parse_price_reads_real_steam_strings_exactly(
    text: str, currency: int, expected: int
) -> None:
    assert parse_price(text, currency) == expected


def test_valid_table_covers_every_supported_currency() -> None:
    covered = {param.values[1] for param in VALID}
    assert covered == SUPPORTED_CURRENCIES


@pytest.mark.parametrize(
    ("name", "currency"),
    [
        pytest.param("priceoverview__eur_success__KevinButzke08-CSP.json", EUR, id="eur"),
        pytest.param("priceoverview__eur_success_pretty__Hridaya.json", EUR, id="eur-pretty"),
        pytest.param("priceoverview__cny_success__BeyondDimension-SteamClient.json", CNY, id="cny"),
    ],
)
def test_every_priceoverview_sample_price_parses(name: str, currency: int) -> None:
    body = _sample(name)
    parsed = {key: parse_price(body[key], currency) for key in ("lowest_price", "median_price")}
    assert all(value > 0 for value in parsed.values())
    assert format_price(parsed["lowest_price"], currency) == body["lowest_price"]


def test_histogram_display_price_matches_its_minor_unit_field() -> None:
    body = _sample("itemordershistogram__norender1_eur__Hridaya.json")
    assert parse_price(body["buy_order_price"], EUR) == int(body["highest_buy_order"])
    assert parse_price(body["buy_order_table"][0]["price"], EUR) == 3


def test_legacy_histogram_table_cells_parse_and_top_matches_highest_buy_order() -> None:
    body = _sample("itemordershistogram__legacy_html_tables_cny_schinese__ding221-steam.json")
    cells = re.findall(r'<td align="right" class="">([^<]*)</td>', body["buy_order_table"])
    plain = [cell for cell in cells if "或更低" not in cell]  # "or lower" marks the last row
    prices = [parse_price(cell, CNY) for cell in plain]
    assert prices == [50, 47, 46, 41, 37]
    assert prices[0] == int(body["highest_buy_order"])


GARBAGE = [
    pytest.param("", EUR, id="empty"),
    pytest.param("   ", USD, id="only-spaces"),
    pytest.param("NaN", USD, id="nan"),
    pytest.param("--", EUR, id="dashes"),
    pytest.param(",--€", EUR, id="dash-fraction-without-units"),
    pytest.param("$-1.00", USD, id="minus-after-symbol"),
    pytest.param("-$1.00", USD, id="minus-before-symbol"),
    pytest.param("+1,00€", EUR, id="plus-sign"),
    pytest.param("$1e5", USD, id="exponent"),
    pytest.param("$1.2.3", USD, id="two-decimal-marks"),
    pytest.param("1,23,45€", EUR, id="two-decimal-marks-comma"),
    pytest.param("$1.234", USD, id="three-decimal-digits"),
    pytest.param("1,234€", EUR, id="three-decimal-digits-comma"),
    pytest.param("$1.5", USD, id="one-decimal-digit"),
    pytest.param("$12,34.56", USD, id="short-thousands-group"),
    pytest.param("$1,23,456.00", USD, id="indian-grouping"),
    pytest.param("$1234,567.00", USD, id="long-leading-group"),
    pytest.param("1.23€", EUR, id="dot-decimal-in-comma-currency"),
    pytest.param("$1 234,56", USD, id="mixed-marks"),
    pytest.param("$007.00", USD, id="leading-zeros"),
    pytest.param("1,66 zł", EUR, id="wrong-symbol-pln-for-eur"),
    pytest.param("$1.23", EUR, id="wrong-symbol-usd-for-eur"),
    pytest.param("¥ 1.01", USD, id="wrong-symbol-yen-for-usd"),
    pytest.param("¥ 1.0", JPY, id="jpy-one-fraction-digit"),
    pytest.param("1,10 pуб", RUB, id="rub-missing-dot"),
    pytest.param("0,03", EUR, id="no-symbol"),
    pytest.param("€", EUR, id="symbol-only"),
    pytest.param("<span>1,66€</span>", EUR, id="html-tags"),
    pytest.param("1,66&nbsp", EUR, id="html-entity-unterminated"),
    pytest.param("1,66&lt;b&gt;€", EUR, id="escaped-html-tag"),
    pytest.param("¥ 0.36 或更低", CNY, id="cny-or-lower-suffix"),
    pytest.param("$１.２３", USD, id="fullwidth-digits"),
    pytest.param("1,66€ 1,63€", EUR, id="two-prices"),
    pytest.param("$" + "9" * 80, USD, id="absurdly-long"),
]


@pytest.mark.parametrize(("text", "currency"), GARBAGE)
def test_parse_price_rejects_garbage_and_quotes_it(text: str, currency: int) -> None:
    with pytest.raises(PriceFormatError) as caught:
        parse_price(text, currency)
    assert repr(text) in str(caught.value)
    assert caught.value.text == text
    assert caught.value.currency == currency
    assert isinstance(caught.value, ValueError)


def test_parse_price_rejects_a_missing_value() -> None:
    with pytest.raises(PriceFormatError, match="None"):
        parse_price(None, EUR)  # type: ignore[arg-type]


FORMATTED = [
    pytest.param(166, EUR, "1,66€", id="EUR-cents"),
    pytest.param(2300, EUR, "23,--€", id="EUR-whole-dashes"),
    pytest.param(123456789, EUR, "1 234 567,89€", id="EUR-thousands"),
    pytest.param(101, CNY, "¥ 1.01", id="CNY"),
    pytest.param(110, RUB, "1,10 pуб.", id="RUB-kopecks"),
    pytest.param(33600, RUB, "336 pуб.", id="RUB-whole"),
    pytest.param(150001, RUB, "1500,01 pуб.", id="RUB-no-thousands"),
    pytest.param(123456, USD, "$1,234.56", id="USD-thousands"),
    pytest.param(0, USD, "$0.00", id="USD-zero"),
    pytest.param(1234500, JPY, "¥ 12,345", id="JPY"),
    pytest.param(1234501, JPY, "¥ 12,345.01", id="JPY-hundredths-shown-when-present"),
    pytest.param(123450, CHF, "CHF 1 234.50", id="CHF"),
    pytest.param(465903, UAH, "4 659,03₴", id="UAH"),
    pytest.param(123456, BRL, "R$ 1.234,56", id="BRL"),
    pytest.param(499, RON, "4.99 lei", id="RON"),
    pytest.param(622800, JPY, "¥ 6,228", id="JPY-whole"),
    pytest.param(70069700, IDR, "Rp 700 697", id="IDR-whole"),
    pytest.param(93735499, IDR, "Rp 937 354.99", id="IDR-fraction"),
    pytest.param(175700, UAH, "1 757₴", id="UAH-whole"),
    pytest.param(2540000, VND, "25.400₫", id="VND"),
    pytest.param(375, PEN, "S/.3.75", id="PEN"),
    pytest.param(685, DKK, "6.85 kr.", id="DKK"),
]


@pytest.mark.parametrize(("minor", "currency", "expected"), FORMATTED)
def test_format_price_writes_steam_display_style(minor: int, currency: int, expected: str) -> None:
    assert format_price(minor, currency) == expected


ROUND_TRIP_VALUES = [*range(0, 1101), 9999, 10000, 99999, 100000, 123456789, 10**15 + 7]


@pytest.mark.parametrize("currency", sorted(SUPPORTED_CURRENCIES), ids=currency_code)
def test_format_then_parse_round_trips_over_a_range(currency: int) -> None:
    back = [parse_price(format_price(value, currency), currency) for value in ROUND_TRIP_VALUES]
    assert back == ROUND_TRIP_VALUES


@given(
    minor=st.integers(min_value=0, max_value=10**18),
    currency=st.sampled_from(sorted(SUPPORTED_CURRENCIES)),
)
def test_format_then_parse_round_trips_for_any_amount(minor: int, currency: int) -> None:
    assert parse_price(format_price(minor, currency), currency) == minor


def test_format_price_refuses_negative_amounts() -> None:
    with pytest.raises(ValueError, match="-5"):
        format_price(-5, USD)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: parse_price("$1.00", 999), id="parse-unknown-id"),
        pytest.param(lambda: parse_price("Rp 15 000", 48), id="parse-unknown-48"),
        pytest.param(lambda: format_price(100, 0), id="format-zero-id"),
        pytest.param(lambda: currency_code(2003), id="code-of-wallet-id"),
        pytest.param(lambda: minor_digits(True), id="digits-of-bool"),
    ],
)
def test_unknown_currency_raises_unknown_currency(call: Any) -> None:
    with pytest.raises(UnknownCurrency) as caught:
        call()
    assert not isinstance(caught.value, PriceFormatError)
    assert isinstance(caught.value, ValueError)


def test_unknown_currency_keeps_the_id() -> None:
    with pytest.raises(UnknownCurrency) as caught:
        parse_price("1,00€", 48)
    assert caught.value.currency == 48
    assert "48" in str(caught.value)


@pytest.mark.parametrize(
    ("currencyid", "expected"),
    [
        pytest.param(2003, EUR, id="int-2003"),
        pytest.param("2003", EUR, id="str-2003"),
        pytest.param("2002", GBP, id="str-2002-sample"),
        pytest.param(2001, USD, id="int-2001-sample"),
        pytest.param(2047, RON, id="int-2047"),
        pytest.param(2010, IDR, id="int-2010-idr"),
        pytest.param("2024", INR, id="str-2024-inr"),
        pytest.param(3, EUR, id="plain-3"),
        pytest.param("23", CNY, id="plain-str-23"),
    ],
)
def test_currency_from_wallet_id(currencyid: int | str, expected: int) -> None:
    assert currency_from_wallet_id(currencyid) == expected


def test_currency_from_wallet_id_reads_the_listing_samples() -> None:
    old = _sample("listings_render__excerpt_1of10_eur__pvanassen-steam-api.json")
    new = _sample("listings_render__listinginfo_entry_gbp_to_usd__InternalSteamWebAPI-wiki.json")
    (old_listing,) = old["listinginfo"].values()
    (new_listing,) = new["listinginfo"].values()
    assert currency_from_wallet_id(old_listing["currencyid"]) == EUR
    assert currency_from_wallet_id(new_listing["currencyid"]) == GBP
    assert currency_from_wallet_id(new_listing["converted_currencyid"]) == USD


@pytest.mark.parametrize("currencyid", [2048, 48, "abc", "", 0, -1, "2003.0", 2000])
def test_currency_from_wallet_id_rejects_unknown_ids(currencyid: int | str) -> None:
    with pytest.raises(UnknownCurrency):
        currency_from_wallet_id(currencyid)


def test_currency_table_is_steams_ecurrencycode_list() -> None:
    codes = {currency: currency_code(currency) for currency in SUPPORTED_CURRENCIES}
    assert codes == {
        1: "USD",
        2: "GBP",
        3: "EUR",
        4: "CHF",
        5: "RUB",
        6: "PLN",
        7: "BRL",
        8: "JPY",
        9: "NOK",
        17: "TRY",
        18: "UAH",
        20: "CAD",
        21: "AUD",
        10: "IDR",
        11: "MYR",
        12: "PHP",
        13: "SGD",
        14: "THB",
        15: "VND",
        16: "KRW",
        19: "MXN",
        22: "NZD",
        24: "INR",
        25: "CLP",
        26: "PEN",
        27: "COP",
        28: "ZAR",
        29: "HKD",
        30: "TWD",
        31: "SAR",
        32: "AED",
        33: "SEK",
        34: "ARS",
        35: "ILS",
        36: "BYN",
        38: "KWD",
        39: "QAR",
        40: "CRC",
        41: "UYU",
        42: "BGN",
        43: "HRK",
        44: "CZK",
        45: "DKK",
        46: "HUF",
        23: "CNY",
        37: "KZT",
        47: "RON",
    }
    assert len(codes) == 47  # ECurrencyCode 1 to 47: every currency Steam's table lists
    # Steam counts hundredths in every currency, JPY included, so strings and integer fields agree.
    assert {c: minor_digits(c) for c in SUPPORTED_CURRENCIES if minor_digits(c) != 2} == {}
