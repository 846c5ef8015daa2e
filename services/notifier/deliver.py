"""The notifier's work: events into delivery rows, rows into sent messages, failures into retries.

:class:`Notifier` holds what one process shares (the pools, the key box, the rate limiter, a
thread pool for Apprise's blocking sends); every database touch is its own unit of work in
:mod:`services.notifier.store`. The order of one delivery: claim it, check the subscription is
still active and its destination still outside, wait out a ``Retry-After`` the service gave
and the destination's rate, send, then mark it sent, retry it later, or dead-letter it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import redis.asyncio
import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from services.notifier import store
from services.notifier.metrics import (
    DEAD_LETTERS,
    DELIVERIES,
    EVENTS,
    LATENCY,
    OLDEST_PENDING,
    PAUSED,
    PENDING,
    RESENT,
    RETRIES,
)
from services.notifier.send import SendResult, send_blocking
from services.notifier.stream import Entry, EventStream
from shared.alerts import Event, EventError, event_id, publish
from shared.db import Database
from shared.notify import (
    Destination,
    DestinationError,
    DestinationRefused,
    DestinationUnresolved,
    Rate,
    SealedURLUnreadable,
    SecretBox,
    account_rate,
    check_outside_async,
    destination_rate,
    parse_destination,
    render,
)

log = structlog.get_logger(__name__)
HOLD_PREFIX = "steamwatch:notify:hold:"
RATE_PREFIX = "steamwatch:notify:rate"


@dataclass(frozen=True)
class Policy:
    """How the notifier sends, from the settings of its entry point."""

    max_attempts: int = 8
    retry_base: float = 2.0
    retry_cap: float = 300.0
    timeout: float = 10.0
    concurrency: int = 16
    allow_private: bool = False
    rates: dict[str, Rate] = field(default_factory=dict)
    claim_idle: float = 30.0
    keep_days: float = 7.0
    batch: int = 100

    @property
    def hold(self) -> float:
        """How long a claim lasts: a send's timeout twice over, and some."""
        return 2 * self.timeout + 5

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failures (full jitter, capped)."""
        ceiling = min(self.retry_cap, self.retry_base * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


def limits_uri(redis_url: str) -> str:
    """The ``limits`` library's name for the same Redis."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


#: Seconds added to every window enforced: a rate is counted when a send starts, and the
#: service counts it when it arrives, so a send slowed on its way (a busy machine, a slow
#: connect) must not make a window there hold one more than the rate allows.
MARGIN = 1


def _item(rate: Rate) -> RateLimitItem:
    return RateLimitItemPerSecond(rate.limit, math.ceil(rate.seconds) + MARGIN)


@lru_cache(maxsize=2048)
def _destination(url: str) -> Destination:
    return parse_destination(url)


