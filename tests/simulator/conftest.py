"""Shared fixtures: a manual clock, one HTTP client session, and a simulator without limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from simulator import LimitsConfig, ManualClock, SimulatorConfig, run_simulator


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
