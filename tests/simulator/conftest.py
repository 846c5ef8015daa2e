"""Shared fixtures: a manual clock, one HTTP client session, and a simulator without limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest

from simulator import LimitsConfig, ManualClock, SimulatorConfig, run_simulator

REDLINE = "AK-47 | Redline (Field-Tested)"
KEY = "Mann Co. Supply Crate Key"
NO_SALES = "Souvenir AWP | Dragon Lore (Factory New)"
QUERY_ACTION = {"x-valve-request-type": "queryAction"}
OPT_OUT = {"bMarketOptOut": "1"}


def item_path(appid: int, name: str) -> str:
    return f"/market/listings/{appid}/{quote(name, safe='')}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[str]:
    """A simulator whose rate limits are off, so format tests can call freely."""
    config = SimulatorConfig(limits=LimitsConfig(enabled=False))
    async with run_simulator(config=config, clock=clock) as url:
        yield url
