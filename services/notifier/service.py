"""The notifier process: a stream reader and senders running beside a once-a-tick sweep.

The reader takes entries from the consumer group (its own unacknowledged ones first, then
those a dead notifier left, then new ones), records their deliveries and acknowledges them;
``concurrency`` senders take delivery ids from an in-process queue and send them; the tick's
pass re-queues due retries and what a stopped notifier left mid-send, and updates the gauges.
On SIGTERM the reader stops, the sends in flight finish (bounded by the send timeout), and
what was queued stays ``pending`` in PostgreSQL for whichever notifier runs next.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from services.notifier.deliver import Notifier, Policy
from services.notifier.metrics import BEHIND, UNACKED, seed
from services.notifier.send import install_response_observer
from services.notifier.stream import EventStream
from shared.config import Settings
from shared.notify import Rate, SecretBox, parse_keys
from shared.observability import HealthSpec
from shared.runtime import Pools, pool_spec, run_ticking_service

log = structlog.get_logger(__name__)
SERVICE = "notifier"
#: The reader's longest wait on the stream; a stop is noticed within it.
READ_BLOCK = 1.0
#: Store errors the reader and senders outlive (retrying), rather than die of.
STORE_ERRORS = (RedisError, SQLAlchemyError, DBAPIError, OSError, ConnectionError)


def policy_of(settings: Settings) -> Policy:
    return Policy(
        max_attempts=settings.notify_max_attempts,
        retry_base=settings.notify_retry_base,
        retry_cap=settings.notify_retry_cap,
        timeout=settings.notify_timeout,
        concurrency=settings.notify_concurrency,
        allow_private=settings.notify_allow_private,
        rates={k: Rate(limit, seconds) for k, (limit, seconds) in settings.notify_rates.items()},
        claim_idle=settings.notify_claim_idle,
        keep_days=settings.notify_keep_days,
    )


class NotifierService:
    """Builds the :class:`Notifier` on the service's pools and runs its loops."""

    def __init__(self, settings: Settings, *, redis_url: str, consumer: str) -> None:
        if settings.secret_key is None:
            raise SystemExit(
                "notifier: STEAMWATCH_SECRET_KEY is not set; destinations are sealed with it "
                "(generate one with `steamwatch notify keygen`)"
            )
        self.box = SecretBox(parse_keys(settings.secret_key.get_secret_value()))
        self.policy = policy_of(settings)
        self.redis_url = redis_url
        self.consumer = consumer
        self.notifier: Notifier | None = None
        self.reader_beat = time.monotonic()

    def _notifier(self, pools: Pools) -> Notifier:
        if self.notifier is None:
            self.notifier = Notifier(
                db=pools.db,
                redis=pools.redis,
                stream=EventStream(pools.redis, consumer=self.consumer),
                box=self.box,
                policy=self.policy,
                redis_url=self.redis_url,
            )
        return self.notifier

    def alive(self) -> str | None:
        idle = time.monotonic() - self.reader_beat
        limit = max(60.0, 10 * READ_BLOCK + self.policy.timeout)
        return None if idle <= limit else f"the stream reader made no progress for {idle:.0f}s"

    async def one_pass(self, pools: Pools) -> None:
        notifier = self._notifier(pools)
        await notifier.sweep()
        behind, unacked = await notifier.stream.lag()
        BEHIND.set(behind)
        UNACKED.set(unacked)

    async def run_loops(self, pools: Pools, stop: asyncio.Event) -> None:
        notifier = self._notifier(pools)
        senders = [
            asyncio.create_task(self._send_loop(notifier, stop))
            for _ in range(self.policy.concurrency)
        ]
        try:
            await self._read_loop(notifier, stop)
        finally:
            # Sends in flight finish (each bounded by the send timeout); queued ids stay pending.
            await asyncio.gather(*senders, return_exceptions=True)
            notifier.pool.shutdown(wait=False, cancel_futures=True)

    async def _read_loop(self, notifier: Notifier, stop: asyncio.Event) -> None:
        stream = notifier.stream
        own_first = True  # after a start or an error: what we read and did not acknowledge
        next_takeover = 0.0
        pause = 0.5
        while not stop.is_set():
            self.reader_beat = time.monotonic()
            try:
                if own_first:
                    await stream.ensure_group()
                    entries = await stream.own_pending(self.policy.batch)
                    if not entries:
                        own_first = False
                        continue
                elif time.monotonic() >= next_takeover:
                    next_takeover = time.monotonic() + self.policy.claim_idle / 2
                    entries = await stream.take_over(
                        min_idle=self.policy.claim_idle, count=self.policy.batch
                    )
                    if entries:
                        log.info("took over entries another notifier left", count=len(entries))
                    else:
                        continue
                else:
                    entries = await stream.read_new(count=self.policy.batch, block=READ_BLOCK)
                if entries:
                    await notifier.take(entries)
                pause = 0.5
            except STORE_ERRORS as e:
                own_first = True
                log.warning("notifier cannot reach its stores; retrying", error=str(e)[:200])
                try:
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                except TimeoutError:
                    pass
                pause = min(pause * 2, 5.0)

    async def _send_loop(self, notifier: Notifier, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivery_id = await asyncio.wait_for(notifier.queue.get(), timeout=READ_BLOCK)
            except TimeoutError:
                continue
            notifier.queued.discard(delivery_id)
            try:
                await notifier.deliver(delivery_id)
            except STORE_ERRORS as e:
                # The row stays as it was (pending, or sending until its claim runs out) and
                # the sweep queues it again.
                log.warning("delivery interrupted", delivery_id=delivery_id, error=str(e)[:200])
            except Exception:
                log.exception("delivery failed unexpectedly", delivery_id=delivery_id)


def run(settings: Settings, *, database_url: str, redis_url: str, consumer: str) -> None:
    """Run the notifier, reading the stream as ``consumer``, until SIGTERM or SIGINT."""
    install_response_observer()
    seed()
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    service = NotifierService(settings, redis_url=redis_url, consumer=consumer)
    asyncio.run(
        run_ticking_service(
            service=SERVICE,
            spec=spec,
            interval=settings.notifier_tick,
            one_pass=service.one_pass,
            health=HealthSpec(settings.metrics_host, settings.metrics_port),
            companion=service.run_loops,
            also_alive=service.alive,
        )
    )
