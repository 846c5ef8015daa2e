"""One task definition (CLI options, a CSV row, a JSON object) validated into a ``tasks`` row.

Input is a mapping of plain values, mostly text. Thresholds are written the way people think of
prices, in the currency's main unit ("12.5", or "12,50€" read with Steam's own format) and are
stored as the integer minor units :mod:`shared.alerts` expects. The first problem found
raises :class:`TaskSpecError` naming the field as it was spelt; nothing is half-built.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, cast

from shared.alerts import (
    Condition,
    InvalidCondition,
    LowestPriceCondition,
    NewListingCondition,
    OrderBookCondition,
    parse_conditions,
)
from shared.db import WATCH_KINDS, WatchKind
from shared.steam import (
    SUPPORTED_CURRENCIES,
    PriceError,
    currency_code,
    format_price,
    minor_digits,
    parse_price,
)

OWNER_MAX = 64
NAME_MAX = 255
APPID_MAX = 2**31 - 1
INTERVAL_MAX = 7 * 86_400
PRICE_MAX = 10**9  # in main units; Steam's dearest listing is far below this in any currency
DEFAULT_CURRENCY = 1  # USD, as the table's default

#: The task's own fields, by the names the CLI options use.
TASK_FIELDS = ("owner", "appid", "item", "currency", "kind", "interval")
#: Other spellings of task fields: the ``tasks`` table's column names.
ALIASES = {"market_hash_name": "item", "check_interval": "interval"}
_MODELS = (LowestPriceCondition, NewListingCondition, OrderBookCondition)
#: Condition fields of every kind, in a stable order.
CONDITION_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(f for m in _MODELS for f in m.model_fields))
_PRICE_FIELDS = {m.KIND: m.PRICE_FIELDS for m in _MODELS}
FIELD_NAMES = frozenset(TASK_FIELDS) | frozenset(ALIASES) | frozenset(CONDITION_FIELDS)

CURRENCY_IDS: dict[str, int] = {currency_code(c): c for c in sorted(SUPPORTED_CURRENCIES)}
_DIGITS = re.compile(r"[+-]?[0-9]{1,30}")
_DURATION = re.compile(r"([0-9]{1,12}) ?([smhd]?)", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_NUMBER_MAX_LENGTH = 64
_COMMA_NUMBER = re.compile(r"[+-]?[0-9]+,[0-9]+")
# Control characters, lone surrogates and line/paragraph separators; other Unicode is fine.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class TaskSpecError(ValueError):
    """Raised when a task definition is invalid; `field` names the culprit as it was given."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A valid task definition: exactly what a new ``tasks`` row needs."""

    owner: str
    appid: int
    market_hash_name: str
    currency: int
    kind: WatchKind
    check_interval: int
    condition: Condition

    @property
    def watch(self) -> tuple[str, int, str, str]:
        """What makes a watch unique (constraint ``uq_tasks_watch``)."""
        return (self.owner, self.appid, self.market_hash_name, self.kind)

    @property
    def conditions(self) -> dict[str, Any]:
        """The conditions as stored in the JSONB column (minor units, no unset or default
        fields: an order book's ``match`` is stored only when it is ``all``)."""
        return self.condition.model_dump(mode="json", exclude_defaults=True)

    def row(self) -> dict[str, Any]:
        """Column values for an INSERT into ``tasks``; the rest take the table's defaults."""
        return {
            "owner": self.owner,
            "appid": self.appid,
            "market_hash_name": self.market_hash_name,
            "currency": self.currency,
            "kind": self.kind,
            "conditions": self.conditions,
            "check_interval": self.check_interval,
        }


def field_key(name: str) -> str:
    """The canonical spelling of a field name: "Max-Price " -> "max_price"."""
    return name.strip().lower().replace("-", "_")


