"""``steamwatch tasks``: add, list, show, pause, resume, remove and import watches.

Each command is one transaction: when it stops (a bad definition, an unknown id, a duplicate
watch) it prints ``steamwatch: <what is wrong>`` on stderr, exits non-zero (2 for bad input,
1 when the database cannot be used) and leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Column, Table
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.db import TASK_STATUSES, WATCH_KINDS, Database, PriceSnapshot, Task
from shared.observability import SecretURL
from shared.tasks import (
    PAUSED,
    BadRow,
    Imported,
    Row,
    TaskSpec,
    TaskSpecError,
    WatchError,
    add_watch,
    import_watches,
    parse_task,
    resumed,
    validate_rows,
)
from steamwatch.common import (
    database_url_of,
    echo_json,
    fail,
    find_redis_url,
    settings_or_exit,
)
from steamwatch.taskfiles import ImportFileError, csv_rows, json_rows
from steamwatch.taskviews import (
    MONEY_COLUMNS,
    check_json,
    console,
    duration,
    money,
    or_dash,
    task_json,
    watching,
    when,
)

T = TypeVar("T")


class TasksError(WatchError):
    """Raised when a tasks command must stop; its transaction is rolled back."""


class NoSuchTask(TasksError):
    """Raised when ids name no task."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = tuple(ids)
        super().__init__(f"no such task: {', '.join(map(str, self.ids))}")


@click.group()
def tasks() -> None:
    """Manage watches (tasks): add, list, show, pause, resume, rm, import."""


# --- running a command against the database -------------------------------------------------


def _on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run one command's work on its own pool; its errors become ``steamwatch: ...`` exits."""
    with database_url_of(settings) as url:
        try:
            return asyncio.run(_using(url, work))
        except WatchError as e:
            for line in e.details:
                click.echo(f"steamwatch: {line}", err=True)
            fail(str(e))
        except (OSError, DBAPIError) as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            missing_table = reason.startswith('relation "') and "does not exist" in reason
            hint = " (run `steamwatch db upgrade`)" if missing_table else ""
            fail(f"database: {reason}{hint}", code=1)


