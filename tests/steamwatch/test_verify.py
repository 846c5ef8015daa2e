"""`tasks add` asks Steam (here the simulator, over HTTP) whether the item exists, before writing.

Issue 19, 5: a misspelt name was accepted and found out hours later. Now it is refused at once
with the close names Steam has, unless --no-verify; Steam that cannot be asked is no verdict.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from shared.db import Database
from simulator.config import LimitsConfig, SimulatorConfig
from simulator.server import run_simulator

ROOT = Path(__file__).resolve().parents[2]
MISSPELT = "AK47 | Redline (Field Tested)"
RIGHT = "AK-47 | Redline (Field-Tested)"


@pytest.fixture
async def sim() -> AsyncIterator[str]:
    async with run_simulator(config=SimulatorConfig(limits=LimitsConfig(enabled=False))) as url:
        yield url


async def add(
    database_url: str, item: str, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    environ.update(STEAMWATCH_DATABASE_URL=database_url, **env)
    argv = [sys.executable, "-m", "steamwatch", "tasks", "add", "--owner", "alice"]
    argv += ["--appid", "730", "--item", item, "--currency", "EUR", "--kind", "lowest_price"]
    argv += ["--interval", "300", "--max-price", "12,50€", *extra]
    return await asyncio.to_thread(
        subprocess.run, argv, env=environ, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


async def names(db: Database) -> list[str]:
    async with db.session_scope() as s:
        return list((await s.scalars(text("SELECT market_hash_name FROM tasks ORDER BY id"))).all())


async def asked(sim: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{sim}/__sim/stats") as r:
        stats: dict[str, Any] = await r.json()
    return sum(int(e["seen"]) for e in stats["totals"].values())


async def test_a_misspelt_item_is_refused_with_the_close_names_steam_has(
    db: Database, database_url: str, redis_url: str, sim: str
) -> None:
    done = await add(
        database_url, MISSPELT, STEAMWATCH_REDIS_URL=redis_url, STEAMWATCH_STEAM_BASE_URL=sim
    )
    assert done.returncode == 2, done.stderr
    assert f"--item: Steam has no item {MISSPELT!r} in app 730" in done.stderr
    assert f"close names: {RIGHT!r}" in done.stderr
    assert "--no-verify" in done.stderr
    assert done.stdout == ""
    assert await names(db) == []


async def test_an_item_steam_knows_is_added_after_one_question(
    db: Database, database_url: str, redis_url: str, sim: str
) -> None:
    done = await add(
        database_url, RIGHT, STEAMWATCH_REDIS_URL=redis_url, STEAMWATCH_STEAM_BASE_URL=sim
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert await names(db) == [RIGHT]
    assert await asked(sim) == 1


async def test_no_verify_adds_without_asking(
    db: Database, database_url: str, redis_url: str, sim: str
) -> None:
    done = await add(
        database_url,
        MISSPELT,
        "--no-verify",
        STEAMWATCH_REDIS_URL=redis_url,
        STEAMWATCH_STEAM_BASE_URL=sim,
    )
    assert done.returncode == 0, done.stderr
    assert await names(db) == [MISSPELT]
    assert await asked(sim) == 0


async def test_steam_out_of_reach_is_no_verdict_the_watch_is_added_and_that_is_said(
    db: Database, database_url: str, redis_url: str
) -> None:
    done = await add(
        database_url,
        MISSPELT,
        STEAMWATCH_REDIS_URL=redis_url,
        STEAMWATCH_STEAM_BASE_URL="http://127.0.0.1:9",  # nothing listens on the discard port
    )
    assert done.returncode == 0, done.stderr
    assert "the item is not verified with Steam (" in done.stderr
    assert "adding it anyway" in done.stderr
    assert await names(db) == [MISSPELT]


async def test_without_redis_it_says_it_could_not_ask(db: Database, database_url: str) -> None:
    done = await add(database_url, MISSPELT, STEAMWATCH_HOME="/nonexistent-steamwatch-home")
    assert done.returncode == 0, done.stderr
    assert "not verified with Steam: no Redis" in done.stderr
    assert await names(db) == [MISSPELT]
