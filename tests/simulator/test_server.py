"""Serving: a free port, and a shutdown that never waits on a held `timeout` request."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import aiohttp

from simulator import ManualClock, SimulatorConfig, run_simulator
from tests.fixtures.simulator import KEY


async def test_two_simulators_get_different_free_ports(clock: ManualClock) -> None:
    async with run_simulator(clock=clock) as first, run_simulator(clock=clock) as second:
        assert first != second and first.startswith("http://127.0.0.1:")


async def test_shutdown_is_quick_while_a_timeout_fault_holds_a_request(
    clock: ManualClock, session: aiohttp.ClientSession
) -> None:
    config = SimulatorConfig(faults=({"mode": "timeout"},))  # holds up to 300 s by default

    async def hold_one(url: str) -> int:
        target = f"{url}/market/priceoverview/?appid=440&currency=1&market_hash_name={quote(KEY)}"
        try:
            async with session.get(target) as response:
                return response.status
        except aiohttp.ClientError:
            return 0  # the server went away first: also fine

    async def held(url: str) -> bool:
        async with session.get(f"{url}/__sim/faults") as response:
            return bool((await response.json())["faults"][0]["fired"])

    async with run_simulator(config=config, clock=clock) as url:
        task = asyncio.create_task(hold_one(url))
        for _ in range(200):  # until the server reports the request caught by the fault
            if await held(url):
                break
            await asyncio.sleep(0.01)
        assert await held(url)
        began = time.monotonic()
    assert time.monotonic() - began < 3.0
    assert await asyncio.wait_for(task, 5) in {0, 504}
