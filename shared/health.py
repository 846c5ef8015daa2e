"""Each service's HTTP face for Kubernetes and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` (liveness) says the process is alive and making progress: restart it if not.
``/readyz`` (readiness) says its PostgreSQL and Redis answer. ``/metrics`` is the Prometheus
exposition. Asyncio services (scheduler, watchdog) serve them from their own loop
(:func:`start_health_server`); a dramatiq service serves them from a process the dramatiq CLI
forks beside its workers (:func:`serve_worker_health`), reading every worker's metric files.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from shared.metrics import render_metrics
from shared.resources import Pools

log = structlog.get_logger(__name__)

Alive = Callable[[], str | None]  # None when alive, else why not
Ready = Callable[[], Awaitable[dict[str, str]]]  # dependency -> "ok" or what is wrong
CHECK_TIMEOUT = 2.0  # seconds for one dependency to answer a readiness check


@dataclass(frozen=True)
class HealthSpec:
    """Where a service serves its health and metrics (``STEAMWATCH_METRICS_HOST`` / ``_PORT``)."""

    host: str
    port: int


def health_app(*, service: str, alive: Alive, ready: Ready) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        why = alive()
        if why is None:
            return _json(200, {"status": "ok", "service": service})
        return _json(503, {"status": "unhealthy", "service": service, "why": why})

    async def readyz(request: web.Request) -> web.Response:
        checks = await ready()
        ok = all(v == "ok" for v in checks.values())
        return _json(200 if ok else 503, {"status": "ready" if ok else "not ready",
                                          "service": service, "checks": checks})  # fmt: skip

    async def metrics(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(render_metrics)  # reads files in multiprocess mode
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def start_health_server(app: web.Application, spec: HealthSpec) -> web.AppRunner:
    """Serve ``app`` on the running loop; the caller cleans the returned runner up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, spec.host, spec.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else spec.port  # port 0: the real one
    log.info("health and metrics served", url=f"http://{spec.host}:{port}",
             paths="/healthz /readyz /metrics")  # fmt: skip
    return runner


async def check_stores(pools: Pools, *, within: float = CHECK_TIMEOUT) -> dict[str, str]:
    """Does each store answer within ``within`` seconds? ``"ok"`` or what went wrong."""

    async def database() -> None:
        async with pools.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await pools.redis.ping()

    checks = {}
    for name, probe in (("database", database), ("redis", redis)):
        try:
            async with asyncio.timeout(within):
                await probe()
            checks[name] = "ok"
        except TimeoutError:
            checks[name] = f"no answer in {within:g}s"
        except Exception as e:  # any failure is "not ready", never a crash of the probe
            checks[name] = f"{type(e).__name__}"
    return checks


def serve_worker_health(*, service: str) -> int:
    """The body of a dramatiq ``--fork-function``: serve until SIGTERM (the CLI's handler).

    Alive while the dramatiq main process that forked it is (it stops its workers and itself
    when one dies); ready while the stores answer; metrics from every worker's files.
    """
    from shared.config import load_settings
    from shared.lifecycle import die_with_parent
    from shared.logs import configure_logging
    from shared.resources import pool_spec

    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=service)
    if settings.database_url is None or settings.redis_url is None:
        raise SystemExit(f"{service}: STEAMWATCH_DATABASE_URL and STEAMWATCH_REDIS_URL must be set")
    die_with_parent()
    parent = os.getppid()
    spec = pool_spec(
        settings,
        service=f"{service}-health",
        database_url=settings.database_url.reveal(),
        redis_url=settings.redis_url.reveal(),
    ).with_pool(size=1, overflow=0)

    def alive() -> str | None:
        return None if os.getppid() == parent else "the dramatiq main process is gone"

    async def serve() -> int:
        pools = await spec.open()
        app = health_app(service=service, alive=alive, ready=lambda: check_stores(pools))
        where = HealthSpec(settings.metrics_host, settings.metrics_port)
        try:
            await start_health_server(app, where)
        except OSError as e:
            # dramatiq does not watch its forks: without this the service would run blind,
            # failing its liveness probe with no word why. Stop it all, and say so.
            log.error("cannot serve health and metrics; stopping the service",
                      host=where.host, port=where.port, error=str(e))  # fmt: skip
            os.kill(parent, signal.SIGTERM)
            return 1
        await asyncio.Event().wait()  # until SIGTERM ends the process
        return 0

    return asyncio.run(serve())
