"""Three fetcher processes share four proxies through the pool, judged by the simulator's counts.

The simulator sees each local proxy as a different client (its own source address), the way
Steam sees IPs. Below its limit the pool must never draw a 429; above it, 429s come, the
cool-down keeps the proxy quiet, and the proxy serves again once it ends.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from simulator.config import LimitsConfig, SimulatorConfig, WindowLimit
from simulator.proxy import LocalProxy, local_proxies
from simulator.server import run_simulator

WINDOW = 5.0


@dataclass
class Market:
    sim: str
    proxies: list[LocalProxy]
    items: list[str]

    async def stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.sim}/__sim/stats", params={"window": str(WINDOW)}) as r:
                return await r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def market(request: pytest.FixtureRequest) -> AsyncIterator[Market]:
    sim_limit = request.param
    limits = LimitsConfig(
        windows={
            "priceoverview": WindowLimit(sim_limit, WINDOW),
            "listings": WindowLimit(4, 60.0),
            "histogram": WindowLimit(10, 3600.0),
            "search": WindowLimit(20, 60.0),
        },
        strikes=1_000_000,  # no IP bans here: this test is about our own cool-down
    )
    async with (
        run_simulator(config=SimulatorConfig(limits=limits)) as sim,
        local_proxies(4) as proxies,
    ):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{sim}/__sim/catalogue", params={"appid": "730"}) as r:
                items = [i["market_hash_name"] for i in (await r.json())["items"][:20]]
        yield Market(sim, proxies, items)


async def run_workers(
    market: Market, redis_url: str, *, budget: str, duration: float, cooldowns: str = "300"
) -> list[dict[str, Any]]:
    argv = [
        "--redis",
        redis_url,
        "--sim",
        market.sim,
        "--budget",
        budget,
        "--duration",
        str(duration),
        "--cooldowns",
        cooldowns,
    ]
    for proxy in market.proxies:
        argv += ["--proxy", proxy.url]
    for item in market.items:
        argv += ["--item", item]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fixtures.budget_worker",
            *argv,
            "--seed",
            str(i),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(3)
    ]
    reports = []
    for process in processes:
        out, err = await asyncio.wait_for(process.communicate(), timeout=duration + 60)
        assert process.returncode == 0, err.decode()[-2000:]
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    return reports


@pytest.mark.parametrize("market", [10], indirect=True)
async def test_budgets_below_the_limit_draw_no_429_in_60s(market: Market, redis_url: str) -> None:
    reports = await run_workers(market, redis_url, budget=f"9/{WINDOW}", duration=60)
    stats = await market.stats()
    clients = stats["clients"]
    assert set(clients) == {p.source_address for p in market.proxies}  # all four used
    for address, entry in clients.items():
        assert entry["max_in_window"]["priceoverview"] <= 9, address  # never over budget
    assert stats["totals"]["priceoverview"]["rate_limited"] == 0
    assert sum(r["outcomes"].get("RateLimited", 0) for r in reports) == 0
    served = stats["totals"]["priceoverview"]["served"]
    # The budget is used, not just respected: 4 proxies x 9 per 5.5 s for 60 s is ~392.
    assert served >= 300
    assert sum(r["outcomes"]["ok"] for r in reports) == served


@pytest.mark.parametrize("market", [5], indirect=True)
async def test_budgets_above_the_limit_cool_down_and_come_back(
    market: Market, redis_url: str
) -> None:
    cooldown = 3.0
    reports = await run_workers(
        market, redis_url, budget=f"8/{WINDOW}", duration=20, cooldowns=str(cooldown)
    )
    stats = await market.stats()
    assert stats["totals"]["priceoverview"]["rate_limited"] > 0
    limited = [(t, proxy) for r in reports for t, proxy in r["rate_limited_at"]]
    assert limited, "the workers saw no 429"
    # After a proxy's first 429 it stays quiet for the cool-down (bar requests already in
    # flight), then it is served again.
    by_label = {}
    for proxy in market.proxies:
        port = proxy.url.rsplit(":", 1)[1]
        by_label[f"127.0.0.1:{port}"] = proxy.source_address
    first_429: dict[str, float] = {}
    for t, label in sorted(limited):
        first_429.setdefault(by_label[label], t)
    came_back = 0
    for address, t0 in first_429.items():
        seen = stats["clients"][address]["endpoints"]["priceoverview"]["seen_at"]
        served = stats["clients"][address]["endpoints"]["priceoverview"]["served_at"]
        during = [t for t in seen if t0 + 0.3 < t < t0 + cooldown - 0.1]
        assert during == [], f"{address} was used during its cool-down"
        if any(t > t0 + cooldown for t in served):
            came_back += 1
    assert came_back >= 1
