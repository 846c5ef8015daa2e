"""The health process of a dramatiq service: ``/healthz``, ``/readyz`` and ``/metrics``.

The dramatiq CLI forks it beside the workers (``--fork-function services.<svc>.main:health``).
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

from shared.observability import (
    CHECK_TIMEOUT,
    HealthSpec,
    health_app,
    probe_all,
    start_health_server,
)
from shared.runtime._parent import die_with_parent
from shared.runtime._progress import STALE_AFTER, hung_workers
from shared.runtime._redis import async_client

log = structlog.get_logger(__name__)

PROGRESS_PROBE_INTERVAL = 5.0  # seconds between the fork's own looks at the workers' progress


def asyncpg_dsn(database_url: str) -> str:
    """The settings' ``postgresql+asyncpg://`` URL as asyncpg takes it (``postgresql://``)."""
    scheme, sep, rest = database_url.partition("://")
    return f"postgresql{sep}{rest}" if scheme == "postgresql+asyncpg" else database_url


def serve_worker_health(
    *,
    service: str,
    database_url: str,
    redis_url: str,
    host: str,
    port: int,
    multiprocess_dir: str | None,
    stale_after: float = STALE_AFTER,
) -> int:
    """The body of a dramatiq ``--fork-function``: serve until SIGTERM (the CLI's handler).

    Alive while the dramatiq main process that forked it is (it stops its workers and itself
    when one dies) and every worker process proves progress in ``multiprocess_dir``
    (:mod:`shared.runtime._progress`); ready while the stores answer; metrics from every
    worker's files.
    """
    die_with_parent()
    parent = os.getppid()
    dsn = asyncpg_dsn(database_url)
    application_name = f"steamwatch-{service}-health"

    said: list[str] = []  # the workers last said hung: one line per change, not per probe

    def workers_hung() -> str | None:
        if multiprocess_dir is None:
            return None
        hung = hung_workers(multiprocess_dir, stale_after=stale_after)
        who = [reason.split(" made ")[0] for reason in hung]  # "worker 4242", not the age
        if who != said:
            if hung:
                log.error("liveness fails: a worker makes no progress", why="; ".join(hung))
            else:
                log.info("every worker makes progress again")
            said[:] = who
        return "; ".join(hung) or None

    def alive() -> str | None:
        if os.getppid() != parent:
            return "the dramatiq main process is gone"
        return workers_hung()

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

        app = health_app(
            service=service, alive=alive, ready=ready, multiprocess_dir=multiprocess_dir
        )
        where = HealthSpec(host, port)
        try:
            await start_health_server(app, where)
        except OSError as e:
            # dramatiq does not watch its forks: without this the service would run blind,
            # failing its liveness probe with no word why. Stop it all, and say so.
            log.error(
                "cannot serve health and metrics; stopping the service",
                host=where.host,
                port=where.port,
                error=str(e),
            )
            os.kill(parent, signal.SIGTERM)
            return 1
        while True:  # until SIGTERM ends the process; the progress gauge stays fresh meanwhile
            workers_hung()
            await asyncio.sleep(PROGRESS_PROBE_INTERVAL)

    return asyncio.run(serve())
