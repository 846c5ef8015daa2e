"""The fetcher's composition root: each process reads its settings once here and passes them down.

``steamwatch run fetcher`` execs ``dramatiq services.fetcher.main:setup --fork-function
services.fetcher.main:health``: :func:`setup` runs in every worker process, :func:`health` in
the fork that serves ``/healthz``, ``/readyz`` and ``/metrics``. That fork's memory counts, so
importing this module is light: the worker is imported inside :func:`setup` only.
"""

from __future__ import annotations

import os

from shared.config import load_settings, store_urls
from shared.observability import MULTIPROC_ENV, configure_logging
from shared.runtime import serve_worker_health

SERVICE = "fetcher"


def setup() -> None:
    """Build this worker process (the dramatiq CLI calls it before starting the workers)."""
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    from services.fetcher.worker import build

    # Each worker process proves its progress beside its metric files, for /healthz.
    progress_dir = os.environ.get(MULTIPROC_ENV)
    build(settings, database_url=database_url, redis_url=redis_url, progress_dir=progress_dir)


def health() -> int:
    """Serve the fetcher's health and metrics until SIGTERM (dramatiq's ``--fork-function``)."""
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    return serve_worker_health(
        service=SERVICE,
        database_url=database_url,
        redis_url=redis_url,
        host=settings.metrics_host,
        port=settings.metrics_port,
        # Every worker process writes its metrics there (`steamwatch run` sets it before exec).
        multiprocess_dir=os.environ.get(MULTIPROC_ENV),
        stale_after=settings.worker_stale_after,
    )
