"""The publisher's composition root: settings read once here, then passed down.

``steamwatch run publisher`` calls :func:`main`.
"""

from __future__ import annotations

import os

from services.publisher.service import run
from shared.config import load_settings, store_urls
from shared.observability import configure_logging

SERVICE = "publisher"


def main() -> None:
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    run(settings, database_url=database_url, redis_url=redis_url)
