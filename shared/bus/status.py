"""What the system is doing, read once: services alive (heartbeats), tasks by status, the
schedule's lag, the queues. ``steamwatch status`` prints it; the API's ``/v1/status`` serves it.

A service is alive while one of its processes keeps its heartbeat key in Redis fresh
(:mod:`shared.runtime`): the key has a TTL, so a process that died without a word drops out
of the list within seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis
import redis.asyncio
from sqlalchemy import text

from shared.bus.queues import QueueStats, all_queue_stats
from shared.db import Database
from shared.runtime import SERVICES, Beat, async_client, read_beats, sync_client

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
    WHERE CAST(:owner AS text) IS NULL OR owner = :owner
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
        """Every service, then any other process that keeps a heartbeat."""
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
    """A snapshot on connections of its own, closed again (the CLI's way)."""
    beat_client = sync_client(redis_url)
    client = async_client(redis_url)
    db = Database.create(url=database_url, pool_size=1, max_overflow=0)
    try:
        return await read_snapshot(db=db, client=client, beat_client=beat_client)
    finally:
        beat_client.close()
        await client.aclose()
        await db.dispose()


async def read_snapshot(
    *,
    db: Database,
    client: redis.asyncio.Redis,
    beat_client: redis.Redis,
    owner: str | None = None,
) -> Snapshot:
    """Heartbeats and queues from Redis, then task counts (``owner``'s only, if given) and the
    schedule's lag in one database session."""
    beats = await asyncio.to_thread(read_beats, beat_client)
    at = time.time()
    stats = await all_queue_stats(client)
    async with db.session_scope() as session:
        tasks = Tasks(**(await session.execute(_TASKS, {"owner": owner})).one()._asdict())
        lag = (await session.execute(_LAG)).one()
    return Snapshot(at, beats, tasks, int(lag.overdue), float(lag.lag), stats)
