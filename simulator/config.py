"""The simulator's settings at start: market seed, rate limits, latency, faults, legacy mode.

Frozen, so one value can be handed to `create_app` and compared; what changes at run
time (through `/__sim/...`) lives in the running state, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Endpoint = Literal[
    "priceoverview",
    "listings_render",
    "listings_page",
    "histogram",
    "actions",
    "orderbook",
    "search",
]
ENDPOINTS: tuple[Endpoint, ...] = (
    "priceoverview",
    "listings_render",
    "listings_page",
    "histogram",
    "actions",
    "orderbook",
    "search",
)

Group = Literal["priceoverview", "listings", "histogram", "search"]
GROUP_OF: dict[Endpoint, Group] = {
    "priceoverview": "priceoverview",
    "listings_render": "listings",
    "listings_page": "listings",
    "actions": "listings",
    "histogram": "histogram",
    "orderbook": "histogram",
    "search": "search",
}

LegacyMode = Literal["on", "html", "redirect"]
"""on: the old endpoints work; html / redirect: Steam has turned them off."""

NewMarketMode = Literal["on", "route_changed"]
"""on: `/market/actions` and `/market/orderbook` answer; route_changed: Steam has moved them (as
it did on 2026-07-24 and 2026-08-19) and the old routes answer with the market's HTML page."""


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `limit` requests in any `window_s` seconds, per client.

    With `distinct`, `limit` counts different items instead, and asking again for an
    item already counted is free: the order histogram's "10 distinct items an hour".
    """

    limit: int
    window_s: float
    distinct: bool = False


def _default_windows() -> dict[Group, WindowLimit]:
    # Community-measured per-IP limits (Valve publishes none), see steam-samples/README.md.
    return {
        "priceoverview": WindowLimit(20, 60.0),
        "listings": WindowLimit(4, 60.0),
        "histogram": WindowLimit(10, 3600.0, distinct=True),
        "search": WindowLimit(20, 60.0),
    }


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Per-client window limits and the ban ladder for clients that keep calling when told no.

    `strikes` 429s within `strike_window_s` earn the next ban on the ladder; each ban is
    longer than the last (the last rung repeats), as Steam escalates to long IP bans.
    """

    enabled: bool = True
    windows: dict[Group, WindowLimit] = field(default_factory=_default_windows)
    strikes: int = 10
    strike_window_s: float = 600.0
    ban_ladder_s: tuple[float, ...] = (300.0, 3600.0, 6 * 3600.0, 24 * 3600.0)

    def scaled(self, factor: float) -> LimitsConfig:
        """The same limits with every duration multiplied by `factor` (tests use 0.01)."""
        return replace(
            self,
            windows={g: replace(w, window_s=w.window_s * factor) for g, w in self.windows.items()},
            strike_window_s=self.strike_window_s * factor,
            ban_ladder_s=tuple(step * factor for step in self.ban_ladder_s),
        )


@dataclass(frozen=True, slots=True)
class Latency:
    """Added to every market response: uniform in mean ± jitter milliseconds."""

    mean_ms: float = 0.0
    jitter_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything `create_app` needs; the defaults behave like Steam on a quiet day."""

    seed: int = 730
    legacy: LegacyMode = "on"
    new_market: NewMarketMode = "on"
    region_currency: int = 1  # the new market prices in the caller's region's currency
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    latency: Latency = field(default_factory=Latency)
    faults: tuple[dict[str, object], ...] = ()  # fault specs, as POST /__sim/faults takes them
    tick_seconds: float = 60.0
    book_cap: int = 300
    timeout_hold_s: float = 300.0  # the "timeout" fault holds a request this long at most
    stats_ring: int = 4096  # timestamps kept per client and endpoint