def parse_task(data: Mapping[str, Any], *, min_interval: int) -> TaskSpec:
    """Validate one task definition; `min_interval` is the configured floor, in seconds."""
    fields, raw_conditions = _split(data)

    def required(name: str) -> tuple[str, Any]:
        if name not in fields:
            raise TaskSpecError(name, "is required")
        return fields[name]

    owner = _bounded_text(*required("owner"), max_length=OWNER_MAX)
    appid = _appid(*required("appid"))
    name = _bounded_text(*required("item"), max_length=NAME_MAX)
    spelt, given = fields.get("currency", ("currency", None))
    currency = DEFAULT_CURRENCY if _blank(given) else _currency(spelt, given)
    kind = _kind(*required("kind"))
    interval = _interval(*required("interval"), min_interval=min_interval)
    condition = _condition(kind, raw_conditions, currency)
    return TaskSpec(owner, appid, name, currency, kind, interval, condition)


def _split(data: Mapping[str, Any]) -> tuple[dict[str, tuple[str, Any]], dict[str, Any]]:
    """Task fields as {canonical: (spelling, value)} and the condition fields given."""
    if not isinstance(data, Mapping):
        raise TaskSpecError("task", f"must be an object of fields, got {_type_of(data)}")
    given: dict[str, tuple[str, Any]] = {}
    for raw, value in data.items():
        key = field_key(raw) if isinstance(raw, str) else repr(raw)
        if key not in FIELD_NAMES:
            raise TaskSpecError(key, "is not a task field")
        canonical = ALIASES.get(key, key)
        if value is None:
            continue  # a JSON null: not given
        if canonical in given:
            other, other_value = given[canonical]
            if _blank(value):
                continue  # CSV columns "item" and "market_hash_name", this one empty
            if not _blank(other_value):
                raise TaskSpecError(key, f"is given twice (also as {other})")
        given[canonical] = (key, value)
    fields = {name: given[name] for name in TASK_FIELDS if name in given}
    # An empty condition cell is not given: a CSV has columns for every kind's conditions.
    conditions = {
        name: value
        for name, (_, value) in given.items()
        if name not in TASK_FIELDS and not _blank(value)
    }
    return fields, conditions


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _type_of(value: object) -> str:
    return "true/false" if isinstance(value, bool) else type(value).__name__


def _bounded_text(field: str, value: object, *, max_length: int) -> str:
    if not isinstance(value, str):
        raise TaskSpecError(field, f"must be text, got {_type_of(value)}")
    text = value.strip()
    if not text:
        raise TaskSpecError(field, "must not be empty")
    if len(text) > max_length:
        raise TaskSpecError(field, f"must be at most {max_length} characters, got {len(text)}")
    for char in text:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise TaskSpecError(field, f"must not contain control characters (U+{ord(char):04X})")
    return text


