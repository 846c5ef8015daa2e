"""The life of an asyncio service: pools up, a ticking job, a heartbeat, a clean stop on a signal.

The scheduler and the watchdog are both "run one pass every N seconds" processes. APScheduler
runs the pass (coalesced, never two at once); on SIGTERM or SIGINT the service stops taking
new passes, lets the running one finish, says it is stopping, closes its pools and returns.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import structlog

from shared.observability import HealthSpec, health_app, start_health_server
from shared.runtime._heartbeat import Heart, beat_forever
from shared.runtime._pools import Pools, PoolSpec, check_stores, open_resources

log = structlog.get_logger(__name__)

Pass = Callable[[Pools], Awaitable[object]]
#: Work that runs all along beside the passes (the notifier's stream reader); it returns once
#: the event it is given is set. If it fails, the service stops and exits with status 1.
Companion = Callable[[Pools, asyncio.Event], Awaitable[None]]


def stale_after(interval: float) -> float:
    """Seconds without a pass after which a ticking service counts as stuck (liveness)."""
    return max(10 * interval, 120.0)


async def run_ticking_service(
    *,
    service: str,
    spec: PoolSpec,
    interval: float,
    one_pass: Pass,
    health: HealthSpec | None = None,
    stop: asyncio.Event | None = None,
    companion: Companion | None = None,
    also_alive: Callable[[], str | None] | None = None,
) -> None:
    """Run ``one_pass`` every ``interval`` seconds until ``stop`` is set or a signal arrives.

    With ``health``, serves ``/healthz`` (a pass started within :func:`stale_after`, and
    ``also_alive`` says nothing is wrong), ``/readyz`` (database and Redis answer) and
    ``/metrics`` there. A ``companion`` runs from ready to stop beside the passes.
    """
    # Imported here: shared.runtime is imported by a dramatiq service's health fork too,
    # whose memory counts (APScheduler is the ticking services' alone).
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    in_pass = asyncio.Lock()
    last_pass = time.monotonic()  # start-up counts as progress

    def alive() -> str | None:
        idle = time.monotonic() - last_pass
        if idle > stale_after(interval):
            return f"no pass started for {idle:.0f}s"
        return also_alive() if also_alive is not None else None

    failed = False

    async def accompany(pools: Pools) -> None:
        nonlocal failed
        assert companion is not None
        try:
            await companion(pools, stop)
        except Exception:
            failed = True
            log.exception("service failed", service=service)
            stop.set()

    async def guarded_pass(pools: Pools) -> None:
        nonlocal last_pass
        if stop.is_set():
            return
        last_pass = time.monotonic()
        async with in_pass:
            try:
                await one_pass(pools)
            except Exception:
                # One bad pass must not end the service; the next tick tries again.
                log.exception("pass failed", service=service)

    heart = Heart(service=service)
    async with open_resources(spec) as pools:
        web = None
        if health is not None:
            app = health_app(service=service, alive=alive, ready=lambda: check_stores(pools))
            try:
                web = await start_health_server(app, health)
            except OSError as e:
                log.error(
                    "cannot serve health and metrics",
                    service=service,
                    host=health.host,
                    port=health.port,
                    error=str(e),
                )
                raise SystemExit(1) from None
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
        beside = asyncio.create_task(accompany(pools)) if companion is not None else None
        heart.state = "ready"
        await heart.write_async(pools.redis)
        log.info("service ready", service=service, interval=interval)
        try:
            await stop.wait()
        finally:
            heart.state = "stopping"
            log.info("service stopping", service=service)
            # The running pass, if any, finishes first: APScheduler's asyncio executor cancels
            # the jobs still running when it shuts down, and logs the CancelledError as a job
            # that raised. No new pass can start meanwhile (``stop`` is set).
            async with in_pass:
                scheduler.shutdown(wait=False)
            if beside is not None:
                await beside  # it returns once `stop` is set
            beats.cancel()
            if web is not None:
                await web.cleanup()
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
    if failed:
        raise SystemExit(1)
