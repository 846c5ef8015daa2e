"""The API's composition root: ``steamwatch run api`` calls :func:`main`.

uvicorn serves the app on STEAMWATCH_API_HOST:STEAMWATCH_API_PORT with STEAMWATCH_API_WORKERS
processes; with several, their metrics go through a folder of files that /metrics reads whole.
"""

from __future__ import annotations

import os
import signal

import uvicorn
from fastapi import FastAPI

from services.api.app import create_app
from shared.config import load_settings, store_urls
from shared.observability import configure_logging, multiprocess_env, prepare_multiprocess_dir

SERVICE = "api"


def app_from_env() -> FastAPI:
    """uvicorn's factory: each worker process reads the settings and builds its own app."""
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    return create_app(
        settings,
        database_url=database_url,
        redis_url=redis_url,
        multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    store_urls(settings, service=SERVICE)  # a clear stop now, not in every worker
    if settings.api_workers > 1:
        folder = prepare_multiprocess_dir(SERVICE, pid=os.getpid())
        os.environ.update(multiprocess_env(folder))
    # uvicorn stops gracefully on SIGTERM and then raises the signal again with the handler it
    # found: this one, so a clean stop exits 0 (as every other service does), not -15.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "services.api.main:app_from_env",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=None,  # structlog's handlers, set above and in each worker
        access_log=False,  # requests are counted in metrics; errors are logged with their id
        server_header=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
