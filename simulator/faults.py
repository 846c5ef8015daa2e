"""Faults injected on demand: what can go wrong with Steam, when, and for whom.

`rename_field` is format drift: the real answer with one JSON key renamed wherever it appears
(`{"mode": "rename_field", "field": "amtMinSellOrder"}`), as when Steam changes a format.

A rule names a mode and narrows where it applies (endpoints, one client, a duration,
every Nth or a probability, at most N times). Rules come from CLI flags or from
`POST /__sim/faults` as JSON, so both go through `FaultRule.from_spec`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from simulator.config import ENDPOINTS, GROUP_OF, Endpoint

FaultMode = Literal[
    "http_5xx",
    "timeout",
    "slow",
    "malformed_json",
    "html_error",
    "null",
    "success_false",
    "rate_limit_storm",
    "rename_field",
]
FAULT_MODES: tuple[FaultMode, ...] = get_args(FaultMode)
_KEYS = frozenset(
    {
        "mode",
        "probability",
        "every",
        "endpoints",
        "client",
        "duration_s",
        "status",
        "delay_ms",
        "times",
        "item",
        "field",
        "rename_to",
    }
)


class FaultSpecError(ValueError):
    """Raised when a fault specification cannot be understood."""

    def __init__(self, spec: object, reason: str) -> None:
        super().__init__(f"bad fault {spec!r}: {reason}")
        self.spec = spec
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One kind of failure and where it applies; no probability and no `every` means always."""

    mode: FaultMode
    probability: float | None = None
    every: int | None = None
    endpoints: frozenset[Endpoint] | None = None  # None: every market endpoint
    client: str | None = None  # None: every client
    duration_s: float | None = None  # None: until cleared
    status: int | None = None  # http_5xx, html_error, success_false: the status to send
    delay_ms: float | None = None  # slow: the delay; timeout: the hold
    times: int | None = None  # fire at most this many times
    item: str | None = None  # None: every item; else only requests about this market_hash_name
    field: str | None = None  # rename_field: the JSON key to rename, wherever it appears
    rename_to: str | None = None  # rename_field: its new name (default: the key + "_v2")

    @classmethod
    def from_spec(cls, spec: Any) -> FaultRule:
        """Validate a JSON-like mapping; endpoint groups ("listings") expand to endpoints."""
        if not isinstance(spec, dict):
            raise FaultSpecError(spec, "expected an object")
        unknown = set(spec) - _KEYS
        if unknown:
            raise FaultSpecError(spec, f"unknown keys {sorted(unknown)}")
        mode = spec.get("mode")
        if mode not in FAULT_MODES:
            raise FaultSpecError(spec, f"mode must be one of {', '.join(FAULT_MODES)}")
        try:
            rule = cls(
                mode=mode,
                probability=_number(spec, "probability", 0.0, 1.0),
                every=_integer(spec, "every"),
                endpoints=_endpoints(spec),
                client=_text(spec, "client"),
                duration_s=_number(spec, "duration_s", 0.0, None),
                status=_integer(spec, "status"),
                delay_ms=_number(spec, "delay_ms", 0.0, None),
                times=_integer(spec, "times"),
                item=_text(spec, "item"),
                field=_text(spec, "field"),
                rename_to=_text(spec, "rename_to"),
            )
        except (TypeError, ValueError) as exc:
            raise FaultSpecError(spec, str(exc)) from exc
        if rule.mode == "rename_field" and not rule.field:
            raise FaultSpecError(spec, "rename_field needs the field to rename")
        if rule.status is not None and not 200 <= rule.status <= 599:
            raise FaultSpecError(spec, "status must be an HTTP status from 200 to 599")
        return rule

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"mode": self.mode}
        for key in sorted(_KEYS - {"mode"}):
            value = getattr(self, key)
            if value is not None:
                spec[key] = sorted(value) if isinstance(value, frozenset) else value
        return spec


def _number(spec: dict[str, Any], key: str, low: float, high: float | None) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} must be a number")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{key} must be between {low} and {high if high is not None else 'inf'}")
    return float(value)


def _integer(spec: dict[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer")
    return value


def _text(spec: dict[str, Any], key: str) -> str | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _endpoints(spec: dict[str, Any]) -> frozenset[Endpoint] | None:
    names = spec.get("endpoints")
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    chosen: set[Endpoint] = set()
    for name in names:
        if name in ENDPOINTS:
            chosen.add(name)
        elif name in GROUP_OF.values():
            chosen.update(e for e, group in GROUP_OF.items() if group == name)
        else:
            raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")
    return frozenset(chosen)


@dataclass(slots=True)
class ActiveFault:
    """A rule in force: when it expires and how often it has matched and fired."""

    id: int
    rule: FaultRule
    until: float | None
    matched: int = 0
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "until": self.until,
            "matched": self.matched,
            "fired": self.fired,
            **self.rule.to_spec(),
        }


@dataclass(slots=True)
class FaultInjector:
    """The rules in force; `pick` decides which one, if any, hits a request."""

    seed: int
    _active: list[ActiveFault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:faults")

    def add(self, rule: FaultRule, now: float) -> ActiveFault:
        until = now + rule.duration_s if rule.duration_s is not None else None
        fault = ActiveFault(next(self._ids), rule, until)
        self._active.append(fault)
        return fault

    def clear(self) -> None:
        self._active.clear()

    def active(self, now: float) -> list[ActiveFault]:
        self._active = [f for f in self._active if f.until is None or now < f.until]
        return list(self._active)

    def pick(
        self,
        endpoint: Endpoint,
        client: str,
        now: float,
        *,
        storm: bool = False,
        item: str | None = None,
    ) -> FaultRule | None:
        """The first rule that applies to this request and fires; counts it.

        Storms are asked for apart (`storm=True`) because they act before rate limits
        and every other fault after, so a request refused for its rate spends no fault.
        """
        for fault in self.active(now):
            rule = fault.rule
            if (rule.mode == "rate_limit_storm") != storm:
                continue
            if rule.endpoints is not None and endpoint not in rule.endpoints:
                continue
            if rule.client is not None and rule.client != client:
                continue
            if rule.item is not None and rule.item != item:
                continue
            fault.matched += 1
            if rule.every is not None and fault.matched % rule.every:
                continue
            if rule.probability is not None and self._rng.random() >= rule.probability:
                continue
            fault.fired += 1
            if rule.times is not None and fault.fired >= rule.times:
                self._active.remove(fault)
            return rule
        return None

    def choose_status(self, rule: FaultRule) -> int:
        """http_5xx's status: the rule's, or one of the three Steam's edge sends."""
        return rule.status if rule.status is not None else self._rng.choice((500, 502, 503))
