"""The delivery rows: recorded before a send, claimed for it, marked after it.

Every function is one unit of work with its own ``session_scope()``. A claim is a conditional
``UPDATE`` (``status = 'pending'`` and due), so two notifiers never send the same row at once;
a row a crashed notifier left in ``sending`` returns to ``pending`` once its claim runs out,
which is the one way a message can go out twice (counted).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from shared.alerts import Event, EventError
from shared.db import LAST_ERROR_MAX, Database

_RECORD = text(
    """
    INSERT INTO deliveries (event_id, subscription_id, owner, event, event_at)
    SELECT :event_id, s.id, s.owner, CAST(:event AS jsonb), :event_at
    FROM subscriptions s
    WHERE s.owner = :owner AND s.status = 'active' AND :kind = ANY(s.kinds)
      AND (s.task_id IS NULL OR s.task_id = :task_id) AND s.created_at <= :event_at
    ON CONFLICT (event_id, subscription_id) DO NOTHING
    RETURNING id
    """
)

_CLAIM = text(
    """
    UPDATE deliveries AS d
    SET status = 'sending', attempts = d.attempts + 1,
        claimed_until = now() + make_interval(secs => :hold)
    FROM subscriptions AS s
    WHERE d.id = :id AND d.status = 'pending' AND d.next_attempt_at <= now()
      AND s.id = d.subscription_id
    RETURNING d.id, d.event, d.event_at, d.attempts, s.id AS subscription_id, s.status,
              s.url_cipher, s.scheme, s.template, s.url_masked, s.url_hash, s.owner
    """
)


@dataclass(frozen=True)
class Claimed:
    """A delivery this notifier now holds, with what it needs to send it."""

    id: int
    event: Event
    event_at: datetime
    attempts: int
    subscription_id: int
    subscription_status: str
    url_cipher: str
    scheme: str
    template: str | None
    masked: str
    url_hash: str
    owner: str


def _error(text_: str) -> str:
    return text_[:LAST_ERROR_MAX]


async def record(db: Database, events: Sequence[Event]) -> list[int]:
    """One delivery row per (event, matching active subscription); returns the new rows' ids."""
    ids: list[int] = []
    async with db.session_scope() as session:
        for event in events:
            rows = await session.execute(
                _RECORD,
                {
                    "event_id": event.id,
                    "event": event.to_json(),
                    "event_at": event.at,
                    "owner": event.owner,
                    "kind": event.kind,
                    "task_id": event.task_id,
                },
            )
            ids += [row.id for row in rows]
    return ids


async def claim(db: Database, delivery_id: int, *, hold: float) -> Claimed | None:
    """Take one due delivery for sending, or None (sent, held by another, not due).

    A row whose stored event no longer reads as an event is dead-lettered here, not retried.
    """
    async with db.session_scope() as session:
        row = (await session.execute(_CLAIM, {"id": delivery_id, "hold": hold})).first()
    if row is None:
        return None
    try:
        event = Event.from_json(json.dumps(row.event))
    except EventError as e:
        await mark_dead(db, delivery_id, error=str(e))
        return None
    return Claimed(
        id=row.id,
        event=event,
        event_at=row.event_at,
        attempts=row.attempts,
        subscription_id=row.subscription_id,
        subscription_status=row.status,
        url_cipher=row.url_cipher,
        scheme=row.scheme,
        template=row.template,
        masked=row.url_masked,
        url_hash=row.url_hash,
        owner=row.owner,
    )


async def mark_sent(db: Database, delivery_id: int) -> bool:
    async with db.session_scope() as session:
        result: Any = await session.execute(
            text(
                "UPDATE deliveries SET status = 'sent', sent_at = now(), claimed_until = NULL, "
                "last_error = NULL WHERE id = :id AND status = 'sending'"
            ),
            {"id": delivery_id},
        )
    return bool(result.rowcount)


async def put_back(
    db: Database, delivery_id: int, *, delay: float, error: str | None, counted: bool
) -> None:
    """Back to ``pending`` in ``delay`` seconds; ``counted=False`` gives the attempt back."""
    async with db.session_scope() as session:
        await session.execute(
            text(
                "UPDATE deliveries SET status = 'pending', claimed_until = NULL, "
                "next_attempt_at = now() + make_interval(secs => :delay), "
                "attempts = attempts - :refund, last_error = coalesce(:error, last_error) "
                "WHERE id = :id AND status = 'sending'"
            ),
            {
                "id": delivery_id,
                "delay": delay,
                "refund": 0 if counted else 1,
                "error": None if error is None else _error(error),
            },
        )


async def mark_dead(db: Database, delivery_id: int, *, error: str) -> None:
    async with db.session_scope() as session:
        await session.execute(
            text(
                "UPDATE deliveries SET status = 'dead', claimed_until = NULL, last_error = :error "
                "WHERE id = :id AND status = 'sending'"
            ),
            {"id": delivery_id, "error": _error(error)},
        )


async def pause_subscription(db: Database, subscription_id: int, *, reason: str) -> bool:
    """Pause an active subscription; False when it was paused (or gone) already."""
    async with db.session_scope() as session:
        result: Any = await session.execute(
            text(
                "UPDATE subscriptions SET status = 'paused', paused_reason = :reason, "
                "updated_at = now() WHERE id = :id AND status = 'active'"
            ),
            {"id": subscription_id, "reason": _error(reason)},
        )
    return bool(result.rowcount)


async def release_expired_claims(db: Database, *, limit: int) -> list[int]:
    """Rows a stopped notifier left mid-send, back to ``pending`` now (each may resend)."""
    async with db.session_scope() as session:
        rows = await session.execute(
            text(
                "UPDATE deliveries SET status = 'pending', claimed_until = NULL, "
                "next_attempt_at = now() WHERE id IN (SELECT id FROM deliveries "
                "WHERE status = 'sending' AND claimed_until < now() "
                "ORDER BY claimed_until LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id"
            ),
            {"limit": limit},
        )
        return [row.id for row in rows]


async def due(db: Database, *, limit: int) -> list[int]:
    async with db.session_scope() as session:
        rows = await session.execute(
            text(
                "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now() "
                "ORDER BY next_attempt_at LIMIT :limit"
            ),
            {"limit": limit},
        )
        return [row.id for row in rows]


@dataclass(frozen=True)
class Backlog:
    pending: int
    dead: int
    oldest_pending: float  # seconds


async def backlog(db: Database) -> Backlog:
    async with db.session_scope() as session:
        row = (
            await session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')) AS pending, "
                    "count(*) FILTER (WHERE status = 'dead') AS dead, "
                    "coalesce(extract(epoch FROM now() - min(created_at) "
                    "FILTER (WHERE status IN ('pending', 'sending'))), 0) AS oldest "
                    "FROM deliveries WHERE status <> 'sent'"
                )
            )
        ).one()
    return Backlog(pending=row.pending, dead=row.dead, oldest_pending=float(row.oldest))


async def prune_sent(db: Database, *, keep_days: float, limit: int = 1000) -> int:
    async with db.session_scope() as session:
        result: Any = await session.execute(
            text(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries "
                "WHERE status = 'sent' AND sent_at < now() - make_interval(secs => :keep) "
                "LIMIT :limit)"
            ),
            {"keep": keep_days * 86400, "limit": limit},
        )
    return int(result.rowcount or 0)
