"""The running simulator's mutable state, shared by the middleware, handlers and admin routes.

`SimulatorConfig` says how it starts; this holds what it is now (limits, faults, latency
and legacy mode can all change at run time through `/__sim/...`).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from aiohttp import web

from simulator.catalogue import Catalogue
from simulator.clock import Clock
from simulator.config import Latency, LegacyMode, NewMarketMode, SimulatorConfig
from simulator.faults import FaultInjector
from simulator.limits import Limiter
from simulator.market import Market
from simulator.stats import Stats


@dataclass(slots=True)
class SimulatorState:
    """Everything one simulator instance knows; one per `web.Application`."""

    config: SimulatorConfig
    clock: Clock
    catalogue: Catalogue
    market: Market
    limiter: Limiter
    faults: FaultInjector
    stats: Stats
    legacy: LegacyMode
    new_market: NewMarketMode
    region_currency: int
    latency: Latency
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    rng: random.Random = field(default_factory=random.Random)

    def latency_s(self) -> float:
        """One draw of the configured extra latency, in seconds."""
        mean, jitter = self.latency.mean_ms, self.latency.jitter_ms
        if mean <= 0 and jitter <= 0:
            return 0.0
        return max(0.0, self.rng.uniform(mean - jitter, mean + jitter)) / 1000

    async def hold(self, seconds: float) -> None:
        """Sleep up to `seconds`, but wake at once when the server begins to shut down."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass


STATE = web.AppKey("simulator_state", SimulatorState)
