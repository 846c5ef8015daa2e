"""The notifiers' consumer group on ``steamwatch:events``: read, take over, acknowledge, lag.

Each notifier reads as its own consumer. After a restart it first re-reads the entries it had
read and not acknowledged; entries a dead consumer left are taken over with ``XAUTOCLAIM``
once idle for ``claim_idle`` seconds. An entry is acknowledged only after its deliveries are
recorded in PostgreSQL, so no crash between the two loses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio
import structlog
from redis.exceptions import ResponseError

from shared.alerts import EVENTS_STREAM

log = structlog.get_logger(__name__)
GROUP = "steamwatch-notifier"


@dataclass(frozen=True)
class Entry:
    """One stream entry as read: its id and the raw event text (parsed by the caller)."""

    stream_id: str
    body: bytes | None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(messages: Any) -> list[Entry]:
    entries = []
    for stream_id, fields in messages or []:
        if fields is None:  # an entry trimmed from the stream while pending
            entries.append(Entry(_text(stream_id), None))
            continue
        body = fields.get(b"event", fields.get("event"))
        # An entry without an "event" field is not an event: b"" fails to read as one.
        entries.append(Entry(_text(stream_id), b"" if body is None else bytes(body)))
    return entries


def _first_stream(reply: Any) -> Any:
    # RESP2 answers [[stream, messages]], RESP3 {stream: messages}.
    streams = list(reply.items()) if isinstance(reply, dict) else reply or []
    return streams[0][1] if streams else []


def _ms(stream_id: str) -> int:
    return int(stream_id.split("-", 1)[0])


@dataclass
class EventStream:
    """One notifier's view of the group (``consumer`` names it; a pod's name survives a restart)."""

    redis: redis.asyncio.Redis
    consumer: str
    stream: str = EVENTS_STREAM
    group: str = GROUP
    _claim_cursor: str = "0-0"

    async def ensure_group(self) -> None:
        """Create the group at the stream's start (once; later starts find it).

        From the start, so events published before the first notifier ran are not skipped;
        what is older than every subscription matches none (a subscription gets the events
        raised from its creation on).
        """
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("consumer group created", stream=self.stream, group=self.group)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def own_pending(self, count: int) -> list[Entry]:
        """Entries this consumer read before and never acknowledged (after a restart)."""
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: "0"}, count=count
        )
        return _entries(_first_stream(reply))

    async def take_over(self, *, min_idle: float, count: int) -> list[Entry]:
        """Entries another consumer left unacknowledged for ``min_idle`` seconds, now ours."""
        reply: Any = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(min_idle * 1000),
            start_id=self._claim_cursor,
            count=count,
        )
        self._claim_cursor = _text(reply[0])
        taken = _entries(reply[1])
        if len(reply) > 2 and reply[2]:  # Redis 7: ids that no longer exist, now dropped
            log.warning("pending entries were trimmed from the stream", count=len(reply[2]))
        return taken

    async def read_new(self, *, count: int, block: float) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=int(block * 1000)
        )
        return _entries(_first_stream(reply))

    async def ack(self, ids: list[str]) -> None:
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)

    async def lag(self) -> tuple[float, int]:
        """(age in seconds of the oldest entry the group has not read, entries read and not
        acknowledged). Stream ids are milliseconds, so an entry's id tells its age."""
        groups = await self.redis.xinfo_groups(self.stream)
        mine = next((g for g in groups if _text(g["name"]) == self.group), None)
        if mine is None:
            return 0.0, 0
        delivered = _text(mine["last-delivered-id"] or "0-0")
        unread: Any = await self.redis.xrange(self.stream, min=f"({delivered}", count=1)
        behind = max(0.0, time.time() - _ms(_text(unread[0][0])) / 1000) if unread else 0.0
        return behind, int(mine["pending"])
