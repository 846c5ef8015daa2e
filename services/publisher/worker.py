"""The publisher's dramatiq entry point: ``dramatiq services.publisher.worker:setup``.

``setup`` runs in each worker process; importing this module starts nothing.
"""

from __future__ import annotations

from shared.broker import RESULTS_QUEUE
from shared.resources import setup_worker

SERVICE = "publisher"
QUEUES = (RESULTS_QUEUE,)


def setup() -> None:
    setup_worker(service=SERVICE, queues=QUEUES)
