"""The watchdog process: every pass, find stalled, expired and overdue work and re-send it.

The repairs arrive with the watchdog issue; this module owns the process around them.
"""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.lifecycle import run_ticking_service
from shared.resources import Pools, pool_spec

SERVICE = "watchdog"


async def watch_pass(pools: Pools) -> None:
    """One tick. Repairs are added by the watchdog issue."""


def main(settings: Settings, *, database_url: str, redis_url: str) -> None:
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    asyncio.run(
        run_ticking_service(
            service=SERVICE, spec=spec, interval=settings.watchdog_tick, one_pass=watch_pass
        )
    )