async def _using(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database.create(url=url, pool_size=1, max_overflow=0)
    try:
        return await work(db)
    finally:
        await db.dispose()


async def _lock(session: AsyncSession, ids: Sequence[int]) -> list[Task]:
    """The tasks with these ids, locked for this transaction; NoSuchTask names missing ones."""
    rows = await session.scalars(
        select(Task).where(Task.id.in_(ids)).order_by(Task.id).with_for_update()
    )
    found = list(rows)
    missing = sorted(set(ids) - {task.id for task in found})
    if missing:
        raise NoSuchTask(missing)
    return found


def _unique(ids: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(ids))


# --- add ------------------------------------------------------------------------------------


@tasks.command()
@click.option(
    "--owner", metavar="NAME", help="Who the watch is for; alerts go to steamwatch:owner:<NAME>."
)
@click.option("--appid", metavar="ID", help="Steam app id: 730 (CS2), 570 (Dota 2), 440 (TF2), ...")
@click.option(
    "--item", metavar="NAME", help="Market hash name, e.g. 'AK-47 | Redline (Field-Tested)'."
)
@click.option(
    "--currency", metavar="CODE", help="USD, EUR, GBP, ... or Steam's currency id.  [default: USD]"
)
@click.option(
    "--kind", metavar="KIND", help="What to watch: lowest_price, new_listings or order_book."
)
@click.option(
    "--interval",
    metavar="SECONDS",
    help="Seconds between checks, or 90s, 5m, 2h, 1d (the minimum is configured).",
)
@click.option(
    "--max-price",
    metavar="PRICE",
    help="lowest_price, new_listings: alert at or under this price: 12.5 or '12,50€'.",
)
@click.option(
    "--float-min",
    metavar="FLOAT",
    help="new_listings: only listings with a float of at least this.",
)
@click.option(
    "--float-max", metavar="FLOAT", help="new_listings: only listings with a float of at most this."
)
@click.option(
    "--max-lowest-sell",
    metavar="PRICE",
    help="order_book: alert when the lowest sell is at or under (with --min-highest-buy too: "
    "either side, or both with --match all).",
)
@click.option(
    "--min-highest-buy",
    metavar="PRICE",
    help="order_book: alert when the highest buy is at or over (with --max-lowest-sell too: "
    "either side, or both with --match all).",
)
@click.option(
    "--sell-depth-count",
    metavar="N",
    help="order_book: alert when at least N sell orders are at or under --sell-depth-price.",
)
@click.option(
    "--sell-depth-price", metavar="PRICE", help="order_book: the price for --sell-depth-count."
)
@click.option(
    "--buy-depth-count",
    metavar="N",
    help="order_book: alert when at least N buy orders are at or over --buy-depth-price.",
)
@click.option(
    "--buy-depth-price", metavar="PRICE", help="order_book: the price for --buy-depth-count."
)
@click.option(
    "--match",
    type=click.Choice(["any", "all"]),
    help="order_book with several tests: alert when any one holds (any, the default) or only "
    "when all hold at once (all). The event names the test(s) that held.",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Do not ask Steam whether the item exists before adding it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new task as JSON, not its id.")
def add(as_json: bool, no_verify: bool, **options: str | None) -> None:
    """Add a watch and print its id.

    Prices are a number in the currency's main unit (12.5 is 12,50€) or a price as Steam
    writes it ('12,50€', '$3.49'). A second watch of the same item and kind for the same
    owner is refused. When Steam (or `make run`'s simulator) can be asked, an item it does
    not know is refused, with the close names it has (--no-verify skips asking).
    """
    settings = settings_or_exit()
    definition = {name: value for name, value in options.items() if value is not None}
    try:
        spec = parse_task(definition, min_interval=settings.min_check_interval)
    except TaskSpecError as e:
        fail(_as_flags(e, options))
    if not no_verify:
        _verify_or_exit(settings, spec)
    task = _on_database(settings, lambda db: _add(db, spec))
    if as_json:
        echo_json(task_json(task))
    else:
        click.echo(task.id)


def _verify_or_exit(settings: Settings, spec: TaskSpec) -> None:
    """Refuse an item Steam says it does not know; say so when Steam cannot be asked."""
    from shared.steam import Item
    from steamwatch.discovery import read_stores
    from steamwatch.verify import verify_item

    redis_url = find_redis_url(settings)
    if redis_url is None:
        click.echo(
            "steamwatch: the item is not verified with Steam: no Redis to share the proxies' "
            "budgets with (set STEAMWATCH_REDIS_URL, or run `make run`); --no-verify skips this",
            err=True,
        )
        return
    stores = read_stores(settings.home) or {}
    if "STEAMWATCH_STEAM_BASE_URL" not in os.environ and "steam_base_url" in stores:
        base_url = str(stores["steam_base_url"])  # `make run`'s simulator
        proxies = tuple(SecretURL(p) for p in stores.get("proxies") or ["direct"])
    else:
        base_url, proxies = settings.steam_base_url, settings.proxies
    item = Item(spec.appid, spec.market_hash_name, spec.currency)
    found = asyncio.run(
        verify_item(
            item, settings=settings, redis_url=redis_url, base_url=base_url, proxies=proxies
        )
    )
    if found.verdict == "unknown":
        close = ", ".join(repr(name) for name in found.close)
        hint = f"; close names: {close}" if close else ""
        fail(
            f"--item: Steam has no item {spec.market_hash_name!r} in app {spec.appid}{hint} "
            "(--no-verify adds it anyway)"
        )
    if found.verdict == "unverified":
        click.echo(
            f"steamwatch: the item is not verified with Steam ({found.why}); adding it anyway",
            err=True,
        )


async def _add(db: Database, spec: TaskSpec) -> Task:
    async with db.session_scope() as session:
        return await add_watch(session, spec)


# --- list and show --------------------------------------------------------------------------


@tasks.command(name="list")
@click.option("--owner", metavar="NAME", help="Only this owner's tasks.")
@click.option("--status", type=click.Choice(TASK_STATUSES), help="Only tasks in this status.")
@click.option("--kind", type=click.Choice(WATCH_KINDS), help="Only watches of this kind.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Show at most this many tasks, lowest ids first (0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of tasks.")
def list_(
    owner: str | None, status: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List tasks, lowest ids first."""
    settings = settings_or_exit()
    found, total = _on_database(settings, lambda db: _list(db, owner, status, kind, limit))
    if as_json:
        echo_json([task_json(task) for task in found])
    elif not found:
        click.echo("no tasks", err=True)
    else:
        headers = ("id", "owner", "kind", "item", "watching", "every", "status", "next (UTC)")
        table = Table(*_columns(headers, wrap={"owner", "item", "watching", "next (UTC)"}))
        for task in found:
            table.add_row(
                str(task.id),
                task.owner,
                task.kind,
                f"{task.appid}/{task.market_hash_name}",
                watching(task),
                duration(task.check_interval),
                task.status + ("" if task.is_active else " (inactive)"),
                when(task.next_check, short=True),
            )
        console().print(table)
    if len(found) < total:
        click.echo(f"showing {len(found)} of {total} tasks (--limit)", err=True)


def _columns(headers: Sequence[str], *, wrap: set[str]) -> list[Column]:
    """Columns that keep their values whole on a narrow terminal: only those in ``wrap`` wrap,
    at spaces (a single word wider than its column folds: nothing is ever cut off)."""
    return [Column(h, no_wrap=h not in wrap, overflow="fold") for h in headers]


async def _list(
    db: Database, owner: str | None, status: str | None, kind: str | None, limit: int
) -> tuple[list[Task], int]:
    filters = [
        column == value
        for column, value in ((Task.owner, owner), (Task.status, status), (Task.kind, kind))
        if value is not None
    ]
    async with db.session_scope() as session:
        query = select(Task).where(*filters).order_by(Task.id)
        found = list(await session.scalars(query.limit(limit) if limit else query))
        total = await session.scalar(select(func.count()).select_from(Task).where(*filters))
    return found, total or 0


@tasks.command()
@click.argument("task_id", metavar="ID", type=int)
@click.option(
    "--history",
    type=click.IntRange(0, 1000),
    default=5,
    show_default=True,
    help="How many of the latest price checks to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the task and its checks as JSON.")
def show(task_id: int, history: int, as_json: bool) -> None:
    """Show every field of one task and its latest price checks."""
    settings = settings_or_exit()
    task, checks = _on_database(settings, lambda db: _show(db, task_id, history))
    if as_json:
        echo_json({**task_json(task), "history": [check_json(c) for c in checks]})
        return
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    for name, value in task_json(task).items():
        if name == "conditions":
            value = f"{watching(task)}  {json.dumps(value, ensure_ascii=False)}"
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        fields.add_row(name, "-" if value is None else str(value))
    out = console()
    out.print(fields)
    if not checks:
        out.print("no price checks yet")
        return
    headers = (
        "checked at (UTC)",
        "lowest",
        "median",
        "volume",
        "lowest sell",
        "highest buy",
        "sell/buy orders",
        "listings",
        "source",
    )
    table = Table(*_columns(headers, wrap={"checked at (UTC)", "source"}), title="latest checks")
    for check in checks:
        price = {name: money(getattr(check, name), check.currency) for name in MONEY_COLUMNS}
        table.add_row(  # by name, in the headers' order
            when(check.checked_at),
            price["lowest_price"],
            price["median_price"],
            or_dash(check.volume),
            price["lowest_sell"],
            price["highest_buy"],
            f"{or_dash(check.sell_count)}/{or_dash(check.buy_count)}",
            or_dash(None if check.listings is None else len(check.listings)),
            or_dash(check.source),
        )
    out.print(table)


async def _show(db: Database, task_id: int, history: int) -> tuple[Task, list[PriceSnapshot]]:
    async with db.session_scope() as session:
        task = await session.get(Task, task_id)
        if task is None:
            raise NoSuchTask([task_id])
        checks = await session.scalars(
            select(PriceSnapshot)
            .where(PriceSnapshot.task_id == task_id)
            .order_by(PriceSnapshot.checked_at.desc(), PriceSnapshot.id.desc())
            .limit(history)
        )
        return task, list(checks)


def _as_flags(error: TaskSpecError, options: Mapping[str, object]) -> str:
    """The error in the words the user typed: ``--max-price``, not ``max_price``."""

    def flag(name: str) -> str:
        return f"--{name.replace('_', '-')}" if name in options else name

    reason = re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: flag(m.group(0)), error.reason)
    return f"{flag(error.field)}: {reason}"


# --- pause, resume, rm ----------------------------------------------------------------------

_IDS = click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)


@tasks.command()
@_IDS
def pause(ids: tuple[int, ...]) -> None:
    """Stop checking these tasks (a check already sent still completes)."""
    _set(ids, PAUSED, done="paused")


@tasks.command()
@_IDS
def resume(ids: tuple[int, ...]) -> None:
    """Check these tasks again from now, with a clean slate (also revives failed ones).

    Status active, error and recovery counters reset, last error and any lease cleared.
    """
    _set(ids, resumed(), done="resumed")


def _set(ids: Sequence[int], values: dict[str, Any], *, done: str) -> None:
    settings = settings_or_exit()
    wanted = _unique(ids)

    async def work(db: Database) -> None:
        async with db.session_scope() as session:
            await _lock(session, wanted)
            await session.execute(
                update(Task).where(Task.id.in_(wanted)).values(**values, updated_at=func.now())
            )

    _on_database(settings, work)
    click.echo(f"{done} {', '.join(map(str, wanted))}")


@tasks.command()
@_IDS
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def rm(ids: tuple[int, ...], yes: bool) -> None:
    """Delete these tasks, with their price history."""
    settings = settings_or_exit()
    wanted = _unique(ids)

    async def work(db: Database) -> None:
        async with db.session_scope() as session:
            found = await _lock(session, wanted)  # unknown ids fail before the question
        if not yes:
            await asyncio.to_thread(_confirm_removal, found)
        async with db.session_scope() as session:
            await _lock(session, wanted)
            await session.execute(delete(Task).where(Task.id.in_(wanted)))

    _on_database(settings, work)
    click.echo(f"removed {', '.join(map(str, wanted))}")


def _confirm_removal(found: Sequence[Task]) -> None:
    for task in found:
        click.echo(
            f"  {task.id}: {task.owner} {task.kind} {task.appid}/{task.market_hash_name}", err=True
        )
    try:
        answer = click.confirm(f"Delete {len(found)} task(s)?", err=True)
    except click.Abort:  # no answer to read (a script, CI): a usage mistake, not a database one
        click.echo("", err=True)
        raise TasksError("rm: nobody can be asked here (no input); add --yes to delete") from None
    if not answer:
        raise click.Abort()


# --- import ---------------------------------------------------------------------------------


@tasks.command(name="import", short_help="Add the watches in a CSV or JSON file.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    help="The file's format; by default its extension's (.csv, .json).",
)
@click.option("--skip-invalid", is_flag=True, help="Import the good rows, list the bad ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def import_(file: Path, fmt: str | None, skip_invalid: bool, as_json: bool) -> None:
    """Add the watches in FILE: CSV with a header row, or a JSON array of objects.

    Fields are named as the options of `add`: owner, appid, item (or market_hash_name),
    currency, kind, interval (or check_interval), max_price, float_min, float_max,
    max_lowest_sell, min_highest_buy, sell_depth_count, sell_depth_price, buy_depth_count,
    buy_depth_price, match (any or all); an empty CSV cell is not given.
    Every bad row is reported with its line; if there is one, nothing is imported unless
    --skip-invalid. Duplicates, in the file or of existing watches, are bad rows. All rows
    are written in one transaction.
    """
    settings = settings_or_exit()
    fmt = fmt or {".csv": "csv", ".json": "json"}.get(file.suffix.lower())
    if fmt is None:
        fail(f"{file}: cannot tell the format from the extension; use --format csv or json")
    try:
        content = file.read_text(encoding="utf-8-sig")
        rows = csv_rows(content) if fmt == "csv" else json_rows(content)
    except OSError as e:
        fail(f"{file}: cannot read it: {e.strerror or e}")
    except UnicodeDecodeError as e:
        fail(f"{file}: is not UTF-8 text (byte {e.start})")
    except ImportFileError as e:
        fail(f"{file}: {e}")
    good, bad = validate_rows(rows, min_interval=settings.min_check_interval)
    outcome = _on_database(settings, lambda db: _import(db, good, bad, skip_invalid))
    if as_json:
        skipped = [{"line": b.line, "where": b.where, "error": b.reason} for b in outcome.skipped]
        echo_json({"imported": len(outcome.ids), "ids": outcome.ids, "skipped": skipped})
        return
    for row in outcome.skipped:
        click.echo(f"steamwatch: skipped {row}", err=True)
    click.echo(f"imported {len(outcome.ids)}, skipped {len(outcome.skipped)}")


async def _import(
    db: Database,
    good: Sequence[tuple[Row, TaskSpec]],
    bad: Sequence[BadRow],
    skip_invalid: bool,
) -> Imported:
    async with db.session_scope() as session:
        return await import_watches(
            session, good, bad, skip_invalid=skip_invalid, skip_hint="--skip-invalid"
        )


# --- rendering ------------------------------------------------------------------------------
