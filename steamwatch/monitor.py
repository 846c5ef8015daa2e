"""What ``steamwatch dev`` shows while it runs: the live event feed, each notification as it
is delivered (or given up on), and a status line.

Both run on one background thread with its own event loop, its own Redis client and a
one-connection engine, so the supervisor's main thread stays free for signals.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio
from sqlalchemy import text

from shared.bus import CHECKS_QUEUE
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
        WHERE is_active AND status = 'active' AND lease_token IS NULL AND next_check < now())
        AS lag,
      (SELECT count(*) FROM deliveries WHERE status = 'sent'
        AND sent_at > now() - interval '1 minute') AS sent,
      (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending')) AS waiting,
      (SELECT count(*) FROM deliveries WHERE status = 'dead') AS dead_letters,
      (SELECT count(*) FROM event_outbox) AS outbox
    """
)


_DELIVERED = text(
    """
    SELECT d.id, d.status, d.event->>'kind' AS kind, d.event->'item'->>'market_hash_name' AS item,
           d.event_id, s.url_masked, d.last_error, d.attempts,
           extract(epoch FROM coalesce(d.sent_at, now()) - d.event_at) AS after,
           coalesce(d.sent_at, d.created_at) AS at
    FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
    WHERE (d.status = 'sent' AND d.sent_at > :since) OR (d.status = 'dead' AND d.id > :dead_after)
    ORDER BY at LIMIT 200
    """
)


class DeliveryFeed:
    """Lines for the notifications delivered (or dead-lettered) since the last look."""

    def __init__(self) -> None:
        self.since = datetime.now(UTC)
        self.dead_after = 0

    async def lines(self, db: Database) -> list[str]:
        async with db.session_scope() as session:
            rows = list(
                await session.execute(
                    _DELIVERED, {"since": self.since, "dead_after": self.dead_after}
                )
            )
        out = []
        for row in rows:
            if row.status == "sent":
                self.since = max(self.since, row.at)
                out.append(
                    f"notify  {row.kind} {row.item} delivered to {row.url_masked} "
                    f"{float(row.after):.2f}s after the check"
                    + (f" (attempt {row.attempts})" if row.attempts > 1 else "")
                )
            else:
                self.dead_after = max(self.dead_after, row.id)
                out.append(
                    f"notify  {row.kind} {row.item} to {row.url_masked} GAVE UP: "
                    f"{row.last_error} (`steamwatch notify dlq list`)"
                )
        return out


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
        f"dead={dead}, lag {float(row.lag):.1f}s; events waiting in the outbox {row.outbox}; "
        f"notifications: {row.sent} sent/min, {row.waiting} waiting, {row.dead_letters} gave up"
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
        deliveries = DeliveryFeed()
        next_status = 0.0
        try:
            while not self._stop_event.is_set():
                try:
                    for line in await deliveries.lines(db):
                        self.emit(line)
                    if time.monotonic() >= next_status:
                        next_status = time.monotonic() + self.every
                        self.emit(await status_line(db, client))
                except Exception as e:  # a status line must never take the supervisor down
                    self.emit(f"status: unavailable ({type(e).__name__})")
                try:
                    await asyncio.wait_for(self._stop_event.wait(), timeout=1.0)
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
