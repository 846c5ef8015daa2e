"""One result: decide what the watch's owner must hear, and tell them once.

One ``session_scope()`` per message. The task row is locked for the message (results of one
task are judged one at a time, in order), the conditions are evaluated against the state the
last result left, and events go to Redis before the new state commits: a crash in between
redelivers the message, the events' deterministic ids make the second publish a no-op, and
no event is ever lost to a state that moved on without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from services.publisher.metrics import DUPLICATES, EVENTS, RESULTS
from shared.alerts import ConditionError, Event, evaluate, parse_conditions, publish
from shared.bus import ResultMessage
from shared.db import Database, SeenListing, Task
from shared.steam import Item, Listings, Result

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Publisher:
    db: Database
    redis: redis.asyncio.Redis


async def publish_result(pub: Publisher, message: ResultMessage) -> list[Event]:
    """Judge one result; returns the events published now (none for a duplicate)."""
    async with pub.db.session_scope() as session:
        task = await session.get(Task, message.task_id, with_for_update=True)
        # The failure that made a task failed is the one result judged for a failed task: its
        # owner must hear that the watch gave up.
        giving_up = task is not None and message.became_failed and task.status == "failed"
        if (
            task is None
            or not task.is_active
            or (task.status in ("paused", "failed") and not giving_up)
        ):
            why = "gone" if task is None else "inactive"
            log.info("result dropped", task_id=message.task_id, reason=why)
            RESULTS.labels(outcome=f"dropped_{why}").inc()
            return []
        item = Item(task.appid, task.market_hash_name, task.currency)
        about: dict[str, Any] = {"task_id": task.id, "owner": task.owner, "item": item}
        events: list[Event] = []
        if giving_up:
            events.append(
                Event.about_task(
                    "failed",
                    **about,
                    occasion=message.lease_token,
                    at=message.checked_at,
                    data={
                        "error": message.error,
                        "recovery_attempts": task.recovery_attempts,
                        "consecutive_errors": task.consecutive_errors,
                    },
                )
            )
        if message.became_stalled:
            events.append(
                Event.about_task(
                    "stalled",
                    **about,
                    occasion=message.lease_token,
                    at=message.checked_at,
                    data={"error": message.error, "consecutive_errors": task.consecutive_errors},
                )
            )
        if message.recovered:
            events.append(
                Event.about_task(
                    "recovered",
                    **about,
                    occasion=message.lease_token,
                    at=message.checked_at,
                )
            )
        if message.outcome == "ok" and message.result is not None:
            events += await _judge(pub, session, task, message, message.result, about)
        published = await publish(pub.redis, events)
        for event in published:
            EVENTS.labels(kind=event.kind).inc()
        for _ in range(len(events) - len(published)):
            DUPLICATES.inc()
    return published


async def _judge(
    pub: Publisher,
    session: Any,
    task: Task,
    message: ResultMessage,
    result: Result,
    about: dict[str, Any],
) -> list[Event]:
    state = dict(task.condition_state or {})
    last = state.get("checked_at")
    if last is not None and datetime.fromisoformat(last) >= message.checked_at:
        # A result older than one already judged (a slow redelivery): its moment has passed.
        RESULTS.labels(outcome="stale_result").inc()
        return []
    try:
        condition = parse_conditions(task.kind, task.conditions, currency=task.currency)
        seen: set[str] = set()
        if isinstance(result, Listings) and result.listings:
            ids = [entry.listing_id for entry in result.listings]
            rows = await session.scalars(
                select(SeenListing.listing_id).where(
                    SeenListing.task_id == task.id, SeenListing.listing_id.in_(ids)
                )
            )
            seen = set(rows)
            if seen:
                # Seen again, so still for sale: history upkeep forgets only listings that
                # no check has seen for a while (STEAMWATCH_SEEN_LISTINGS_DAYS).
                await session.execute(
                    update(SeenListing)
                    .where(SeenListing.task_id == task.id, SeenListing.listing_id.in_(seen))
                    .values(seen_at=func.now())
                )
        judged = evaluate(condition, result, state, already_seen=seen)
    except (ConditionError, ValueError, TypeError) as e:
        log.error("result not judged", task_id=task.id, problem=str(e))
        RESULTS.labels(outcome="not_judged").inc()
        return []
    task.condition_state = {**judged.state, "checked_at": message.checked_at.isoformat()}
    if judged.new_listing_ids:
        await session.execute(
            insert(SeenListing)
            .values([{"task_id": task.id, "listing_id": i} for i in sorted(judged.new_listing_ids)])
            .on_conflict_do_nothing()
        )
    return [
        Event.from_signal(signal, **about, lease_token=message.lease_token, at=message.checked_at)
        for signal in judged.signals
    ]
