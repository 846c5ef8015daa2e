"""The watchdog process: every tick, one pass that finds stalled, expired and overdue work.

Safe with several replicas: every repair claims its rows with ``SKIP LOCKED`` and re-checks
them as it changes them (see :mod:`services.watchdog.watch`).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.watchdog.watch import Watchdog
from shared.bus import create_broker
from shared.config import Settings
from shared.history import Retention
from shared.observability import HealthSpec
from shared.runtime import pool_spec, run_ticking_service
from shared.tasks import backoff_of

SERVICE = "watchdog"


def watchdog_of(settings: Settings, *, redis_url: str) -> Watchdog:
    """The watchdog a process's settings describe, sending through a broker on ``redis_url``."""
    return Watchdog(
        broker=create_broker(redis_url=redis_url),
        lease_seconds=settings.lease_seconds,
        grace=settings.watchdog_grace,
        batch=settings.watchdog_batch,
        high_water=settings.scheduler_high_water,
        dead_letter_batch=settings.dead_letter_batch,
        dead_letter_requeues=settings.dead_letter_requeues,
        backoff=backoff_of(settings),
        retention=Retention(
            raw=timedelta(days=settings.history_raw_days),
            rollups=timedelta(days=settings.history_rollup_days),
            seen_listings=timedelta(days=settings.seen_listings_days),
        ),
    )


def run(settings: Settings, *, database_url: str, redis_url: str) -> None:
    """Run the watchdog until SIGTERM or SIGINT."""
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    watchdog = watchdog_of(settings, redis_url=redis_url)
    asyncio.run(
        run_ticking_service(
            service=SERVICE,
            spec=spec,
            interval=settings.watchdog_tick,
            one_pass=watchdog.run_pass,
            health=HealthSpec(settings.metrics_host, settings.metrics_port),
        )
    )