def _whole(field: str, value: object, what: str) -> int:
    """An int, or ASCII digits in text; never a bool or a float, even 730.0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise TaskSpecError(field, f"must be {what}, got {value!r}")


def _appid(field: str, value: object) -> int:
    appid = _whole(field, value, "a whole number (Steam's app id, e.g. 730)")
    if not 0 < appid <= APPID_MAX:
        raise TaskSpecError(field, f"must be between 1 and {APPID_MAX}, got {appid}")
    return appid


def _currency(field: str, value: object) -> int:
    currency: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        currency = value
    elif isinstance(value, str):
        text = value.strip()
        currency = int(text) if _DIGITS.fullmatch(text) else CURRENCY_IDS.get(text.upper())
    if currency not in SUPPORTED_CURRENCIES:
        codes = ", ".join(CURRENCY_IDS)
        raise TaskSpecError(
            field, f"{value!r} is not a supported currency; use {codes} or Steam's currency id"
        )
    return cast(int, currency)


def _kind(field: str, value: object) -> WatchKind:
    text = field_key(value) if isinstance(value, str) else None
    if text not in WATCH_KINDS:
        raise TaskSpecError(field, f"must be one of {', '.join(WATCH_KINDS)}, got {value!r}")
    return cast(WatchKind, text)


def parse_interval(value: object, *, min_interval: int, field: str = "interval") -> int:
    """A check interval alone, as :func:`parse_task` reads it (a change of interval only)."""
    return _interval(field, value, min_interval=min_interval)


def _interval(field: str, value: object, *, min_interval: int) -> int:
    """Seconds, from an int or text: "300", "90s", "5m", "2h", "1d"."""
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds is None:
        raise TaskSpecError(
            field, f"must be whole seconds, or a number with s, m, h or d (5m), got {value!r}"
        )
    if seconds < min_interval:
        raise TaskSpecError(
            field,
            f"must be at least {min_interval} seconds (the configured minimum), got {seconds}",
        )
    if seconds > INTERVAL_MAX:
        raise TaskSpecError(
            field, f"must be at most 7 days ({INTERVAL_MAX} seconds), got {seconds}"
        )
    return seconds


def _condition(kind: WatchKind, given: dict[str, Any], currency: int) -> Condition:
    values = dict(given)
    for name, value in given.items():
        if name in _PRICE_FIELDS[kind]:
            values[name] = _price(name, value, currency)
        elif isinstance(value, float):
            values[name] = repr(value)  # 0.07, not the binary float nearest to it
        elif isinstance(value, str):
            values[name] = value.strip()
    try:
        return parse_conditions(kind, values, currency=currency)
    except InvalidCondition as exc:
        raise TaskSpecError(exc.field, exc.reason) from exc


def _price(field: str, value: object, currency: int) -> int:
    """Minor units of a threshold: a number in main units (12.5) or a price text (12,50€)."""
    amount: Decimal
    if isinstance(value, bool):
        raise TaskSpecError(field, "must be a price, got true/false")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal) and value.is_finite():
        amount = value
    elif isinstance(value, str) and _NUMBER.fullmatch(text := value.strip()):
        if len(text) > _NUMBER_MAX_LENGTH:
            raise TaskSpecError(field, f"must be at most {_NUMBER_MAX_LENGTH} characters")
        amount = Decimal(text)
    elif (
        isinstance(value, str)
        and _COMMA_NUMBER.fullmatch(text := value.strip())
        and _decimal_comma(currency)
    ):
        # "10,5" in a currency Steam writes with a decimal comma (12,50€): the same number.
        if len(text) > _NUMBER_MAX_LENGTH:
            raise TaskSpecError(field, f"must be at most {_NUMBER_MAX_LENGTH} characters")
        amount = Decimal(text.replace(",", "."))
    elif isinstance(value, str):
        try:
            amount = Decimal(parse_price(value, currency)).scaleb(-minor_digits(currency))
        except PriceError as exc:
            example = format_price(1250, currency)
            raise TaskSpecError(
                field, f"{exc}; write a number such as 12.5 or a price such as {example!r}"
            ) from exc
    else:
        raise TaskSpecError(field, f"must be a number or a price text, got {value!r}")
    return _minor_units(field, amount, currency)


def _decimal_comma(currency: int) -> bool:
    """Whether Steam writes ``currency`` with a decimal comma (12,50€), not a point ($12.50)."""
    return "12,5" in format_price(1250, currency)


def _minor_units(field: str, amount: Decimal, currency: int) -> int:
    if amount <= 0:
        raise TaskSpecError(field, "must be greater than 0")
    if amount > PRICE_MAX:
        raise TaskSpecError(field, f"must be at most {PRICE_MAX} {currency_code(currency)}")
    digits = minor_digits(currency)
    with localcontext(prec=2 * _NUMBER_MAX_LENGTH):  # exact for any accepted input
        scaled = amount.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise TaskSpecError(
            field,
            f"has more decimals than {currency_code(currency)} has ({digits}): {amount}",
        )
    return int(scaled)
