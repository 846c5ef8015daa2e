"""The life of an asyncio service: pools up, a ticking job, a heartbeat, a clean stop on a signal.

The scheduler and the watchdog are both "run one pass every N seconds" processes. APScheduler
runs the pass (coalesced, never two at once); on SIGTERM or SIGINT the service stops taking
new passes, lets the running one finish, says it is stopping, closes its pools and returns.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared.heartbeat import Heart, beat_forever
from shared.resources import Pools, PoolSpec, open_resources

log = structlog.get_logger(__name__)

Pass = Callable[[Pools], Awaitable[object]]


async def run_ticking_service(
    *,
    service: str,
    spec: PoolSpec,
    interval: float,
    one_pass: Pass,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``one_pass`` every ``interval`` seconds until ``stop`` is set or a signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    in_pass = asyncio.Lock()

    async def guarded_pass(pools: Pools) -> None:
        if stop.is_set():
            return
        async with in_pass:
            try:
                await one_pass(pools)
            except Exception:
                # One bad pass must not end the service; the next tick tries again.
                log.exception("pass failed", service=service)

    heart = Heart(service=service)
    async with open_resources(spec) as pools:
        scheduler = AsyncIOScheduler()
        scheduler.add_job(
            guarded_pass,
            "interval",
            seconds=interval,
            args=[pools],
            id=f"{service}-pass",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        beats = asyncio.create_task(beat_forever(heart, pools.redis))
        scheduler.start()
        heart.state = "ready"
        await heart.write_async(pools.redis)
        log.info("service ready", service=service, interval=interval)
        try:
            await stop.wait()
        finally:
            heart.state = "stopping"
            log.info("service stopping", service=service)
            scheduler.shutdown(wait=False)
            async with in_pass:  # the running pass, if any, finishes first
                pass
            beats.cancel()
            try:
                await heart.clear_async(pools.redis)
            except Exception:
                log.warning("could not clear heartbeat", service=service)
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError):
                    pass
    log.info("service stopped", service=service)
