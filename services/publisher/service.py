"""The publisher process: every tick, it sends the events checks left in the outbox.

A check publishes its own events right after its commit; the outbox keeps those it could not
(its process killed after the commit, Redis away). Each pass takes batches of rows older than a
moment with ``FOR UPDATE SKIP LOCKED`` (replicas share the work), fans them out with their
deterministic ids (a row published twice reaches consumers once) and deletes them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from services.publisher import metrics
from shared.alerts import MIN_AGE, Sent, backlog, drain
from shared.config import Settings
from shared.observability import HealthSpec
from shared.runtime import Pools, pool_spec, run_ticking_service

SERVICE = "publisher"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Publisher:
    batch: int = 500
    min_age: float = MIN_AGE
    batches_per_pass: int = 20  # then the next tick: a backlog never starves the health check

    async def run_pass(self, pools: Pools) -> Sent:
        published = duplicates = 0
        try:
            for _ in range(self.batches_per_pass):
                sent = await drain(pools.db, pools.redis, batch=self.batch, min_age=self.min_age)
                published += sent.published
                duplicates += sent.duplicates
                if sent.published + sent.duplicates < self.batch:
                    break
            waiting, oldest = await backlog(pools.db)
        except (SQLAlchemyError, RedisError, OSError) as e:
            metrics.FAILURES.inc()
            log.warning("outbox not drained; the next pass tries again", error=str(e)[:200])
            return Sent(published=published, duplicates=duplicates)
        finally:
            metrics.SENT.labels(outcome="published").inc(published)
            metrics.SENT.labels(outcome="duplicate").inc(duplicates)
        metrics.WAITING.set(waiting)
        metrics.OLDEST.set(oldest)
        if published or duplicates:
            # Events a check could not publish itself: worth a line, with how late they are.
            log.info(
                "outbox drained",
                published=published,
                duplicates=duplicates,
                waiting=waiting,
                oldest_s=round(oldest, 1),
            )
        return Sent(published=published, duplicates=duplicates)


def run(settings: Settings, *, database_url: str, redis_url: str) -> None:
    """Run the publisher until SIGTERM or SIGINT."""
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    publisher = Publisher(batch=settings.publisher_batch)
    metrics.seed()
    asyncio.run(
        run_ticking_service(
            service=SERVICE,
            spec=spec,
            interval=settings.publisher_tick,
            one_pass=publisher.run_pass,
            health=HealthSpec(settings.metrics_host, settings.metrics_port),
        )
    )
