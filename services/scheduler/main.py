"""The scheduler's composition root: settings read once here, then passed down.

``steamwatch run scheduler`` calls :func:`main`.
"""

from __future__ import annotations

import os

from services.scheduler.service import run
from shared.config import load_settings, store_urls
from shared.observability import configure_logging

SERVICE = "scheduler"


def main() -> None:
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    run(settings, database_url=database_url, redis_url=redis_url)
