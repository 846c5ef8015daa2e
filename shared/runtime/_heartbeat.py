"""Service heartbeats in Redis: who is alive, since when, and whether it is ready.

Each process refreshes ``steamwatch:heartbeat:<service>:<instance>`` with a TTL; a key that
expires means a process that died without saying so. ``steamwatch dev`` waits on these to say
"ready", and ``steamwatch status`` lists them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis
import redis.asyncio
import structlog

log = structlog.get_logger(__name__)

HEARTBEAT_PREFIX = "steamwatch:heartbeat:"
HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_TTL = 20  # seconds: four missed beats and the key is gone

State = Literal["starting", "ready", "stopping"]


#: Every service, in the order `make run` starts them and `status` lists them.
SERVICES: tuple[str, ...] = ("scheduler", "fetcher", "publisher", "watchdog", "notifier", "api")


def instance_id() -> str:
    """This process, as the operator would find it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Beat:
    service: str
    instance: str
    state: State
    started_at: float
    beat_at: float

    @property
    def key(self) -> str:
        return f"{HEARTBEAT_PREFIX}{self.service}:{self.instance}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Beat:
        data = json.loads(raw)
        return cls(**data)


def read_beats(client: redis.Redis) -> list[Beat]:
    """Every live heartbeat, sorted by service then instance; unreadable entries are skipped."""
    beats = []
    keys = list(client.scan_iter(match=f"{HEARTBEAT_PREFIX}*", count=500))
    for raw in client.mget(keys) if keys else []:
        if raw is None:
            continue  # expired between SCAN and MGET
        try:
            beats.append(Beat.from_json(raw))
        except (ValueError, TypeError):
            continue
    return sorted(beats, key=lambda b: (b.service, b.instance))


class Heart:
    """Keeps one process's heartbeat fresh; ``state`` may change as the process moves on."""

    def __init__(self, *, service: str, instance: str | None = None) -> None:
        self.service = service
        self.instance = instance or instance_id()
        self.state: State = "starting"
        self.started_at = time.time()

    def beat(self) -> Beat:
        return Beat(self.service, self.instance, self.state, self.started_at, time.time())

    def write(self, client: redis.Redis) -> None:
        beat = self.beat()
        client.set(beat.key, beat.to_json(), ex=HEARTBEAT_TTL)

    async def write_async(self, client: redis.asyncio.Redis) -> None:
        beat = self.beat()
        await client.set(beat.key, beat.to_json(), ex=HEARTBEAT_TTL)

    def clear(self, client: redis.Redis) -> None:
        client.delete(self.beat().key)

    async def clear_async(self, client: redis.asyncio.Redis) -> None:
        await client.delete(self.beat().key)


class HeartbeatThread(threading.Thread):
    """Beats from a daemon thread, for processes whose event loop belongs to someone else.

    A failed write (Redis restarting) is retried on the next beat, never raised: a heartbeat
    must not take a worker down.
    """

    def __init__(
        self,
        heart: Heart,
        client: redis.Redis,
        interval: float = HEARTBEAT_INTERVAL,
        *,
        also: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(name=f"heartbeat-{heart.service}", daemon=True)
        self.heart = heart
        self.client = client
        self.interval = interval
        self.also = also  # run on every beat too (a worker's proof of progress)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.heart.write(self.client)
            except redis.RedisError:
                pass
            if self.also is not None:
                try:
                    self.also()
                except Exception:
                    log.exception("heartbeat task failed", service=self.heart.service)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=self.interval + 1)
        try:
            self.heart.clear(self.client)
        except redis.RedisError:
            pass


async def beat_forever(
    heart: Heart,
    client: redis.asyncio.Redis,
    *,
    interval: float = HEARTBEAT_INTERVAL,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> None:
    """The asyncio form of :class:`HeartbeatThread`; cancel it to stop."""
    sleep = sleep or asyncio.sleep
    while True:
        try:
            await heart.write_async(client)
        except redis.RedisError:
            pass
        await sleep(interval)
