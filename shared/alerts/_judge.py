"""A check judged where it happens: the watch's conditions on the result, against the state the
last check left and the listings already announced; and the events about the watch itself.

The fetcher judges under the check's lease, in the transaction that releases it: the state,
the listings remembered and the events (staged in the outbox) commit together with the check,
or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.alerts._conditions import ConditionError, evaluate, parse_conditions
from shared.alerts._events import Event
from shared.steam import Item, Listings, Result


@dataclass(frozen=True)
class Watch:
    """What judging a check needs of its watch, read when the check began."""

    task_id: int
    owner: str
    kind: str
    item: Item
    conditions: Mapping[str, Any]
    condition_state: Mapping[str, Any] | None

    def about(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "owner": self.owner, "item": self.item}


@dataclass(frozen=True)
class Judgment:
    """The state to store, the events to stage, the listings to remember (new) and refresh."""

    state: dict[str, Any]
    events: tuple[Event, ...] = ()
    new_listing_ids: frozenset[str] = field(default_factory=frozenset)
    seen_again: frozenset[str] = field(default_factory=frozenset)

    @property
    def writes_more(self) -> bool:
        """Whether storing it takes more than the state: events or listings to write."""
        return bool(self.events or self.new_listing_ids or self.seen_again)


class NotJudged(ValueError):
    """The watch's conditions or the result cannot be judged (says why); the check still counts."""


_SEEN = text(
    "SELECT listing_id FROM seen_listings WHERE task_id = :task AND listing_id = ANY(:ids)"
)


async def judge(
    session: AsyncSession | AsyncConnection,
    watch: Watch,
    result: Result,
    *,
    lease_token: uuid.UUID,
    at: datetime,
) -> Judgment:
    """Judge one check's ``result``; reads the announced listings among it (listing watches).

    Raises :class:`NotJudged` for conditions or a result that do not fit the watch.
    """
    try:
        condition = parse_conditions(watch.kind, watch.conditions, currency=watch.item.currency)
        seen: frozenset[str] = frozenset()
        if isinstance(result, Listings) and result.listings:
            ids = [entry.listing_id for entry in result.listings]
            rows = await session.execute(_SEEN, {"task": watch.task_id, "ids": ids})
            seen = frozenset(rows.scalars())
        judged = evaluate(condition, result, watch.condition_state, already_seen=seen)
    except (ConditionError, ValueError, TypeError) as e:
        raise NotJudged(str(e)) from e
    events = tuple(
        Event.from_signal(signal, **watch.about(), lease_token=lease_token, at=at)
        for signal in judged.signals
    )
    return Judgment(
        state={**judged.state, "checked_at": at.isoformat()},
        events=events,
        new_listing_ids=judged.new_listing_ids,
        seen_again=seen,
    )


_REFRESH = text(
    "UPDATE seen_listings SET seen_at = now() WHERE task_id = :task AND listing_id = ANY(:ids)"
)
_REMEMBER = text(
    "INSERT INTO seen_listings (task_id, listing_id) SELECT :task, unnest(CAST(:ids AS text[])) "
    "ON CONFLICT DO NOTHING"
)


async def remember_listings(
    session: AsyncSession | AsyncConnection, task_id: int, judgment: Judgment
) -> None:
    """Remember the listings announced now, and that the announced ones are still for sale (the
    history upkeep forgets only listings no check has seen for a while)."""
    if judgment.seen_again:
        await session.execute(_REFRESH, {"task": task_id, "ids": sorted(judgment.seen_again)})
    if judgment.new_listing_ids:
        await session.execute(_REMEMBER, {"task": task_id, "ids": sorted(judgment.new_listing_ids)})


def recovered(watch: Watch, *, lease_token: uuid.UUID, at: datetime) -> Event:
    """The watch checks again after it stalled."""
    return Event.about_task("recovered", **watch.about(), occasion=lease_token, at=at)


def stalled(
    watch: Watch, *, lease_token: uuid.UUID, at: datetime, error: str, consecutive_errors: int
) -> Event:
    """The watch failed too often in a row; recovery attempts follow."""
    return Event.about_task(
        "stalled",
        **watch.about(),
        occasion=lease_token,
        at=at,
        data={"error": error, "consecutive_errors": consecutive_errors},
    )


def failed(
    watch: Watch,
    *,
    lease_token: uuid.UUID,
    at: datetime,
    error: str,
    recovery_attempts: int,
    consecutive_errors: int,
) -> Event:
    """The watch gave up: the last recovery attempt failed, or Steam does not know the item."""
    return Event.about_task(
        "failed",
        **watch.about(),
        occasion=lease_token,
        at=at,
        data={
            "error": error,
            "recovery_attempts": recovery_attempts,
            "consecutive_errors": consecutive_errors,
        },
    )
