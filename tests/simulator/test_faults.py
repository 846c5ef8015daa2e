"""Injected faults: each mode answers as it says, only where and when it is aimed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from simulator import LocalProxy, ManualClock, local_proxies
from simulator.faults import FaultInjector, FaultRule, FaultSpecError
from tests.fixtures.simulator import KEY

# --- rules on their own -------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"mode": "explode"},
        {"mode": "null", "probability": 2},
        {"mode": "null", "every": 0},
        {"mode": "null", "endpoints": ["nowhere"]},
        {"mode": "null", "colour": "red"},
        {"mode": "http_5xx", "status": 99},
        "null",
    ],
    ids=[
        "unknown-mode",
        "probability-above-1",
        "every-zero",
        "unknown-endpoint",
        "unknown-key",
        "status-out-of-range",
        "not-an-object",
    ],
)
def test_bad_specs_are_refused(spec: Any) -> None:
    with pytest.raises(FaultSpecError):
        FaultRule.from_spec(spec)


def test_an_endpoint_group_expands_to_its_endpoints() -> None:
    rule = FaultRule.from_spec({"mode": "null", "endpoints": ["listings"]})
    assert rule.endpoints == {"listings_render", "listings_page", "actions"}


def test_every_nth_fires_on_the_nth_matching_request_only() -> None:
    injector = FaultInjector(seed=1)
    injector.add(FaultRule(mode="null", every=3, endpoints=frozenset({"priceoverview"})), 0.0)
    fired = [injector.pick("priceoverview", "a", 0.0) is not None for _ in range(6)]
    assert fired == [False, False, True, False, False, True]
    assert injector.pick("histogram", "a", 0.0) is None


def test_times_and_duration_end_a_fault() -> None:
    injector = FaultInjector(seed=1)
    injector.add(FaultRule(mode="null", times=2), 0.0)
    injector.add(FaultRule(mode="slow", duration_s=10.0), 0.0)
    modes = [getattr(injector.pick("search", "a", 5.0), "mode", None) for _ in range(3)]
    assert modes == ["null", "null", "slow"]
    assert injector.pick("search", "a", 10.0) is None


def test_a_probability_fires_about_that_often() -> None:
    injector = FaultInjector(seed=3)
    injector.add(FaultRule(mode="null", probability=0.25), 0.0)
    fired = sum(injector.pick("search", "a", 0.0) is not None for _ in range(2000))
    assert 400 < fired < 600


# --- over HTTP ----------------------------------------------------------------------------


def _overview(sim: str) -> str:
    return f"{sim}/market/priceoverview/?appid=440&currency=1&market_hash_name={quote(KEY)}"


async def _inject(session: aiohttp.ClientSession, sim: str, **spec: Any) -> None:
    async with session.post(f"{sim}/__sim/faults", json=spec) as response:
        assert response.status == 200, await response.text()


@pytest.fixture
async def proxies() -> AsyncIterator[list[LocalProxy]]:
    async with local_proxies(2) as started:
        yield started


@pytest.mark.parametrize(
    ("spec", "status", "check"),
    [
        ({"mode": "http_5xx"}, {500, 502, 503}, lambda text: "<html" in text),
        ({"mode": "http_5xx", "status": 502}, {502}, lambda text: "<html" in text),
        ({"mode": "html_error"}, {200}, lambda text: "An error was encountered" in text),
        ({"mode": "html_error", "status": 503}, {503}, lambda text: "<html" in text),
        ({"mode": "null"}, {200}, lambda text: text == "null"),
        ({"mode": "success_false"}, {200}, lambda text: json.loads(text) == {"success": False}),
        ({"mode": "rate_limit_storm", "duration_s": 30}, {429}, lambda text: text == ""),
    ],
    ids=["5xx", "5xx-502", "html-error-200", "html-error-503", "null", "success-false", "storm"],
)
async def test_each_fault_mode_answers_as_it_says(
    sim: str, session: aiohttp.ClientSession, spec: dict[str, Any], status: set[int], check: Any
) -> None:
    await _inject(session, sim, **spec)
    async with session.get(_overview(sim)) as response:
        assert response.status in status
        assert check(await response.text())


async def test_malformed_json_is_cut_short(sim: str, session: aiohttp.ClientSession) -> None:
    await _inject(session, sim, mode="malformed_json")
    async with session.get(_overview(sim)) as response:
        assert (response.status, response.content_type) == (200, "application/json")
        with pytest.raises(ValueError):
            json.loads(await response.text())


async def test_slow_answers_correctly_but_late(sim: str, session: aiohttp.ClientSession) -> None:
    await _inject(session, sim, mode="slow", delay_ms=300)
    began = time.monotonic()
    async with session.get(_overview(sim)) as response:
        body = await response.json()
    assert time.monotonic() - began >= 0.3
    assert body["success"] is True


async def test_timeout_holds_the_request_past_the_clients_patience(
    sim: str, session: aiohttp.ClientSession
) -> None:
    await _inject(session, sim, mode="timeout")
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(_overview(sim), timeout=aiohttp.ClientTimeout(total=0.5)):
            pass


async def test_a_storm_limits_every_client_and_passes_with_its_duration(
    sim: str, session: aiohttp.ClientSession, proxies: list[LocalProxy], clock: ManualClock
) -> None:
    await _inject(session, sim, mode="rate_limit_storm", duration_s=30)
    for proxy in proxies:
        async with session.get(_overview(sim), proxy=proxy.url) as response:
            assert (response.status, await response.read()) == (429, b"")
    clock.advance(31)
    async with session.get(_overview(sim), proxy=proxies[0].url) as response:
        assert response.status == 200


async def test_a_fault_aimed_at_one_client_spares_the_others(
    sim: str, session: aiohttp.ClientSession, proxies: list[LocalProxy]
) -> None:
    target, other = proxies
    await _inject(session, sim, mode="null", client=target.source_address)
    async with session.get(_overview(sim), proxy=target.url) as response:
        assert await response.text() == "null"
    async with session.get(_overview(sim), proxy=other.url) as response:
        assert (await response.json())["success"] is True


async def test_a_fault_aimed_at_one_item_spares_the_others_on_every_endpoint(
    sim: str, session: aiohttp.ClientSession
) -> None:
    await _inject(session, sim, mode="http_5xx", status=502, item=KEY)
    async with session.get(_overview(sim)) as response:
        assert response.status == 502
    listing = f"{sim}/market/listings/440/{quote(KEY, safe='')}/render/?currency=1&format=json"
    async with session.get(listing) as response:
        assert response.status == 502
    other = f"{sim}/market/priceoverview/?appid=730&currency=1&market_hash_name="
    other += quote("AK-47 | Redline (Field-Tested)")
    async with session.get(other) as response:
        assert response.status == 200 and (await response.json())["success"] is True


async def test_a_fault_aimed_at_one_endpoint_spares_the_others(
    sim: str, session: aiohttp.ClientSession
) -> None:
    await _inject(session, sim, mode="null", endpoints=["histogram"])
    async with session.get(_overview(sim)) as response:
        assert (await response.json())["success"] is True


async def test_faults_are_counted_listed_and_cleared(
    sim: str, session: aiohttp.ClientSession
) -> None:
    await _inject(session, sim, mode="success_false", every=2)
    for _ in range(4):
        async with session.get(_overview(sim)) as response:
            await response.read()
    async with session.get(f"{sim}/__sim/faults") as response:
        (listed,) = (await response.json())["faults"]
    assert (listed["mode"], listed["matched"], listed["fired"]) == ("success_false", 4, 2)
    async with session.get(f"{sim}/__sim/stats?timestamps=0") as response:
        counts = (await response.json())["clients"]["127.0.0.1"]["endpoints"]["priceoverview"]
    assert (counts["seen"], counts["served"], counts["faults"]) == (4, 2, 2)
    async with session.delete(f"{sim}/__sim/faults") as response:
        assert (await response.json())["faults"] == []


async def test_a_bad_fault_is_refused_with_a_reason(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{sim}/__sim/faults", json={"mode": "explode"}) as response:
        assert response.status == 400
        assert "mode must be one of" in (await response.json())["error"]


async def test_latency_is_added_at_run_time(sim: str, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{sim}/__sim/latency", json={"mean_ms": 250, "jitter_ms": 0}):
        pass
    began = time.monotonic()
    async with session.get(_overview(sim)) as response:
        assert response.status == 200
    assert time.monotonic() - began >= 0.25


async def test_reset_forgets_stats_and_faults(sim: str, session: aiohttp.ClientSession) -> None:
    await _inject(session, sim, mode="null")
    async with session.get(_overview(sim)) as response:
        await response.read()
    async with session.post(f"{sim}/__sim/reset") as response:
        assert response.status == 200
    async with session.get(f"{sim}/__sim/stats") as response:
        assert (await response.json())["clients"] == {}
    async with session.get(_overview(sim)) as response:
        assert (await response.json())["success"] is True
