"""Each service's HTTP face for Kubernetes and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` (liveness) says the process is alive and making progress: restart it if not.
``/readyz`` (readiness) says its PostgreSQL and Redis answer. ``/metrics`` is the Prometheus
exposition. Asyncio services (scheduler, watchdog) serve them from their own loop
(:func:`start_health_server`); a dramatiq service serves them from a process the dramatiq CLI
forks beside its workers (:mod:`shared.runtime._health_fork`), reading every worker's metric files.

Importing this module stays light (no SQLAlchemy, no dramatiq): that fork imports it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from shared.observability._metrics import render_metrics

log = structlog.get_logger(__name__)

Alive = Callable[[], str | None]  # None when alive, else why not
Ready = Callable[[], Awaitable[dict[str, str]]]  # dependency -> "ok" or what is wrong
Probe = Callable[[], Awaitable[object]]  # returns if its dependency answers, else raises
CHECK_TIMEOUT = 2.0  # seconds for one dependency to answer a readiness check


@dataclass(frozen=True)
class HealthSpec:
    """Where a service serves its health and metrics (``STEAMWATCH_METRICS_HOST`` / ``_PORT``)."""

    host: str
    port: int


def health_app(
    *, service: str, alive: Alive, ready: Ready, multiprocess_dir: str | None = None
) -> web.Application:
    """The three paths; ``multiprocess_dir``: the worker processes' metric files, if any."""

    async def healthz(request: web.Request) -> web.Response:
        why = alive()
        if why is None:
            return _json(200, {"status": "ok", "service": service})
        return _json(503, {"status": "unhealthy", "service": service, "why": why})

    async def readyz(request: web.Request) -> web.Response:
        checks = await ready()
        ok = all(v == "ok" for v in checks.values())
        return _json(
            200 if ok else 503,
            {"status": "ready" if ok else "not ready", "service": service, "checks": checks},
        )

    async def metrics(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(
            render_metrics, multiprocess_dir=multiprocess_dir
        )  # reads files in multiprocess mode
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
    log.info(
        "health and metrics served",
        url=f"http://{spec.host}:{port}",
        paths="/healthz /readyz /metrics",
    )
    return runner


async def probe_all(probes: Mapping[str, Probe], *, within: float) -> dict[str, str]:
    """Each probe's answer: ``"ok"``, or what went wrong (never an exception)."""
    checks = {}
    for name, probe in probes.items():
        try:
            async with asyncio.timeout(within):
                await probe()
            checks[name] = "ok"
        except TimeoutError:
            checks[name] = f"no answer in {within:g}s"
        except Exception as e:  # any failure is "not ready", never a crash of the probe
            checks[name] = f"{type(e).__name__}"
    return checks
