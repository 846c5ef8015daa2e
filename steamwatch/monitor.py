"""What ``steamwatch dev`` shows while it runs: the live event feed and a status line.

Both run on one background thread with its own event loop, its own Redis client and a
one-connection engine, so the supervisor's main thread stays free for signals.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import redis.asyncio
from sqlalchemy import text

from shared.bus import CHECKS_QUEUE, RESULTS_QUEUE
from shared.bus.queues import all_queue_stats
from shared.db import Database
from shared.runtime import async_client
from steamwatch.tail import follow

_STATUS = text(
    """
    SELECT
      (SELECT count(*) FROM price_history WHERE checked_at > now() - interval '1 minute') AS checks,
      (SELECT count(*) FROM tasks WHERE consecutive_errors > 0 AND status = 'active') AS failing,
      (SELECT count(*) FROM tasks WHERE status = 'stalled') AS stalled,
      (SELECT count(*) FROM tasks WHERE status = 'failed') AS failed,
      (SELECT coalesce(extract(epoch FROM now() - min(next_check)), 0) FROM tasks
        WHERE is_active AND status = 'active' AND lease_token IS NULL AND next_check < now()) AS lag
    """
)


async def status_line(db: Database, client: redis.asyncio.Redis) -> str:
    async with db.session_scope() as session:
        row = (await session.execute(_STATUS)).one()
    queues = {q.queue: q for q in await all_queue_stats(client)}
    dead = sum(q.dead for q in queues.values())
    return (
        # Successful checks only (a failed one stores no snapshot): the dashboard's rate counts
        # both, so the line says which; failing watches are counted beside it.
        f"status: {row.checks} successful checks/min, watches: {row.failing} failing, "
        f"{row.stalled} stalled, {row.failed} failed; queues checks={queues[CHECKS_QUEUE].ready} "
        f"results={queues[RESULTS_QUEUE].ready} dead={dead}, lag {float(row.lag):.1f}s"
    )


class Monitor(threading.Thread):
    """Prints events as they come and a status line every ``every`` seconds until stopped."""

    def __init__(
        self, *, database_url: str, redis_url: str, emit: Callable[[str], None], every: float = 5.0
    ) -> None:
        super().__init__(name="monitor", daemon=True)
        self.database_url, self.redis_url, self.emit, self.every = (
            database_url,
            redis_url,
            emit,
            every,
        )
        self._loop = asyncio.new_event_loop()
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        db = Database.create(url=self.database_url, pool_size=1, max_overflow=0)
        client = async_client(self.redis_url)
        feed = asyncio.create_task(
            follow(
                self.redis_url, emit=lambda line: self.emit(f"event  {line}"), stop=self._stop_event
            )
        )
        try:
            while not self._stop_event.is_set():
                try:
                    self.emit(await status_line(db, client))
                except Exception as e:  # a status line must never take the supervisor down
                    self.emit(f"status: unavailable ({type(e).__name__})")
                try:
                    await asyncio.wait_for(self._stop_event.wait(), timeout=self.every)
                except TimeoutError:
                    pass
        finally:
            await feed
            await client.aclose()
            await db.dispose()

    def stop(self) -> None:
        if self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=5)
