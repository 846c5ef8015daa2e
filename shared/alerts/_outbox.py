"""The event outbox: events are rows written in the check's own transaction, then fanned out.

Nothing is lost between the commit and the send. The writer stages its events with its other
writes (:func:`stage`); once committed, it fans them out itself and deletes their rows
(:func:`send_staged`, the fast path). Whatever the fast path left behind (the process killed
after the commit, Redis down) stays in ``event_outbox``, where :func:`drain` finds it: rows
older than a moment, taken with ``FOR UPDATE SKIP LOCKED`` so drainers share the work, fanned
out, then deleted in the same transaction. A crash between the fan-out and the delete fans the
rows out again, and the events' deterministic ids make that second fan-out a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.alerts._events import Event, Outgoing, fan_out
from shared.db import Database, OutboxEvent

log = structlog.get_logger(__name__)

#: Rows younger than this are left to the fast path of the process that wrote them.
MIN_AGE = 2.0


@dataclass(frozen=True)
class Staged:
    """Events written to the outbox in an open transaction: the rows to send after its commit."""

    rows: tuple[tuple[int, Outgoing], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Sent:
    """What one fan-out did: events new to consumers, ids published already, rows left."""

    published: int = 0
    duplicates: int = 0
    left: int = 0  # rows the fan-out could not send: the publisher's drain sends them


async def stage(session: AsyncSession | AsyncConnection, events: Sequence[Event]) -> Staged:
    """Write ``events`` to the outbox in ``session``'s transaction (one statement)."""
    if not events:
        return Staged()
    outgoing = [Outgoing.of(event) for event in events]
    ids = await session.scalars(
        insert(OutboxEvent).returning(OutboxEvent.id, sort_by_parameter_order=True),
        [
            {"event_id": o.event_id, "task_id": o.task_id, "owner": o.owner, "body": o.body}
            for o in outgoing
        ],
    )
    return Staged(tuple(zip(ids.all(), outgoing, strict=True)))


_DELETE = text("DELETE FROM event_outbox WHERE id = ANY(CAST(:ids AS bigint[]))")


async def send_staged(db: Database, redis: Redis, staged: Staged) -> Sent:
    """The fast path: fan out what a committed transaction staged, then delete its rows.

    Never raises for Redis or PostgreSQL being away: the rows stay for :func:`drain`.
    """
    if not staged:
        return Sent()
    ids = [row_id for row_id, _ in staged.rows]
    try:
        new = await fan_out(redis, [outgoing for _, outgoing in staged.rows])
    except Exception as e:  # Redis away or refusing: the drain sends them
        log.warning(
            "events left in the outbox for the publisher",
            events=len(ids),
            error=f"{type(e).__name__}: {e}"[:200],
        )
        return Sent(left=len(ids))
    try:
        async with db.autocommit() as conn:
            await conn.execute(_DELETE, {"ids": ids})
    except Exception as e:  # published; the drain publishes them again, as duplicates
        log.warning(
            "published events' outbox rows not deleted; the publisher clears them",
            events=len(ids),
            error=f"{type(e).__name__}: {e}"[:200],
        )
    published = sum(new)
    return Sent(published=published, duplicates=len(new) - published)


_TAKE = text(
    """
    SELECT id, event_id, task_id, owner, body FROM event_outbox
    WHERE created_at < now() - make_interval(secs => :min_age)
    ORDER BY id
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
    """
)


async def drain(db: Database, redis: Redis, *, batch: int = 500, min_age: float = MIN_AGE) -> Sent:
    """The slow path: fan out and delete up to ``batch`` rows older than ``min_age`` seconds.

    Raises if Redis or PostgreSQL fails; the rows then stay for the next call.
    """
    async with db.session_scope() as session:
        rows = (await session.execute(_TAKE, {"batch": batch, "min_age": min_age})).all()
        if not rows:
            return Sent()
        new = await fan_out(redis, [Outgoing(r.event_id, r.task_id, r.owner, r.body) for r in rows])
        await session.execute(_DELETE, {"ids": [r.id for r in rows]})
    published = sum(new)
    return Sent(published=published, duplicates=len(new) - published)


_AGE = text("SELECT count(*), extract(epoch FROM now() - min(created_at)) FROM event_outbox")


async def backlog(db: Database) -> tuple[int, float]:
    """How many events wait in the outbox, and the oldest one's age in seconds (0: none)."""
    async with db.session_scope() as session:
        count, age = (await session.execute(_AGE)).one()
    return int(count), float(age or 0.0)
