"""The notifier's composition root: settings read once here, then passed down.

``steamwatch run notifier`` calls :func:`main`.
"""

from __future__ import annotations

import os
import socket

from services.notifier.service import run
from shared.config import load_settings, store_urls
from shared.observability import configure_logging

SERVICE = "notifier"


def main() -> None:
    settings = load_settings(os.environ)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=SERVICE)
    database_url, redis_url = store_urls(settings, service=SERVICE)
    # A pod keeps its name across a container restart, so a restarted notifier re-reads what
    # it had read and not acknowledged at once (others take it over after claim_idle anyway).
    consumer = settings.notifier_consumer or socket.gethostname()
    run(settings, database_url=database_url, redis_url=redis_url, consumer=consumer)
