"""Rate limits over real HTTP, per client as Steam sees them: each local proxy is a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest

from simulator import (
    LimitsConfig,
    LocalProxy,
    ManualClock,
    SimulatorConfig,
    WindowLimit,
    local_proxies,
    run_simulator,
)
from tests.fixtures.simulator import KEY

LIMITS = LimitsConfig(
    windows={
        "priceoverview": WindowLimit(3, 60.0),
        "listings": WindowLimit(2, 60.0),
        "histogram": WindowLimit(2, 3600.0),
        "search": WindowLimit(3, 60.0),
    },
    strikes=3,
    strike_window_s=60.0,
    ban_ladder_s=(100.0, 1000.0),
)


@pytest.fixture
async def limited(clock: ManualClock) -> AsyncIterator[str]:
    async with run_simulator(config=SimulatorConfig(limits=LIMITS), clock=clock) as url:
        yield url


@pytest.fixture
async def proxies() -> AsyncIterator[list[LocalProxy]]:
    async with local_proxies(2) as started:
        yield started


def _overview(sim: str) -> str:
    return f"{sim}/market/priceoverview/?appid=440&currency=1&market_hash_name={quote(KEY)}"


async def _get(
    session: aiohttp.ClientSession, url: str, proxy: LocalProxy
) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with session.get(url, proxy=proxy.url) as response:
        return response.status, await response.read(), response.headers


async def _statuses(
    session: aiohttp.ClientSession, url: str, proxy: LocalProxy, count: int
) -> list[int]:
    return [(await _get(session, url, proxy))[0] for _ in range(count)]


async def test_over_the_limit_a_client_gets_a_bare_429_while_another_is_served(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy]
) -> None:
    first, second = proxies
    assert await _statuses(session, _overview(limited), first, 3) == [200, 200, 200]
    status, body, headers = await _get(session, _overview(limited), first)
    assert (status, body) == (429, b"")
    assert "Retry-After" not in headers
    assert await _statuses(session, _overview(limited), second, 3) == [200, 200, 200]


async def test_the_window_slides_with_the_clock(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy], clock: ManualClock
) -> None:
    proxy = proxies[0]
    assert await _statuses(session, _overview(limited), proxy, 4) == [200, 200, 200, 429]
    clock.advance(61)
    assert await _statuses(session, _overview(limited), proxy, 1) == [200]


async def test_groups_are_limited_separately(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy]
) -> None:
    proxy = proxies[0]
    await _statuses(session, _overview(limited), proxy, 4)
    search = f"{limited}/market/search/render/?query=key&norender=1"
    assert await _statuses(session, search, proxy, 1) == [200]


async def test_a_client_that_keeps_calling_is_banned_longer_each_time(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy], clock: ManualClock
) -> None:
    hammer, bystander = proxies
    url = _overview(limited)
    assert await _statuses(session, url, hammer, 6) == [200, 200, 200, 429, 429, 429]
    clock.advance(61)  # the window has slid, but the third strike earned a 100 s ban
    assert await _statuses(session, url, hammer, 1) == [429]
    assert await _statuses(session, url, bystander, 1) == [200]
    async with session.get(f"{limited}/__sim/stats?timestamps=0") as response:
        stats = (await response.json())["clients"]
    assert stats[hammer.source_address]["limits"]["bans"] == 1
    clock.advance(40)
    assert await _statuses(session, url, hammer, 6) == [200, 200, 200, 429, 429, 429]
    clock.advance(101)  # the first ban's length is not enough the second time
    assert await _statuses(session, url, hammer, 1) == [429]
    clock.advance(1000)
    assert await _statuses(session, url, hammer, 1) == [200]


async def test_admin_routes_are_never_limited(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy]
) -> None:
    proxy = proxies[0]
    await _statuses(session, _overview(limited), proxy, 7)  # limited, then banned
    assert set(await _statuses(session, f"{limited}/__sim/health", proxy, 20)) == {200}


async def test_stats_count_each_client_and_bound_their_busiest_window(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy], clock: ManualClock
) -> None:
    first, second = proxies
    await _statuses(session, _overview(limited), first, 4)
    clock.advance(30)
    await _statuses(session, _overview(limited), second, 2)
    async with session.get(f"{limited}/__sim/stats?window=60") as response:
        clients = (await response.json())["clients"]
    one = clients[first.source_address]["endpoints"]["priceoverview"]
    two = clients[second.source_address]["endpoints"]["priceoverview"]
    assert (one["seen"], one["served"], one["rate_limited"]) == (4, 3, 1)
    assert (two["seen"], two["served"], two["rate_limited"]) == (2, 2, 0)
    assert len(one["served_at"]) == 3 and len(two["seen_at"]) == 2
    assert clients[first.source_address]["max_in_window"] == {"priceoverview": 4}


async def test_limits_change_at_run_time(
    limited: str, session: aiohttp.ClientSession, proxies: list[LocalProxy]
) -> None:
    proxy = proxies[0]
    body = {"windows": {"priceoverview": {"limit": 1, "window_s": 60}}}
    async with session.post(f"{limited}/__sim/limits", json=body) as response:
        assert (await response.json())["windows"]["priceoverview"]["limit"] == 1
    assert await _statuses(session, _overview(limited), proxy, 2) == [200, 429]
    async with session.post(f"{limited}/__sim/limits", json={"enabled": False}):
        pass
    assert await _statuses(session, _overview(limited), proxy, 3) == [200, 200, 200]


async def test_bad_limits_are_refused_with_a_reason(
    limited: str, session: aiohttp.ClientSession
) -> None:
    body = {"windows": {"nosuchgroup": {"limit": 1}}}
    async with session.post(f"{limited}/__sim/limits", json=body) as response:
        assert response.status == 400
        assert "nosuchgroup" in (await response.json())["error"]
