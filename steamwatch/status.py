"""``steamwatch status``: which services are alive, tasks by status, the schedule's lag
(read by :mod:`shared.bus.status`). The exit code says whether every service is up, for
scripts and probes.
"""

from __future__ import annotations

import asyncio

import click
import redis
import redis.asyncio
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from shared.bus.queues import QueueStats
from shared.bus.status import Snapshot, snapshot
from shared.observability import redact_text
from steamwatch.common import (
    database_url_of,
    echo_json,
    fail,
    redis_url_of,
    settings_or_exit,
)
from steamwatch.queues import duration

EXIT_DOWN = 3


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
def status(as_json: bool) -> None:
    """Services alive (heartbeats), tasks by status, current schedule lag, queues.

    A service is down when none of its processes has refreshed its heartbeat in the last
    20 seconds. The lag is how long the most overdue active task has waited past its next
    check without being sent (0 if none).

    \b
    Exit codes:
      0  every service (scheduler, fetcher, publisher, watchdog, notifier, api) is up
      1  Redis or the database could not be read
      2  a setting is wrong
      3  a service is down
    """
    settings = settings_or_exit()
    redis_url = redis_url_of(settings)
    with database_url_of(settings) as database_url:
        try:
            snap = asyncio.run(snapshot(redis_url=redis_url, database_url=database_url))
        except redis.RedisError as e:
            fail(f"cannot read Redis: {redact_text(str(e))}", code=1)
        except (SQLAlchemyError, OSError) as e:
            problem = redact_text(str(e)).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, ProgrammingError):
                problem += " (is it migrated? `steamwatch db upgrade`)"
            fail(f"cannot read the database: {problem}", code=1)
    if as_json:
        echo_json(snap.to_dict())
    else:
        _print(snap)
    if snap.down:
        raise SystemExit(EXIT_DOWN)


def _print(snap: Snapshot) -> None:
    console = Console(highlight=False)
    console.print(_services_table(snap))
    t = snap.tasks
    console.print(
        f"tasks   {t.active} active ({t.failing} failing), {t.paused} paused, "
        f"{t.stalled} stalled, {t.failed} failed; {t.deactivated} deactivated"
    )
    overdue = f"{snap.overdue} overdue" if snap.overdue else "nothing overdue"
    console.print(f"lag     {duration(snap.lag)} ({overdue})")
    for i, q in enumerate(snap.queues):
        console.print(f"{'queues' if i == 0 else '':<8}{_queue_summary(q)}")
    if snap.down:
        console.print(f"[bold red]down: {', '.join(snap.down)}[/bold red]")
    else:
        console.print("[green]all services up[/green]")


def _services_table(snap: Snapshot) -> Table:
    table = Table(title="services", title_justify="left")
    for heading in ("service", "instance", "state"):
        table.add_column(heading)
    table.add_column("last beat", justify="right")
    table.add_column("uptime", justify="right")
    for service in snap.services:
        beats = snap.instances(service)
        if not beats:
            table.add_row(service, "-", "[bold red]down[/bold red]", "-", "-")
        for b in beats:
            state = b.state if b.state == "ready" else f"[yellow]{b.state}[/yellow]"
            table.add_row(
                service,
                b.instance,
                state,
                f"{duration(snap.at - b.beat_at)} ago",
                duration(snap.at - b.started_at),
            )
    return table


def _queue_summary(q: QueueStats) -> str:
    oldest = f", oldest {duration(q.oldest_ready_age)}" if q.oldest_ready_age is not None else ""
    return (
        f"{q.queue:<8}{q.ready} ready{oldest}, {q.delayed} delayed, "
        f"{q.in_progress} in progress, {q.dead} dead"
    )
