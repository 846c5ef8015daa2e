"""`steamwatch history WATCH`: a chart and a table for people, JSON and CSV for scripts.

Run as a subprocess against the test database, with a week of checks and the older hours rolled
up by the same upkeep the watchdog runs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from shared.db import Database, PriceSnapshot
from shared.history import maintain
from tests.fixtures.tasks import add_tasks

ROOT = Path(__file__).resolve().parents[2]


async def history_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    environ.update(STEAMWATCH_DATABASE_URL=database_url, COLUMNS="120")
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "steamwatch", "history", *args],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _week(db: Database) -> tuple[int, list[int]]:
    [task_id] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AK-47 | Redline (Field-Tested)",
                "kind": "lowest_price",
                "check_interval": 600,
            }
        ],
    )
    now = datetime.now(UTC)
    start = (now - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    count = int((now - start) / timedelta(minutes=10))
    prices = [1000 + (i % 13) * 5 for i in range(count)]
    rows = [
        {
            "task_id": task_id,
            "lease_token": uuid.uuid4(),
            "checked_at": start + timedelta(minutes=10 * i),
            "currency": 3,
            "lowest_price": price,
            "volume": i,
        }
        for i, price in enumerate(prices)
    ]
    async with db.session_scope() as session:
        await session.execute(insert(PriceSnapshot), rows)
        await session.execute(text("INSERT INTO history_state VALUES (1, :at)"), {"at": start})
    while (await maintain(db, now)).rolled_hours:
        pass
    return task_id, prices


async def test_json_and_csv_give_every_point_and_agree(db: Database, database_url: str) -> None:
    task_id, prices = await _week(db)
    done = await history_cli(database_url, str(task_id), "--since", "8d", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Seven days of 10-minute checks are about 1,000 raw points: within 2,000, so raw.
    assert report["resolution"] == "raw"
    assert sum(p["checks"] for p in report["points"]) == len(prices)
    assert min(p["min"] for p in report["points"]) == min(prices)
    hourly = await history_cli(
        database_url, str(task_id), "--since", "2d", "--resolution", "1h", "--csv"
    )
    assert hourly.returncode == 0, hourly.stderr
    rows = list(csv.DictReader(io.StringIO(hourly.stdout)))
    assert rows[0].keys() == {"at", "checks", "first", "min", "max", "last", "volume", "currency"}
    assert 47 <= len(rows) <= 49 and all(int(r["checks"]) <= 6 for r in rows)
    assert {r["currency"] for r in rows} == {"3"}


async def test_the_table_and_chart_for_people(db: Database, database_url: str) -> None:
    task_id, _ = await _week(db)
    done = await history_cli(database_url, str(task_id), "--since", "3d", "--resolution", "1h")
    assert done.returncode == 0, done.stderr
    assert "AK-47 | Redline (Field-Tested) (1h, UTC)" in done.stdout  # the chart's title
    assert "10,00€" in done.stdout or "10,--€" in done.stdout  # prices in the watch's currency
    assert "points at 1h; " in done.stdout and "earlier (--json or --csv for all)" in done.stdout


async def test_bad_input_names_what_was_typed(db: Database, database_url: str) -> None:
    task_id, _ = await _week(db)
    cases = [
        (["999999"], "WATCH: no watch with id 999999"),
        ([str(task_id), "--since", "yesterday"], "--since: 'yesterday' is not a time"),
        ([str(task_id), "--since", "30d", "--resolution", "1m"], "--resolution: 1m over this"),
        ([str(task_id), "--since", "now"], "--since: must be before until"),
        ([str(task_id), "--json", "--csv"], "--json and --csv: choose one"),
    ]
    for args, message in cases:
        done = await history_cli(database_url, *args)
        assert done.returncode == 2, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
