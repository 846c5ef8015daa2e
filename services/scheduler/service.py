"""The scheduler process: every tick, claim due tasks and send one check message each.

The claim itself arrives with the pipeline; this module owns the process around it.
"""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.lifecycle import run_ticking_service
from shared.resources import Pools, pool_spec

SERVICE = "scheduler"


async def schedule_pass(pools: Pools) -> None:
    """One tick. Claiming due tasks is added by the pipeline issue."""


def main(settings: Settings, *, database_url: str, redis_url: str) -> None:
    spec = pool_spec(settings, service=SERVICE, database_url=database_url, redis_url=redis_url)
    asyncio.run(
        run_ticking_service(
            service=SERVICE, spec=spec, interval=settings.scheduler_tick, one_pass=schedule_pass
        )
    )
