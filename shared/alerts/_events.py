"""The event contract consumers read from Redis, and its fan-out that publishes each event once.

An event's id is derived from the task, the check's lease token and the signal's key, so a
redelivered message rebuilds the same id; one Lua script per event claims that id and, only if
the claim is new, appends to the capped stream and publishes on the task and owner channels.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)
from redis.asyncio import Redis

from shared.alerts._conditions import Signal
from shared.steam import Item

SCHEMA_VERSION: Literal[1] = 1
EVENTS_STREAM = "steamwatch:events"
SEEN_PREFIX = "steamwatch:event-seen:"

TaskEventKind = Literal["stalled", "recovered", "failed"]
EventKind = Literal[
    "price_at_or_below",
    "new_listing",
    "order_book",
    "stalled",
    "recovered",
    "failed",
    "subscription_paused",
]
EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))


class EventError(ValueError):
    """Raised when a stored or received event cannot be read as this schema's event."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a steamwatch event: {reason}")
        self.reason = reason


def task_channel(task_id: int) -> str:
    return f"steamwatch:task:{task_id}"


def owner_channel(owner: str) -> str:
    return f"steamwatch:owner:{owner}"


def event_id(task_id: int, occasion: uuid.UUID | str, key: str) -> str:
    """The deterministic id: the same check (lease token) and key always make the same id."""
    return f"{task_id}:{occasion}:{key}"


class Event(BaseModel):
    """One thing a watch's owner is told, as it appears in the stream and on both channels.

    Read strictly (``True`` is no task id, a time needs its zone); written with ``at`` in UTC
    as ``…T10:32:05.120000Z`` and ``schema`` first, the shape README's "Events" documents.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    id: str
    kind: EventKind
    task_id: int
    owner: str
    item: Item
    at: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at")
    @classmethod
    def _in_utc(cls, at: datetime) -> datetime:
        return at.astimezone(UTC)

    @field_serializer("at")
    def _written_at(self, at: datetime) -> str:
        return at.isoformat(timespec="microseconds").replace("+00:00", "Z")

    @classmethod
    def from_signal(
        cls,
        signal: Signal,
        *,
        task_id: int,
        owner: str,
        item: Item,
        lease_token: uuid.UUID | str,
        at: datetime,
    ) -> Event:
        """The event announcing a condition's signal from the check that held `lease_token`."""
        return cls(
            id=event_id(task_id, lease_token, signal.key),
            kind=signal.kind,
            task_id=task_id,
            owner=owner,
            item=item,
            at=at,
            data=dict(signal.data),
        )

    @classmethod
    def about_task(
        cls,
        kind: TaskEventKind,
        *,
        task_id: int,
        owner: str,
        item: Item,
        occasion: uuid.UUID | str,
        at: datetime,
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        """An alert about the watch itself; `occasion` (a lease token, an attempt) makes it once."""
        return cls(
            id=event_id(task_id, occasion, kind),
            kind=kind,
            task_id=task_id,
            owner=owner,
            item=item,
            at=at,
            data=dict(data or {}),
        )

    def to_json(self) -> str:
        """The event as consumers read it (the stream's ``event`` field, the channels)."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Read one event; :class:`EventError` names each field that does not fit."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(event)'}: {err['msg']}"
                for err in e.errors()
            )
            raise EventError(fields) from None


# KEYS: seen marker, stream. ARGV: ttl, maxlen, event json, task channel, owner channel.
# Claim and fan-out in one script, so no crash or redelivery falls between them. Scripts do
# not roll back, so a failed XADD gives the claim up again and a retry can still publish.
_PUBLISH = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[3])
if type(added) == 'table' and added.err then
  redis.call('DEL', KEYS[1])
  return added
end
redis.call('PUBLISH', ARGV[4], ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[3])
return added
"""


@dataclass(frozen=True)
class Outgoing:
    """An event ready to fan out: its id, whose it is, and its JSON as consumers read it."""

    event_id: str
    task_id: int
    owner: str
    body: str

    @classmethod
    def of(cls, event: Event) -> Outgoing:
        return cls(event.id, event.task_id, event.owner, event.to_json())


async def publish(
    redis: Redis,
    events: Sequence[Event],
    *,
    stream: str = EVENTS_STREAM,
    maxlen: int = 100_000,
    dedupe_ttl: int = 7 * 86400,
) -> list[Event]:
    """Append each event to the stream and both channels unless its id was published already."""
    sent = await fan_out(
        redis,
        [Outgoing.of(event) for event in events],
        stream=stream,
        maxlen=maxlen,
        dedupe_ttl=dedupe_ttl,
    )
    return [event for event, new in zip(events, sent, strict=True) if new]


async def fan_out(
    redis: Redis,
    events: Sequence[Outgoing],
    *,
    stream: str = EVENTS_STREAM,
    maxlen: int = 100_000,
    dedupe_ttl: int = 7 * 86400,
) -> list[bool]:
    """Publish each event unless its id was published already; True where it was new."""
    if not events:
        return []
    script = redis.register_script(_PUBLISH)
    # One round trip for the batch; each script still runs atomically on its own.
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            await script(
                keys=[SEEN_PREFIX + event.event_id, stream],
                args=[
                    dedupe_ttl,
                    maxlen,
                    event.body,
                    task_channel(event.task_id),
                    owner_channel(event.owner),
                ],
                client=pipe,
            )
        replies = await pipe.execute()
    return [reply is not None for reply in replies]


@dataclass(frozen=True)
class StoredEvent:
    """An event as read back from the stream, with the stream id to resume after."""

    stream_id: str
    event: Event


async def read_events(
    redis: Redis,
    *,
    since: str = "0",
    count: int = 100,
    block: float | None = None,
    stream: str = EVENTS_STREAM,
) -> list[StoredEvent]:
    """Up to `count` events after stream id `since` ("$": new ones), waiting up to `block` s."""
    reply: Any = await redis.xread(
        {stream: since}, count=count, block=None if block is None else int(block * 1000)
    )
    # RESP2 answers [[stream, messages]], RESP3 {stream: messages}.
    streams = reply.items() if isinstance(reply, dict) else reply or []
    entries: list[StoredEvent] = []
    for _name, messages in streams:
        for stream_id, fields in messages:
            body = fields.get(b"event", fields.get("event"))
            if body is None:
                raise EventError(f"stream entry {_text(stream_id)} has no 'event' field")
            entries.append(StoredEvent(_text(stream_id), Event.from_json(body)))
    return entries


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
