"""`steamwatch probe` against the simulator over HTTP: a clean report, then injected drift named.

Issue 15: after a Steam change an operator runs one command and learns which endpoint drifted
and which field: missing, new, or of another type. Exit 1 on drift, so scripts can act on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.config import LimitsConfig, SimulatorConfig
from simulator.server import run_simulator
from steamwatch.probe import SCHEMAS, compare, shape

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = [
    "priceoverview",
    "listings",
    "itemordershistogram",
    "search",
    "QueryListingsForItem",
    "orderbook",
]


@pytest.fixture
async def sim() -> AsyncIterator[str]:
    async with run_simulator(config=SimulatorConfig(limits=LimitsConfig(enabled=False))) as url:
        yield url


async def probe(sim: str, *extra: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    environ["STEAMWATCH_HOME"] = str(ROOT / ".steamwatch-probe-test")  # no stores.json there
    argv = [sys.executable, "-m", "steamwatch", "probe", "--base-url", sim, "--proxy", "direct"]
    return await asyncio.to_thread(
        subprocess.run,
        [*argv, *extra],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def sim_post(sim: str, path: str, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{sim}{path}", json=body) as r:
        assert r.status == 200, await r.text()


def by_endpoint(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["endpoint"]: e for e in report["endpoints"]}


async def test_a_clean_market_reports_every_endpoint_parsed_and_exits_0(sim: str) -> None:
    done = await probe(sim, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    found = by_endpoint(report)
    assert list(found) == ENDPOINTS and report["drift"] is False
    for name, finding in found.items():
        assert (finding["status"], finding["parsed"], finding["drift"]) == (200, True, False), name
        assert finding["missing"] == [] and finding["changed"] == [], name
    human = await probe(sim)
    assert human.returncode == 0
    assert "no drift" in human.stdout and "new    orderbook" in human.stdout


async def test_a_renamed_field_is_named_and_exits_1(sim: str) -> None:
    fault = {"mode": "rename_field", "field": "amtMinSellOrder", "endpoints": ["orderbook"]}
    await sim_post(sim, "/__sim/faults", fault)
    done = await probe(sim, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    book = by_endpoint(report)["orderbook"]
    assert report["drift"] is True and book["drift"] is True and book["parsed"] is False
    assert book["missing"] == ["data.data.amtMinSellOrder*"]
    assert book["unexpected"] == ["data.data.amtMinSellOrder_v2"]
    assert "missing field amtMinSellOrder" in book["parse_error"]
    others = [f for name, f in by_endpoint(report).items() if name != "orderbook"]
    assert not any(f["drift"] for f in others)
    human = await probe(sim)
    assert human.returncode == 1
    assert "missing: data.data.amtMinSellOrder" in human.stdout
    assert "unexpected: data.data.amtMinSellOrder_v2" in human.stdout


async def test_a_moved_route_shows_as_an_html_answer_that_does_not_parse(sim: str) -> None:
    await sim_post(sim, "/__sim/new-market", {"mode": "route_changed"})
    done = await probe(sim, "--json")
    assert done.returncode == 1
    found = by_endpoint(json.loads(done.stdout))
    for name in ("QueryListingsForItem", "orderbook"):
        assert found[name]["parsed"] is False and "HTML" in found[name]["parse_error"]
    assert found["priceoverview"]["parsed"] is True


async def test_nothing_listening_is_no_answer_not_a_crash() -> None:
    done = await probe("http://127.0.0.1:9", "--json", "--timeout", "3")
    assert done.returncode == 3  # nothing to judge: not drift, not fine either
    report = json.loads(done.stdout)
    assert report["drift"] is False and report["unanswered"] == ENDPOINTS
    assert all(f["error"] and f["status"] is None for f in report["endpoints"])


async def test_a_bad_currency_is_refused_by_name(sim: str) -> None:
    done = await probe(sim, "--currency", "DOGE")
    assert done.returncode == 2
    assert "--currency: 'DOGE' is not a Steam currency" in done.stderr


def test_compare_names_a_changed_type_and_skips_fields_under_an_empty_parent() -> None:
    body = {
        "data": {
            "success": True,
            "data": {
                "amtMaxBuyOrder": "5,25€",
                "eCurrency": 4,
                "amtMinSellOrder": None,
                "cBuyOrders": 1,
                "cSellOrders": 0,
            },
        }
    }
    missing, unexpected, changed = compare(SCHEMAS["orderbook"], shape(body))
    # The level arrays are optional: reported absent, without the * of a field the parsers need.
    assert missing == ["data.data.rgCompactBuyOrders", "data.data.rgCompactSellOrders"]
    assert unexpected == []
    assert changed == []  # a string amount is allowed: Steam has sent them both ways
    body["data"]["data"]["cBuyOrders"] = [1]
    _, _, changed = compare(SCHEMAS["orderbook"], shape(body))
    assert changed == ["data.data.cBuyOrders: expected number/string, got array"]
    empty = {"data": {"more": False, "start": 0, "total_count": 0, "listings": [], "facets": []}}
    assert compare(SCHEMAS["QueryListingsForItem"], shape(empty)) == ([], [], [])
