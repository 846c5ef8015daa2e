"""The scheduler process: every tick, claim due tasks and send one check message each.

Claims commit before messages go out: a scheduler that dies in between leaves leases that
expire, and the watchdog re-sends those checks; a message that cannot be sent (Redis gone)
gives its claim back at once, for the next tick. When the checks queue is deeper than the
high-water mark, the tick claims less (or nothing) and says so in a metric.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import dramatiq
import structlog
from prometheus_client import Counter, Gauge, Histogram

from shared.bus import CHECKS_QUEUE, CheckMessage, create_broker, queue_key, send_check
from shared.config import Settings
from shared.observability import HealthSpec
from shared.runtime import Pools, pool_spec, run_ticking_service
from shared.tasks import Claim, claim_due, defer

SERVICE = "scheduler"
log = structlog.get_logger(__name__)

CLAIMED = Counter("steamwatch_scheduler_claimed", "Tasks claimed and sent")
HELD_BACK = Counter("steamwatch_scheduler_backpressure", "Ticks that claimed less for a deep queue")
SEND_FAILURES = Counter("steamwatch_scheduler_send_failures", "Claimed tasks whose message failed")
MESSAGES = Counter(
    "steamwatch_scheduler_messages_sent", "Check messages sent (each with its claims)"
)
LAG = Histogram(
    "steamwatch_schedule_lag_seconds",
    "Claim time minus next_check",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
TICK_SECONDS = Histogram(
    "steamwatch_scheduler_tick_seconds",
    "Duration of one scheduler tick (claim and send)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge(
    "steamwatch_scheduler_checks_queue_depth", "Ready check messages seen by the scheduler"
)


@dataclass(frozen=True)
class Scheduler:
    broker: dramatiq.Broker
    batch: int
    high_water: int
    lease_seconds: float
    per_message: int = 1  # claims one check message carries

    async def tick(self, pools: Pools) -> list[Claim]:
        with TICK_SECONDS.time():
            return await self._tick(pools)

    async def _tick(self, pools: Pools) -> list[Claim]:
        depth = int(await pools.redis.llen(queue_key(CHECKS_QUEUE)))
        QUEUE_DEPTH.set(depth)
        # Messages in the queue carry up to ``per_message`` checks each: counted full.
        room = min(self.batch, self.high_water - depth * self.per_message)
        if room < self.batch:
            HELD_BACK.inc()
            log.info("checks queue is deep; claiming less", depth=depth, claiming=max(room, 0))
        if room <= 0:
            return []
        async with pools.db.session_scope() as session:
            claims = await claim_due(session, batch=room, lease_seconds=self.lease_seconds)
        if claims and (unsent := await asyncio.to_thread(self._send, claims)):
            await self._give_back(pools, unsent)
        return claims

    def _send(self, claims: list[Claim]) -> list[Claim]:
        """Send the claims, ``per_message`` to a check message (the most overdue first);
        returns the claims whose message could not be sent."""
        unsent = []
        for start in range(0, len(claims), self.per_message):
            batch = claims[start : start + self.per_message]
            for claim in batch:
                LAG.observe(claim.lag)
            try:
                send_check(
                    self.broker, CheckMessage.batch([(c.task_id, c.lease_token) for c in batch])
                )
            except Exception:
                SEND_FAILURES.inc(len(batch))
                log.exception("could not send a check", task_ids=[c.task_id for c in batch][:20])
                unsent += batch
            else:
                CLAIMED.inc(len(batch))
                MESSAGES.inc()
        return unsent

    async def _give_back(self, pools: Pools, unsent: list[Claim]) -> None:
        """Release the leases of checks never sent, so the next tick claims them again.

        Without this they would wait for their lease to expire (two minutes by default) and
        the watchdog. If the release fails too, that remains the way back.
        """
        try:
            async with pools.db.session_scope() as session:
                for claim in unsent:
                    await defer(
                        session, task_id=claim.task_id, token=claim.lease_token, at=claim.next_check
                    )
        except Exception:
            log.exception(
                "could not release unsent claims; their leases will expire", count=len(unsent)
            )
        else:
            log.warning("unsent claims released for the next tick", count=len(unsent))


def run(settings: Settings, *, database_url: str, redis_url: str) -> None:
    """Run the scheduler until SIGTERM or SIGINT."""
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    scheduler = Scheduler(
        broker=create_broker(redis_url=redis_url),
        batch=settings.scheduler_batch,
        high_water=settings.scheduler_high_water,
        lease_seconds=settings.lease_seconds,
        per_message=settings.scheduler_checks_per_message,
    )
    asyncio.run(
        run_ticking_service(
            service=SERVICE,
            spec=spec,
            interval=settings.scheduler_tick,
            one_pass=scheduler.tick,
            health=HealthSpec(settings.metrics_host, settings.metrics_port),
        )
    )
