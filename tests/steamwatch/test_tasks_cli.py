"""`steamwatch tasks` as a real process against real PostgreSQL.

Given a database holding a few watches, when a command runs, I expect its output and the rows
it changed; when it is refused, I expect exit code 2, a message naming the field (and the line,
for an import) and the tasks table exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text, update

from shared.db import Database, PriceSnapshot, Task
from shared.tasks import parse_task
from steamwatch.tasks import tasks

ROOT = Path(__file__).resolve().parents[2]
EUR, USD = 3, 1
REDLINE = "AK-47 | Redline (Field-Tested)"
ASIIMOV = "AWP | Asiimov (Field-Tested)"
KEY = "Mann Co. Supply Crate Key"


async def cli(
    database_url: str, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m steamwatch tasks ARGS` with only this database configured."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    environ.update(STEAMWATCH_DATABASE_URL=database_url, **env)
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "steamwatch", "tasks", *args],
        env=environ,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def table(db: Database) -> list[dict[str, Any]]:
    """Every row and column of `tasks`, in id order."""
    async with db.session_scope() as session:
        rows = await session.execute(text("SELECT * FROM tasks ORDER BY id"))
        return [dict(row) for row in rows.mappings()]


async def seed(db: Database, *definitions: dict[str, Any]) -> list[int]:
    rows = [parse_task(d, min_interval=30).row() for d in definitions]
    async with db.session_scope() as session:
        return list(await session.scalars(insert(Task).returning(Task.id), rows))


def watch(owner: str, item: str, kind: str = "lowest_price", **more: Any) -> dict[str, Any]:
    base = {"owner": owner, "appid": 730, "item": item, "currency": "EUR", "kind": kind}
    if kind == "lowest_price":
        base["max_price"] = "12,50€"
    return {"interval": 300, **base, **more}


EXISTING = (
    watch("alice", REDLINE),
    watch("bob", ASIIMOV, "order_book", currency="USD", max_lowest_sell="$40.00"),
)


async def db_now(db: Database) -> Any:
    async with db.session_scope() as session:
        return await session.scalar(text("SELECT clock_timestamp()"))


# --- add ------------------------------------------------------------------------------------

GOOD_ADD = {
    "--owner": "carol",
    "--appid": "730",
    "--item": ASIIMOV,
    "--currency": "EUR",
    "--kind": "lowest_price",
    "--interval": "300",
    "--max-price": "12,50€",
}


def add_args(**changes: str | None) -> list[str]:
    """GOOD_ADD with options changed (max_price="1" is --max-price 1; None drops one)."""
    options = dict(GOOD_ADD)
    for name, value in changes.items():
        option = "--" + name.replace("_", "-")
        if value is None:
            options.pop(option, None)
        else:
            options[option] = value
    return ["add", *[part for pair in options.items() for part in pair]]


BAD_ADDS = [
    pytest.param(add_args(owner=None), "--owner: is required", id="owner-missing"),
    pytest.param(add_args(owner=""), "--owner: must not be empty", id="owner-empty"),
    pytest.param(add_args(owner="o" * 65), "--owner: must be at most 64", id="owner-too-long"),
    pytest.param(add_args(owner="car\x07ol"), "--owner: must not contain control", id="owner-ctrl"),
    pytest.param(add_args(appid="cs2"), "--appid: must be a whole number", id="appid-text"),
    pytest.param(add_args(appid="730.5"), "--appid: must be a whole number", id="appid-float"),
    pytest.param(add_args(appid="0"), "--appid: must be between 1 and", id="appid-zero"),
    pytest.param(add_args(appid="-730"), "--appid: must be between 1 and", id="appid-negative"),
    pytest.param(add_args(appid=str(2**31)), "--appid: must be between 1", id="appid-too-big"),
    pytest.param(add_args(item="   "), "--item: must not be empty", id="item-blank"),
    pytest.param(add_args(item="x" * 256), "--item: must be at most 255", id="item-too-long"),
    pytest.param(add_args(item="AWP\nAsiimov"), "--item: must not contain control", id="item-nl"),
    pytest.param(add_args(currency="XBT"), "--currency: 'XBT' is not a supported", id="cur-code"),
    pytest.param(add_args(currency="99"), "--currency: '99' is not a supported", id="cur-id"),
    pytest.param(add_args(kind="cheapest"), "--kind: must be one of", id="kind-unknown"),
    pytest.param(add_args(kind=None), "--kind: is required", id="kind-missing"),
    pytest.param(add_args(interval="29"), "--interval: must be at least 30", id="interval-floor"),
    pytest.param(add_args(interval="8d"), "--interval: must be at most 7 days", id="interval-max"),
    pytest.param(add_args(interval="soon"), "--interval: must be whole seconds", id="interval-txt"),
    pytest.param(add_args(max_price=None), "--max-price: is required", id="price-missing"),
    pytest.param(add_args(max_price="12.505"), "--max-price: has more decimals", id="price-3dp"),
    pytest.param(add_args(max_price="$3.49"), "--max-price: cannot read '$3.49'", id="price-usd"),
    pytest.param(add_args(max_price="0"), "--max-price: must be greater than 0", id="price-zero"),
    pytest.param(
        add_args(kind="new_listings", float_min="0.5", float_max="0.2"),
        "--float-min: must not exceed --float-max",
        id="float-range",
    ),
    pytest.param(
        add_args(kind="new_listings", float_max="1.5"),
        "--float-max: must be between 0 and 1",
        id="float-out-of-range",
    ),
    pytest.param(
        add_args(float_min="0.1"),
        "--float-min: is not a field of lowest_price conditions",
        id="float-on-lowest-price",
    ),
    pytest.param(
        add_args(kind="order_book", max_price=None),
        "--max-lowest-sell: at least one of --max-lowest-sell, --min-highest-buy, --sell-depth-count "
        "(with --sell-depth-price) and --buy-depth-count (with --buy-depth-price) must be set",
        id="book-no-threshold",
    ),
    pytest.param(
        add_args(currency="USD", max_price="10,5"),
        "--max-price: cannot read '10,5' as a USD price",
        id="price-comma-in-usd",
    ),
    pytest.param(
        add_args(owner="alice", item=REDLINE),
        "duplicate watch (owner, appid, item, kind): task 1 already watches",
        id="duplicate-of-existing",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_ADDS)
async def test_a_bad_add_is_refused_naming_the_field_and_changes_nothing(
    db: Database, database_url: str, args: list[str], message: str
) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    done = await cli(database_url, *args)
    assert done.returncode == 2, done.stderr
    assert f"steamwatch: {message}" in done.stderr
    assert done.stdout == ""
    assert await table(db) == before


async def test_an_unknown_match_is_refused_naming_the_flag_and_changes_nothing(
    db: Database, database_url: str
) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    args = add_args(kind="order_book", max_price=None, max_lowest_sell="1", match="both")
    done = await cli(database_url, *args)
    assert done.returncode == 2
    assert "Invalid value for '--match': 'both' is not one of 'any', 'all'" in done.stderr
    assert await table(db) == before


async def test_order_book_match_all_is_stored_and_shown_and_any_is_the_default(
    db: Database, database_url: str
) -> None:
    both = await cli(
        database_url,
        *add_args(
            kind="order_book", max_price=None, max_lowest_sell="1,50€", min_highest_buy="0,80"
        ),
        "--match",
        "all",
    )
    assert both.returncode == 0, both.stderr
    either = await cli(
        database_url,
        *add_args(
            kind="order_book",
            owner="dave",
            max_price=None,
            max_lowest_sell="1,50",
            min_highest_buy="0,80",
        ),
    )
    assert either.returncode == 0, either.stderr
    rows = await table(db)
    assert [r["conditions"] for r in rows] == [
        {"max_lowest_sell": 150, "min_highest_buy": 80, "match": "all"},
        {"max_lowest_sell": 150, "min_highest_buy": 80},
    ]
    listed = await cli(database_url, "list", COLUMNS="250")
    assert "sell <= 1,50€ and buy >= 0,80€" in listed.stdout
    assert "sell <= 1,50€ or buy >= 0,80€" in listed.stdout


async def test_a_comma_decimal_is_read_in_a_currency_written_with_one(
    db: Database, database_url: str
) -> None:
    done = await cli(database_url, *add_args(currency="EUR", max_price="10,5"))
    assert done.returncode == 0, done.stderr
    assert [r["conditions"] for r in await table(db)] == [{"max_price": 1050}]


async def test_the_interval_floor_comes_from_the_settings(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    done = await cli(database_url, *add_args(interval="90"), STEAMWATCH_MIN_CHECK_INTERVAL="120")
    assert done.returncode == 2
    assert "interval: must be at least 120 seconds" in done.stderr
    assert await table(db) == before
    allowed = await cli(database_url, *add_args(interval="2m"), STEAMWATCH_MIN_CHECK_INTERVAL="120")
    assert allowed.returncode == 0, allowed.stderr


async def test_add_then_list_and_show_as_json(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    added = await cli(
        database_url, *add_args(kind="new_listings", max_price="80", float_max="0.07")
    )
    assert added.returncode == 0, added.stderr
    task_id = int(added.stdout)
    assert task_id == 3

    listed = await cli(database_url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [1, 2, 3]
    new = rows[2]
    assert {k: new[k] for k in ("owner", "appid", "market_hash_name", "currency", "kind")} == {
        "owner": "carol",
        "appid": 730,
        "market_hash_name": ASIIMOV,
        "currency": EUR,
        "kind": "new_listings",
    }
    assert new["conditions"] == {"max_price": 8000, "float_max": "0.07"}
    assert (new["check_interval"], new["status"], new["currency_code"]) == (300, "active", "EUR")

    shown = await cli(database_url, "show", str(task_id), "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert {k: v for k, v in detail.items() if k != "history"} == new
    assert detail["history"] == []


async def test_add_json_prints_the_stored_row(db: Database, database_url: str) -> None:
    done = await cli(
        database_url,
        *add_args(
            kind="order_book",
            currency="usd",
            max_price=None,
            max_lowest_sell="1.5",
            min_highest_buy="$0.80",
            interval="10m",
        ),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    (row,) = await table(db)
    assert printed["id"] == row["id"]
    expected = {"max_lowest_sell": 150, "min_highest_buy": 80}
    assert printed["conditions"] == row["conditions"] == expected
    assert (row["currency"], row["check_interval"], row["kind"]) == (USD, 600, "order_book")
    assert printed["next_check"] == row["next_check"].isoformat()


async def test_concurrent_adds_of_one_watch_make_one_task(db: Database, database_url: str) -> None:
    """The check before the insert can race; the unique constraint answers the same way."""
    runs = await asyncio.gather(*(cli(database_url, *add_args()) for _ in range(4)))
    assert sorted(run.returncode for run in runs) == [0, 2, 2, 2]
    for run in runs:
        if run.returncode:
            assert "steamwatch: duplicate watch (owner, appid, item, kind):" in run.stderr
    assert [(r["owner"], r["market_hash_name"]) for r in await table(db)] == [("carol", ASIIMOV)]


# --- list and show --------------------------------------------------------------------------


async def test_list_filters_and_limits(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING, watch("alice", ASIIMOV, "new_listings", max_price=90))
    async with db.session_scope() as session:
        await session.execute(update(Task).where(Task.id == 3).values(status="paused"))

    async def ids(*args: str) -> list[int]:
        done = await cli(database_url, "list", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [row["id"] for row in json.loads(done.stdout)]

    assert await ids("--owner", "alice") == [1, 3]
    assert await ids("--status", "paused") == [3]
    assert await ids("--kind", "order_book") == [2]
    assert await ids("--owner", "alice", "--status", "active") == [1]
    assert await ids("--owner", "nobody") == []
    limited = await cli(database_url, "list", "--json", "--limit", "2")
    assert [row["id"] for row in json.loads(limited.stdout)] == [1, 2]
    assert "showing 2 of 3 tasks" in limited.stderr


async def test_list_draws_a_table(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    done = await cli(database_url, "list", "--owner", "bob", COLUMNS="200")
    assert done.returncode == 0, done.stderr
    assert "order_book" in done.stdout and "bob" in done.stdout
    assert "$40.00" in done.stdout
    assert "alice" not in done.stdout


async def test_show_formats_the_latest_checks(db: Database, database_url: str) -> None:
    (task_id,) = await seed(db, watch("alice", REDLINE))
    now = datetime.now(UTC)
    async with db.session_scope() as session:
        await session.execute(
            insert(PriceSnapshot),
            [
                {
                    "task_id": task_id,
                    "lease_token": uuid.uuid4(),
                    "currency": EUR,
                    "lowest_price": 1100 + n,
                    "median_price": 1234567,
                    "volume": n,
                    "source": "priceoverview",
                    "checked_at": now - timedelta(minutes=n),
                }
                for n in range(7)
            ],
        )
    done = await cli(database_url, "show", str(task_id), "--json", "--history", "3")
    assert done.returncode == 0, done.stderr
    history = json.loads(done.stdout)["history"]
    assert [h["lowest_price"] for h in history] == [1100, 1101, 1102]  # newest first
    assert history[1]["lowest_price_text"] == "11,01€"
    assert history[0]["median_price_text"] == "12 345,67€"
    assert history[0]["highest_buy_text"] is None

    drawn = await cli(database_url, "show", str(task_id), "--history", "2", COLUMNS="200")
    assert drawn.returncode == 0, drawn.stderr
    assert REDLINE in drawn.stdout
    assert "11,--€" in drawn.stdout and "11,01€" in drawn.stdout  # Steam writes 11,--€
    assert "11,02€" not in drawn.stdout


async def test_show_puts_each_side_of_the_order_book_under_its_own_header(
    db: Database, database_url: str
) -> None:
    (task_id,) = await seed(db, watch("bob", ASIIMOV, "order_book", max_lowest_sell="40,00€"))
    async with db.session_scope() as session:
        await session.execute(
            insert(PriceSnapshot).values(
                task_id=task_id,
                lease_token=uuid.uuid4(),
                currency=EUR,
                lowest_sell=4321,
                highest_buy=1234,
                sell_count=9,
                buy_count=5,
                source="itemordershistogram",
            )
        )
    drawn = await cli(database_url, "show", str(task_id), COLUMNS="250")
    assert drawn.returncode == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    [header] = [line for line in lines if "lowest sell" in line]
    [row] = [line for line in lines if "43,21€" in line]
    for title, value in (("lowest sell", "43,21€"), ("highest buy", "12,34€")):
        start = header.index(title)
        assert row[start : start + len(title)].strip().startswith(value), (title, header, row)


async def test_list_on_80_columns_keeps_short_values_whole(db: Database, database_url: str) -> None:
    await seed(
        db,
        watch("alice-the-long-named-trader", REDLINE),
        watch("bob", ASIIMOV, "order_book", max_lowest_sell="40,00€", min_highest_buy="35,00€"),
        watch("carol", KEY, "new_listings", max_price="2,50€", float_max="0.07"),
    )
    drawn = await cli(database_url, "list", COLUMNS="80")
    assert drawn.returncode == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for whole in ("lowest_price", "order_book", "new_listings", "active", "5m"):
        assert any(whole in line for line in lines), (whole, drawn.stdout)


async def test_show_of_an_unknown_id_names_it(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    done = await cli(database_url, "show", "42")
    assert done.returncode == 2
    assert "steamwatch: no such task: 42" in done.stderr


# --- pause, resume, rm ----------------------------------------------------------------------


async def test_pause_changes_only_the_status(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    done = await cli(database_url, "pause", "1", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "paused 1, 2"
    after = await table(db)
    for old, new in zip(before, after, strict=True):
        assert new["status"] == "paused"
        assert new["updated_at"] > old["updated_at"]
        unchanged = {"status", "updated_at"}
        assert {k: v for k, v in new.items() if k not in unchanged} == {
            k: v for k, v in old.items() if k not in unchanged
        }


async def test_resume_revives_a_failed_task_with_a_clean_slate(
    db: Database, database_url: str
) -> None:
    await seed(db, *EXISTING)
    async with db.session_scope() as session:
        await session.execute(
            update(Task)
            .where(Task.id == 1)
            .values(
                status="failed",
                consecutive_errors=7,
                recovery_attempts=10,
                last_error="HTTP 500",
                lease_token=uuid.uuid4(),
                lease_expires_at=text("now() + interval '1 min'"),
                next_check=text("now() + interval '1 day'"),
                is_active=False,
            )
        )
    untouched = (await table(db))[1]
    started = await db_now(db)
    done = await cli(database_url, "resume", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "resumed 1"
    revived, other = await table(db)
    assert revived["status"] == "active" and revived["is_active"] is True
    assert (revived["consecutive_errors"], revived["recovery_attempts"]) == (0, 0)
    assert revived["last_error"] is None
    assert revived["lease_token"] is None and revived["lease_expires_at"] is None
    assert started <= revived["next_check"] <= await db_now(db)
    assert other == untouched


async def test_an_unknown_id_among_several_changes_nothing(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    for command in ("pause", "resume", "rm"):
        done = await cli(
            database_url, command, "1", "77", "2", "78", *(["--yes"] * (command == "rm"))
        )
        assert done.returncode == 2, done.stderr
        assert "steamwatch: no such task: 77, 78" in done.stderr
        assert await table(db) == before


async def test_rm_deletes_the_tasks_and_their_history(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING, watch("carol", KEY))
    async with db.session_scope() as session:
        await session.execute(
            insert(PriceSnapshot),
            [{"task_id": 1, "lease_token": uuid.uuid4(), "currency": EUR, "lowest_price": 1}],
        )
    done = await cli(database_url, "rm", "--yes", "1", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 1, 3"
    assert [row["id"] for row in await table(db)] == [2]
    async with db.session_scope() as session:
        assert list(await session.scalars(select(PriceSnapshot.id))) == []


async def test_rm_asks_first(db: Database, database_url: str) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    declined = await cli(database_url, "rm", "2", stdin="n\n")
    assert declined.returncode != 0
    assert ASIIMOV in declined.stderr and "Delete 1 task(s)?" in declined.stderr
    assert await table(db) == before
    accepted = await cli(database_url, "rm", "2", stdin="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert [row["id"] for row in await table(db)] == [1]


async def test_rm_with_nobody_to_ask_is_a_usage_error_naming_yes(
    db: Database, database_url: str
) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    done = await cli(database_url, "rm", "2", stdin="")
    assert done.returncode == 2  # 1 is for a database problem
    assert "steamwatch: rm: nobody can be asked here (no input); add --yes" in done.stderr
    assert await table(db) == before


# --- import ---------------------------------------------------------------------------------

CSV_HEADER = "owner,appid,item,currency,kind,interval,max_price,float_min,float_max,max_lowest_sell"
GOOD_CSV_ROWS = [
    f'carol,730,"{REDLINE}",EUR,lowest_price,300,"12,50€",,,',
    f'carol,730,"{ASIIMOV}",EUR,new_listings,1m,80,0,0.07,',
    f"carol,440,{KEY},USD,order_book,2h,,,,$2.49",
]
GOOD_JSON_ROWS: list[dict[str, Any]] = [
    {
        "owner": "dave",
        "appid": 730,
        "market_hash_name": REDLINE,
        "currency": "EUR",
        "kind": "lowest_price",
        "check_interval": 300,
        "max_price": 12.5,
    },
    {
        "owner": "dave",
        "appid": "440",
        "item": KEY,
        "currency": 1,
        "kind": "order_book",
        "interval": "1h",
        "min_highest_buy": "$2.10",
    },
]


def csv_file(*rows: str, header: str = CSV_HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def json_file(*rows: Any) -> str:
    """One object a line after the "[" line: element i is on line i + 2."""
    return "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n"


def bad_json(index: int, **changes: Any) -> str:
    """The good rows with a bad one inserted at `index`."""
    bad = {
        "owner": "erin",
        "appid": 730,
        "item": REDLINE,
        "currency": "EUR",
        "kind": "lowest_price",
        "interval": 300,
        "max_price": "12,50€",
        **changes,
    }
    rows: list[Any] = list(GOOD_JSON_ROWS)
    rows.insert(index, bad)
    return json_file(*rows)


BAD_IMPORTS = [
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], "carol,730.5,M4A1-S,EUR,lowest_price,60,1,,,"),
        ["line 3: appid: must be a whole number"],
        id="csv-appid-float",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], ",730,M4A1-S,EUR,lowest_price,60,1,,,"),
        ["line 3: owner: must not be empty"],
        id="csv-owner-empty",
    ),
    pytest.param(
        "csv",
        csv_file(*GOOD_CSV_ROWS, 'carol,730,M4A1-S,EUR,lowest_price,60,"12,505€",,,'),
        ["line 5: max_price: cannot read '12,505€' as a EUR price"],
        id="csv-price-digits",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], "carol,730,M4A1-S,XBT,lowest_price,60,1,,,"),
        ["line 3: currency: 'XBT' is not a supported currency"],
        id="csv-currency",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], "carol,730,M4A1-S,EUR,lowest_price,10,1,,,"),
        ["line 3: interval: must be at least 30 seconds"],
        id="csv-interval-floor",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], "carol,730,M4A1-S,EUR,order_book,60,,,,"),
        ["line 3: max_lowest_sell: at least one of"],
        id="csv-book-empty",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], "carol,730,M4A1-S,EUR,lowest_price,60,1,0.1,,"),
        ["line 3: float_min: is not a field of lowest_price conditions"],
        id="csv-wrong-kind",
    ),
    pytest.param(
        "csv",
        csv_file(*GOOD_CSV_ROWS, GOOD_CSV_ROWS[1]),
        ["line 5: duplicate watch (owner, appid, item, kind): same as line 3"],
        id="csv-duplicate-in-file",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], f'alice,730,"{REDLINE}",EUR,lowest_price,60,13,,,'),
        ["line 3: duplicate watch (owner, appid, item, kind): task 1 already watches it"],
        id="csv-duplicate-of-existing",
    ),
    pytest.param(
        "csv",
        csv_file(GOOD_CSV_ROWS[0], "carol,730,M4A1-S,EUR,lowest_price"),
        ["line 3: row: has 5 cells, the header has 10"],
        id="csv-short-row",
    ),
    pytest.param(
        "csv",
        csv_file(*GOOD_CSV_ROWS, header=CSV_HEADER + ",colour"),
        ["line 1: unknown column 'colour'"],
        id="csv-unknown-column",
    ),
    pytest.param(
        "csv",
        csv_file(
            'carol,730,"AWP | Asiimov\n(Field-Tested)",EUR,lowest_price,60,1,,,',
            "",
            GOOD_CSV_ROWS[0],
            "carol,0,M4A1-S,EUR,lowest_price,60,1,,,",
        ),
        [
            "line 2: item: must not contain control characters (U+000A)",
            "line 6: appid: must be between 1 and",
        ],
        id="csv-lines-after-a-multiline-cell",
    ),
    pytest.param(
        "json",
        bad_json(1, appid=True),
        ["line 3 (index 1): appid: must be a whole number"],
        id="json-appid-bool",
    ),
    pytest.param(
        "json",
        bad_json(2, interval=90.5),
        ["line 4 (index 2): interval: must be whole seconds"],
        id="json-interval-float",
    ),
    pytest.param(
        "json",
        bad_json(0, max_price="twelve"),
        ["line 2 (index 0): max_price: cannot read 'twelve' as a EUR price"],
        id="json-price-unreadable",
    ),
    pytest.param(
        "json",
        bad_json(1, kind="cheapest"),
        ["line 3 (index 1): kind: must be one of"],
        id="json-kind",
    ),
    pytest.param(
        "json",
        bad_json(1, kind="order_book", max_price=None, max_lowest_sell="1", match="both"),
        ["line 3 (index 1): match: must be 'any' or 'all', got 'both'"],
        id="json-book-match",
    ),
    pytest.param(
        "csv",
        csv_file(
            f"carol,440,{KEY},USD,order_book,2h,,,,$2.49,0.80,every",
            header=CSV_HEADER + ",min_highest_buy,match",
        ),
        ["line 2: match: must be 'any' or 'all', got 'every'"],
        id="csv-book-match",
    ),
    pytest.param(
        "json",
        bad_json(1, item="x" * 256),
        ["line 3 (index 1): item: must be at most 255 characters"],
        id="json-item-long",
    ),
    pytest.param(
        "json",
        bad_json(1, colour="red"),
        ["line 3 (index 1): colour: is not a task field"],
        id="json-unknown-field",
    ),
    pytest.param(
        "json",
        json_file(*GOOD_JSON_ROWS, ["dave", 730]),
        ["line 4 (index 2): task: must be an object"],
        id="json-not-an-object",
    ),
    pytest.param(
        "json",
        json_file(*GOOD_JSON_ROWS, GOOD_JSON_ROWS[0]),
        ["line 4 (index 2): duplicate watch (owner, appid, item, kind): same as line 2 (index 0)"],
        id="json-duplicate-in-file",
    ),
    pytest.param(
        "json",
        json_file(
            *GOOD_JSON_ROWS,
            {
                "owner": "bob",
                "appid": 730,
                "item": ASIIMOV,
                "currency": "USD",
                "kind": "order_book",
                "interval": 300,
                "max_lowest_sell": "1",
            },
        ),
        ["line 4 (index 2): duplicate watch (owner, appid, item, kind): task 2 already"],
        id="json-duplicate-of-existing",
    ),
    pytest.param(
        "json",
        json_file(*GOOD_JSON_ROWS).replace('"kind"', "'kind'", 1),
        ["line 2 column", "Expecting property name"],
        id="json-syntax",
    ),
    pytest.param(
        "json",
        json.dumps(GOOD_JSON_ROWS[0]),
        ["must be a JSON array of task objects"],
        id="json-not-an-array",
    ),
]


@pytest.mark.parametrize(("fmt", "content", "messages"), BAD_IMPORTS)
async def test_a_bad_import_names_line_and_field_and_writes_nothing(
    db: Database, database_url: str, tmp_path: Path, fmt: str, content: str, messages: list[str]
) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    path = tmp_path / f"tasks.{fmt}"
    path.write_text(content, encoding="utf-8")
    done = await cli(database_url, "import", str(path))
    assert done.returncode == 2, done.stderr
    for message in messages:
        assert message in done.stderr, done.stderr
    assert all(line.startswith("steamwatch: ") for line in done.stderr.splitlines())
    assert "imported" not in done.stdout
    assert await table(db) == before


def imported_watches(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    columns = ("owner", "appid", "market_hash_name", "currency", "kind", "check_interval")
    return [(*(row[c] for c in columns), row["conditions"]) for row in rows]


async def test_a_good_csv_is_imported(db: Database, database_url: str, tmp_path: Path) -> None:
    await seed(db, *EXISTING)
    path = tmp_path / "watches.csv"
    path.write_text("\ufeff" + csv_file(*GOOD_CSV_ROWS), encoding="utf-8")  # with a BOM
    done = await cli(database_url, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported 3, skipped 0"
    assert imported_watches((await table(db))[2:]) == [
        ("carol", 730, REDLINE, EUR, "lowest_price", 300, {"max_price": 1250}),
        (
            "carol",
            730,
            ASIIMOV,
            EUR,
            "new_listings",
            60,
            {"max_price": 8000, "float_min": "0", "float_max": "0.07"},
        ),
        ("carol", 440, KEY, USD, "order_book", 7200, {"max_lowest_sell": 249}),
    ]


async def test_a_good_json_file_is_imported(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "watches.txt"
    path.write_text(json.dumps(GOOD_JSON_ROWS, indent=2), encoding="utf-8")
    done = await cli(database_url, "import", "--format", "json", "--json", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"imported": 2, "ids": [1, 2], "skipped": []}
    assert imported_watches(await table(db)) == [
        ("dave", 730, REDLINE, EUR, "lowest_price", 300, {"max_price": 1250}),
        ("dave", 440, KEY, USD, "order_book", 3600, {"min_highest_buy": 210}),
    ]


async def test_an_import_takes_how_order_book_thresholds_combine(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "watches.csv"
    path.write_text(
        csv_file(
            f"carol,440,{KEY},USD,order_book,2h,,,,$2.49,0.80,all",
            f'carol,730,"{REDLINE}",EUR,order_book,2h,,,,"1,50€",,',  # an empty cell: any
            header=CSV_HEADER + ",min_highest_buy,match",
        ),
        encoding="utf-8",
    )
    done = await cli(database_url, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert [r["conditions"] for r in await table(db)] == [
        {"max_lowest_sell": 249, "min_highest_buy": 80, "match": "all"},
        {"max_lowest_sell": 150},
    ]


async def test_skip_invalid_writes_exactly_the_good_rows(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    await seed(db, *EXISTING)
    before = await table(db)
    path = tmp_path / "watches.csv"
    path.write_text(
        csv_file(
            GOOD_CSV_ROWS[0],
            "carol,730,M4A1-S,EUR,lowest_price,5,1,,,",  # line 3: interval under the floor
            GOOD_CSV_ROWS[1],
            GOOD_CSV_ROWS[0],  # line 5: a duplicate of line 2
            f'alice,730,"{REDLINE}",EUR,lowest_price,60,13,,,',  # line 6: a duplicate of task 1
            GOOD_CSV_ROWS[2],
        ),
        encoding="utf-8",
    )
    done = await cli(database_url, "import", "--skip-invalid", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported 3, skipped 3"
    skipped = [line for line in done.stderr.splitlines() if "skipped line" in line]
    assert [line.split(":")[1].strip() for line in skipped] == [
        "skipped line 3",
        "skipped line 5",
        "skipped line 6",
    ]
    after = await table(db)
    assert after[:2] == before
    assert [(r["owner"], r["appid"], r["market_hash_name"]) for r in after[2:]] == [
        ("carol", 730, REDLINE),
        ("carol", 730, ASIIMOV),
        ("carol", 440, KEY),
    ]


async def test_an_import_of_an_unreadable_file_says_why(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    missing = await cli(database_url, "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2
    assert "nope.csv: cannot read it" in missing.stderr
    unknown = tmp_path / "watches.xlsx"
    unknown.write_text("x")
    guessed = await cli(database_url, "import", str(unknown))
    assert guessed.returncode == 2
    assert "use --format csv or json" in guessed.stderr
    assert await table(db) == []


# --- help -----------------------------------------------------------------------------------


def test_every_command_and_option_has_help() -> None:
    assert tasks.help
    for name, command in tasks.commands.items():
        assert command.help, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts}"
    assert set(tasks.commands) == {"add", "list", "show", "pause", "resume", "rm", "import"}


def test_add_help_says_how_order_book_tests_combine() -> None:
    shown = CliRunner().invoke(tasks, ["add", "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "--match [any|all]" in shown.output
    assert "alert when any one holds (any, the default)" in shown.output
    assert "only when all hold at once (all)" in shown.output
    assert "The event names the test(s) that held." in shown.output
    assert "at least N sell orders are at or under --sell-depth-price" in shown.output
    assert "at least N buy orders are at or over --buy-depth-price" in shown.output


async def test_an_unmigrated_database_is_an_error_saying_what_to_do(
    fresh_database: Callable[[], str],
) -> None:
    done = await cli(await asyncio.to_thread(fresh_database), "list")
    assert done.returncode == 1
    assert done.stderr.startswith("steamwatch: database: ")
    assert "run `steamwatch db upgrade`" in done.stderr
