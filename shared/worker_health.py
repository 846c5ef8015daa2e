"""The health process of a dramatiq service: ``/healthz``, ``/readyz`` and ``/metrics``.

The dramatiq CLI forks it beside the workers (``--fork-function services.<svc>.health:serve``).
It is one of a machine's fetcher processes, so its memory counts: it imports what serving
needs (aiohttp, prometheus-client, asyncpg, redis, the settings) and nothing of the service.
Probing PostgreSQL through SQLAlchemy, with the whole fetcher imported, made it 82 MB of the
memory benchmark's 310; asyncpg's ``SELECT 1`` on a connection of its own answers the same
question.
"""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import structlog

from shared.config import load_settings
from shared.health import CHECK_TIMEOUT, HealthSpec, health_app, probe_all, start_health_server
from shared.logs import configure_logging
from shared.parent import die_with_parent
from shared.redis_clients import async_client

log = structlog.get_logger(__name__)


def asyncpg_dsn(database_url: str) -> str:
    """The settings' ``postgresql+asyncpg://`` URL as asyncpg takes it (``postgresql://``)."""
    scheme, sep, rest = database_url.partition("://")
    return f"postgresql{sep}{rest}" if scheme == "postgresql+asyncpg" else database_url


def serve_worker_health(*, service: str) -> int:
    """The body of a dramatiq ``--fork-function``: serve until SIGTERM (the CLI's handler).

    Alive while the dramatiq main process that forked it is (it stops its workers and itself
    when one dies); ready while the stores answer; metrics from every worker's files.
    """
    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=service)
    if settings.database_url is None or settings.redis_url is None:
        raise SystemExit(f"{service}: STEAMWATCH_DATABASE_URL and STEAMWATCH_REDIS_URL must be set")
    die_with_parent()
    parent = os.getppid()
    dsn = asyncpg_dsn(settings.database_url.reveal())
    redis_url = settings.redis_url.reveal()
    application_name = f"steamwatch-{service}-health"

    def alive() -> str | None:
        return None if os.getppid() == parent else "the dramatiq main process is gone"

    async def serve() -> int:
        redis = async_client(redis_url)

        async def database() -> None:
            # One short connection per probe: a probe every few seconds costs PostgreSQL
            # nothing, and there is no pool to go stale across a restart of the server.
            conn = await asyncpg.connect(
                dsn, server_settings={"application_name": application_name}
            )
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

        async def ping() -> None:
            await redis.ping()

        async def ready() -> dict[str, str]:
            return await probe_all({"database": database, "redis": ping}, within=CHECK_TIMEOUT)

        app = health_app(service=service, alive=alive, ready=ready)
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