class Notifier:
    """One notifier process's delivery machinery (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        redis: redis.asyncio.Redis,
        stream: EventStream,
        box: SecretBox,
        policy: Policy,
        redis_url: str,
    ) -> None:
        self.db = db
        self.redis = redis
        self.stream = stream
        self.box = box
        self.policy = policy
        self.limiter = MovingWindowRateLimiter(
            RedisStorage(limits_uri(redis_url), implementation="redispy", key_prefix=RATE_PREFIX)
        )
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.queued: set[int] = set()
        self.pool = ThreadPoolExecutor(
            max_workers=policy.concurrency, thread_name_prefix="notify-send"
        )

    # -- stream entries to delivery rows -------------------------------------------------

    async def take(self, entries: Sequence[Entry]) -> int:
        """Record the deliveries of ``entries``, then acknowledge them; returns rows made."""
        events: list[Event] = []
        for entry in entries:
            if entry.body is None:
                log.error("stream entry lost before delivery (trimmed)", stream_id=entry.stream_id)
                EVENTS.labels(outcome="malformed").inc()
                continue
            try:
                events.append(Event.from_json(entry.body))
            except EventError as e:
                log.error("stream entry is not an event", stream_id=entry.stream_id, error=str(e))
                EVENTS.labels(outcome="malformed").inc()
        ids = await store.record(self.db, events) if events else []
        # Recorded (committed): only now may the stream forget them.
        await self.stream.ack([entry.stream_id for entry in entries])
        matched = len(ids)
        EVENTS.labels(outcome="matched").inc(min(matched, len(events)))
        if len(events) > matched:
            EVENTS.labels(outcome="unmatched").inc(len(events) - min(matched, len(events)))
        for delivery_id in ids:
            self.enqueue(delivery_id)
        return matched

    def enqueue(self, delivery_id: int) -> None:
        if delivery_id not in self.queued:
            self.queued.add(delivery_id)
            self.queue.put_nowait(delivery_id)

    # -- one delivery ---------------------------------------------------------------------

    async def deliver(self, delivery_id: int) -> str | None:
        """Try one delivery now; returns the outcome, or None when it was not ours to send."""
        claimed = await store.claim(self.db, delivery_id, hold=self.policy.hold)
        if claimed is None:
            return None
        bound = log.bind(
            delivery_id=claimed.id,
            event_id=claimed.event.id,
            subscription_id=claimed.subscription_id,
            destination=claimed.masked,
            attempt=claimed.attempts,
        )
        try:
            url = self.box.open(claimed.url_cipher)
            destination = _destination(url)
        except (SealedURLUnreadable, DestinationError) as e:
            return await self._dead(claimed, str(e), channel="unknown", log_=bound)
        channel = destination.service
        if claimed.subscription_status != "active":
            return await self._dead(
                claimed, "the subscription is paused", channel=channel, log_=bound
            )
        try:
            await check_outside_async(destination, allow_private=self.policy.allow_private)
        except DestinationRefused as e:
            DELIVERIES.labels(outcome="refused", channel=channel).inc()
            await self._pause(claimed, f"the destination {e.reason}", log_=bound)
            return "refused"
        except DestinationUnresolved as e:
            return await self._retry(
                claimed, channel, SendResult("failed", error=e.reason, reason="unresolved"), bound
            )
        wait = await self._wait_for_rate(destination)
        if wait > 0:
            await store.put_back(self.db, claimed.id, delay=wait, error=None, counted=False)
            DELIVERIES.labels(outcome="rate_limited", channel=channel).inc()
            bound.debug("delivery held back by the rate limit", wait=round(wait, 3))
            return "rate_limited"
        title, body = render(claimed.event, claimed.template)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            self.pool,
            lambda: send_blocking(url, title=title, body=body, timeout=self.policy.timeout),
        )
        if result.verdict == "sent":
            await store.mark_sent(self.db, claimed.id)
            DELIVERIES.labels(outcome="sent", channel=channel).inc()
            age = (datetime.now(UTC) - claimed.event_at).total_seconds()
            LATENCY.observe(max(0.0, age))
            bound.info("notification sent", channel=channel, latency=round(age, 3))
            return "sent"
        if result.verdict == "gone":
            DELIVERIES.labels(outcome="paused", channel=channel).inc()
            await self._pause(claimed, f"the service answered {result.error}", log_=bound)
            return "paused"
        if result.verdict == "rate_limited":
            hold = (
                result.retry_after
                if result.retry_after is not None
                else self.policy.backoff(claimed.attempts)
            )
            await self.redis.set(
                HOLD_PREFIX + destination.url_hash, "1", px=max(1, int(hold * 1000))
            )
            await store.put_back(self.db, claimed.id, delay=hold, error=result.error, counted=False)
            RETRIES.labels(reason="429", channel=channel).inc()
            DELIVERIES.labels(outcome="rate_limited", channel=channel).inc()
            bound.warning("destination rate-limited us", retry_after=round(hold, 3))
            return "rate_limited"
        return await self._retry(claimed, channel, result, bound)

    async def _wait_for_rate(self, destination: Destination) -> float:
        """Seconds to wait before sending (0: go now, and the send is counted)."""
        held = await self.redis.pttl(HOLD_PREFIX + destination.url_hash)
        if held and held > 0:
            return held / 1000
        account = account_rate(destination.scheme)
        if account is not None and not await self.limiter.test(
            _item(account), "account", destination.account_hash
        ):
            return await self._until_free(_item(account), "account", destination.account_hash)
        rate = _item(destination_rate(destination.scheme, self.policy.rates))
        if not await self.limiter.hit(rate, "destination", destination.url_hash):
            return await self._until_free(rate, "destination", destination.url_hash)
        if account is not None:
            await self.limiter.hit(_item(account), "account", destination.account_hash)
        return 0.0

    async def _until_free(self, item: RateLimitItem, *keys: str) -> float:
        stats = await self.limiter.get_window_stats(item, *keys)
        return max(0.01, stats.reset_time - time.time())

    async def _retry(
        self, claimed: store.Claimed, channel: str, result: SendResult, log_: structlog.BoundLogger
    ) -> str:
        if claimed.attempts >= self.policy.max_attempts:
            return await self._dead(
                claimed,
                f"gave up after {claimed.attempts} attempts: {result.error}",
                channel=channel,
                log_=log_,
            )
        delay = self.policy.backoff(claimed.attempts)
        await store.put_back(self.db, claimed.id, delay=delay, error=result.error, counted=True)
        RETRIES.labels(reason=result.reason or "error", channel=channel).inc()
        DELIVERIES.labels(outcome="retry", channel=channel).inc()
        log_.warning("send failed; will retry", error=result.error, retry_in=round(delay, 1))
        return "retry"

    async def _dead(
        self, claimed: store.Claimed, error: str, *, channel: str, log_: structlog.BoundLogger
    ) -> str:
        await store.mark_dead(self.db, claimed.id, error=error)
        DELIVERIES.labels(outcome="dead", channel=channel).inc()
        log_.error("delivery dead-lettered", error=error)
        return "dead"

    async def _pause(
        self, claimed: store.Claimed, reason: str, *, log_: structlog.BoundLogger
    ) -> None:
        await store.mark_dead(self.db, claimed.id, error=reason)
        if not await store.pause_subscription(self.db, claimed.subscription_id, reason=reason):
            return
        PAUSED.inc()
        log_.error("subscription paused", reason=reason)
        event = claimed.event
        await publish(
            self.redis,
            [
                Event(
                    id=event_id(
                        event.task_id,
                        f"subscription-{claimed.subscription_id}",
                        f"paused-{claimed.id}",
                    ),
                    kind="subscription_paused",
                    task_id=event.task_id,
                    owner=claimed.owner,
                    item=event.item,
                    at=datetime.now(UTC),
                    data={
                        "subscription_id": claimed.subscription_id,
                        "destination": claimed.masked,
                        "reason": reason,
                    },
                )
            ],
        )

    # -- the periodic pass ----------------------------------------------------------------

    async def sweep(self) -> None:
        """Claims a stopped notifier left, due retries, the backlog gauges, old sent rows."""
        released = await store.release_expired_claims(self.db, limit=self.policy.batch * 10)
        if released:
            RESENT.inc(len(released))
            log.warning(
                "deliveries left mid-send by a stopped notifier are sent again",
                count=len(released),
                delivery_ids=released[:20],
            )
        room = max(0, self.policy.batch * 10 - self.queue.qsize())
        for delivery_id in await store.due(self.db, limit=room) if room else []:
            self.enqueue(delivery_id)
        backlog = await store.backlog(self.db)
        PENDING.set(backlog.pending)
        DEAD_LETTERS.set(backlog.dead)
        OLDEST_PENDING.set(backlog.oldest_pending)
        await store.prune_sent(self.db, keep_days=self.policy.keep_days)
