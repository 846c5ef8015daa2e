"""``steamwatch history WATCH``: a watch's price over a range, as a chart, a table, JSON or CSV.

It asks :func:`shared.history.history`, the same queries as the API's history endpoint: raw
checks for the days they are kept, hourly roll-ups (kept a year) for buckets of an hour or
more. ``--resolution auto`` picks the finest that keeps the range to 2,000 points.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from shared.db import Database, Task
from shared.history import RESOLUTIONS, History, HistoryError, history
from steamwatch.common import echo_json, fail, settings_or_exit
from steamwatch.taskviews import console, money, when

_AGO = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TABLE_ROWS = 24  # the table shows the latest rows; --json / --csv give them all


def moment(given: str, field: str, now: datetime) -> datetime:
    """``7d`` / ``12h`` / ``90m`` / ``2w`` before now, ``now``, or an ISO 8601 time (UTC if no
    zone)."""
    text = given.strip()
    if text.lower() == "now":
        return now
    match = _AGO.match(text)
    if match:
        return now - timedelta(**{_UNITS[match[2].lower()]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{field}: {given!r} is not a time: write 7d, 12h, 90m, 2w, now or 2026-12-01T10:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _load(
    db: Database, task_id: int, since: str, until: str, resolution: str, raw_days: int
) -> tuple[Task, History]:
    now = datetime.now(UTC)
    start, end = moment(since, "--since", now), moment(until, "--until", now)
    async with db.session_scope() as session:
        task = await session.get(Task, task_id)
        if task is None:
            fail(f"WATCH: no watch with id {task_id}")
        try:
            found = await history(
                session,
                task_id=task_id,
                interval=task.check_interval,
                since=start,
                until=end,
                resolution=resolution,
                raw_kept_from=now - timedelta(days=raw_days),
            )
        except HistoryError as e:
            fail(f"--{e.field}: {e.reason}")
        return task, found


def _chart(task: Task, found: History) -> str:
    import plotext as plt

    points = [p for p in found.points if p.last is not None]
    if len(points) < 2:
        return ""
    width = min(shutil.get_terminal_size((100, 24)).columns, 140)
    scale = 10**2  # Steam counts hundredths in every currency
    plt.clear_figure()
    plt.plotsize(width, 18)
    plt.date_form("Y-m-d H:M")
    dates = [p.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for p in points]
    plt.plot(dates, [p.last / scale for p in points if p.last is not None], label="last")
    if found.resolution != "raw":
        plt.plot(dates, [(p.min or 0) / scale for p in points], label="min")
    plt.title(f"{task.market_hash_name} ({found.resolution}, UTC)")
    plt.theme("clear")
    chart: str = plt.build()
    return chart


def _csv(task: Task, found: History) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "checks", "first", "min", "max", "last", "volume", "currency"])
    for p in found.points:
        row = [p.at.isoformat(), p.checks, p.first, p.min, p.max, p.last, p.volume, task.currency]
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()


@click.command("history")
@click.argument("watch", metavar="WATCH", type=int)
@click.option("--since", default="7d", show_default=True, help="Start: 7d, 12h, 90m, 2w, or ISO.")
@click.option("--until", default="now", show_default=True, help="End: now, 1d, or an ISO time.")
@click.option(
    "--resolution",
    type=click.Choice(["auto", "raw", *RESOLUTIONS]),
    default="auto",
    show_default=True,
    help="Buckets of first/min/max/last price, or raw checks; auto fits the range.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the points as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the points as CSV.")
@click.option("--no-chart", is_flag=True, help="The table only.")
def history_command(
    watch: int,
    since: str,
    until: str,
    resolution: str,
    as_json: bool,
    as_csv: bool,
    no_chart: bool,
) -> None:
    """A watch's price over time: a chart and the latest points (or all of them as JSON/CSV).

    \b
    Prices are the watch's own: the lowest price, or the lowest sell for an order book.
    Raw checks are kept STEAMWATCH_HISTORY_RAW_DAYS (14); hourly roll-ups
    STEAMWATCH_HISTORY_ROLLUP_DAYS (365), so older ranges come in hours or more.
    """
    from steamwatch.tasks import _on_database

    if as_json and as_csv:
        fail("--json and --csv: choose one")
    settings = settings_or_exit()
    task, found = _on_database(
        settings,
        lambda db: _load(db, watch, since, until, resolution, settings.history_raw_days),
    )
    if as_json:
        echo_json(
            {
                "watch_id": task.id,
                "item": task.market_hash_name,
                "currency": task.currency,
                "resolution": found.resolution,
                "since": found.since.isoformat(),
                "until": found.until.isoformat(),
                "points": [asdict(p) | {"at": p.at.isoformat()} for p in found.points],
            }
        )
        return
    if as_csv:
        click.echo(_csv(task, found), nl=False)
        return
    out = console()
    if not found.points:
        out.print(
            f"no checks of watch {task.id} between {when(found.since)} and {when(found.until)}"
        )
        return
    if not no_chart:
        chart = _chart(task, found)
        if chart:
            click.echo(chart)
    table = Table("at (UTC)", "checks", "first", "min", "max", "last", "volume")
    shown = found.points[-TABLE_ROWS:]
    for p in shown:
        table.add_row(
            when(p.at),
            str(p.checks),
            *(money(v, task.currency) for v in (p.first, p.min, p.max, p.last)),
            "-" if p.volume is None else str(p.volume),
        )
    out.print(table)
    earlier = len(found.points) - len(shown)
    more = f"; {earlier} earlier (--json or --csv for all)" if earlier else ""
    out.print(f"{len(found.points)} points at {found.resolution}{more}")
