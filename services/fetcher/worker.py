"""The fetcher's dramatiq entry point: ``dramatiq services.fetcher.worker:setup``.

``setup`` runs in each worker process; importing this module starts nothing.
"""

from __future__ import annotations

from shared.broker import CHECKS_QUEUE
from shared.resources import setup_worker

SERVICE = "fetcher"
QUEUES = (CHECKS_QUEUE,)


def setup() -> None:
    setup_worker(service=SERVICE, queues=QUEUES)
