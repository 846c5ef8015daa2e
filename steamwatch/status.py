"""``steamwatch status``: which services are alive, tasks by status, the schedule's lag.

A service is alive while one of its processes keeps its heartbeat key in Redis fresh
(``shared.runtime``): the key has a TTL, so a process that died without a word drops out of
the list within seconds. The exit code says whether every service is up, for scripts and probes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import click
import redis
import redis.asyncio
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from shared.bus.queues import QueueStats, all_queue_stats
from shared.db import Database
from shared.observability import redact_text
from shared.runtime import Beat, async_client, read_beats, sync_client
from steamwatch.common import (
    SERVICES,
    database_url_of,
    echo_json,
    fail,
    redis_url_of,
    settings_or_exit,
)
from steamwatch.queues import duration

EXIT_DOWN = 3

# Deactivated comes first, whatever the status column says (as in shared.tasks.refusal).
_TASKS = text(
    """
    SELECT
      count(*) FILTER (WHERE is_active AND status = 'active') AS active,
      count(*) FILTER (WHERE is_active AND status = 'active' AND consecutive_errors > 0)
        AS failing,
      count(*) FILTER (WHERE is_active AND status = 'paused') AS paused,
      count(*) FILTER (WHERE is_active AND status = 'stalled') AS stalled,
      count(*) FILTER (WHERE is_active AND status = 'failed') AS failed,
      count(*) FILTER (WHERE NOT is_active) AS deactivated
    FROM tasks
    """
)

# The rows the scheduler would claim (ix_tasks_due) that are already past due: the lag is how
# long the most overdue of them has waited. A leased task is in flight, not waiting.
_LAG = text(
    """
    SELECT count(*) AS overdue,
           coalesce(extract(epoch FROM now() - min(next_check)), 0) AS lag
    FROM tasks
    WHERE is_active AND status = 'active' AND lease_token IS NULL AND next_check < now()
    """
)


@dataclass(frozen=True)
class Tasks:
    active: int
    failing: int  # active, with at least one failed check in a row
    paused: int
    stalled: int
    failed: int
    deactivated: int


@dataclass(frozen=True)
class Snapshot:
    """Everything ``status`` shows, read once."""

    at: float  # unix seconds, this machine's clock
    beats: list[Beat]
    tasks: Tasks
    overdue: int
    lag: float  # seconds
    queues: list[QueueStats]

    def instances(self, service: str) -> list[Beat]:
        return [b for b in self.beats if b.service == service]

    @property
    def services(self) -> list[str]:
        """The four services, then any other process that keeps a heartbeat."""
        others = sorted({b.service for b in self.beats} - set(SERVICES))
        return [*SERVICES, *others]

    @property
    def down(self) -> list[str]:
        return [s for s in SERVICES if not self.instances(s)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "up": not self.down,
            "down": self.down,
            "services": {
                service: {
                    "up": bool(self.instances(service)),
                    "instances": [
                        {
                            "instance": b.instance,
                            "state": b.state,
                            "since_beat": round(max(self.at - b.beat_at, 0.0), 3),
                            "uptime": round(max(self.at - b.started_at, 0.0), 3),
                            "started_at": b.started_at,
                            "beat_at": b.beat_at,
                        }
                        for b in self.instances(service)
                    ],
                }
                for service in self.services
            },
            "tasks": asdict(self.tasks),
            "overdue": self.overdue,
            "lag_seconds": self.lag,
            "queues": [q.to_dict() for q in self.queues],
        }


async def snapshot(*, redis_url: str, database_url: str) -> Snapshot:
    """Heartbeats and queues from Redis, then task counts and lag in one database session."""
    beat_client = sync_client(redis_url)
    client = async_client(redis_url)
    db = Database.create(url=database_url, pool_size=1, max_overflow=0)
    try:
        beats = await asyncio.to_thread(read_beats, beat_client)
        at = time.time()
        stats = await all_queue_stats(client)
        async with db.session_scope() as session:
            tasks = Tasks(**(await session.execute(_TASKS)).one()._asdict())
            lag = (await session.execute(_LAG)).one()
    finally:
        beat_client.close()
        await client.aclose()
        await db.dispose()
    return Snapshot(at, beats, tasks, int(lag.overdue), float(lag.lag), stats)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
def status(as_json: bool) -> None:
    """Services alive (heartbeats), tasks by status, current schedule lag, queues.

    A service is down when none of its processes has refreshed its heartbeat in the last
    20 seconds. The lag is how long the most overdue active task has waited past its next
    check without being sent (0 if none).

    \b
    Exit codes:
      0  every service (scheduler, fetcher, publisher, watchdog) is up
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
