"""The `sim` command: option parsing, and a real process that serves and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from urllib.parse import quote

import aiohttp
import click
import pytest
from click.testing import CliRunner

from simulator.cli import parse_fault, parse_limit, sim
from simulator.config import WindowLimit
from simulator.faults import FaultSpecError
from tests.fixtures.simulator import KEY


def test_help_names_every_fault_mode_and_option() -> None:
    result = CliRunner().invoke(sim, ["--help"])
    assert result.exit_code == 0
    for word in ("--proxies", "--legacy", "--limit", "--fault", "rate_limit_storm", "--latency-ms"):
        assert word in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("null", {"mode": "null"}),
        (
            "http_5xx:probability=0.1,endpoints=priceoverview+histogram",
            {"mode": "http_5xx", "probability": 0.1, "endpoints": ["priceoverview", "histogram"]},
        ),
        ('{"mode": "slow", "delay_ms": 500}', {"mode": "slow", "delay_ms": 500}),
    ],
    ids=["bare-mode", "short-form", "json"],
)
def test_parse_fault(text: str, expected: dict[str, object]) -> None:
    assert parse_fault(text) == expected


def test_parse_fault_refuses_typos() -> None:
    with pytest.raises(FaultSpecError):
        parse_fault("http_5xx:probabilty=0.1")


def test_parse_limit() -> None:
    assert parse_limit("priceoverview=20/60") == ("priceoverview", WindowLimit(20, 60.0))
    assert parse_limit("histogram=10/3600/distinct") == (
        "histogram",
        WindowLimit(10, 3600.0, distinct=True),
    )
    for bad in ("everything=1/1", "search=1", "search=1/2/3"):
        with pytest.raises(click.BadParameter):
            parse_limit(bad)


async def test_the_command_serves_through_its_proxies_and_stops_on_sigterm(
    session: aiohttp.ClientSession,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "--port",
        "0",
        "--proxies",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        status = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        proxy_line = (await asyncio.wait_for(process.stdout.readline(), 5)).decode()
        assert status.startswith("steamwatch sim: serving http://127.0.0.1:")
        url = status.split()[3]
        proxy = proxy_line.split()[1]
        target = f"{url}/market/priceoverview/?appid=440&currency=1&market_hash_name={quote(KEY)}"
        async with session.get(target, proxy=proxy) as response:
            assert (await response.json())["success"] is True
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), 10)
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert b"stopped" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
