"""The fetcher's dramatiq entry point: ``dramatiq services.fetcher.worker:setup``.

``setup`` runs in each worker process; importing this module starts nothing.
"""

from __future__ import annotations

import dramatiq
from prometheus_client import Counter

from services.fetcher.check import Fetcher, check_task
from services.fetcher.steam import SteamResources
from shared.broker import CHECK_ACTOR, CHECKS_QUEUE
from shared.handback import HandBack
from shared.messages import CheckMessage, guarded
from shared.resources import setup_worker
from shared.schedule import backoff_of

SERVICE = "fetcher"
QUEUES = (CHECKS_QUEUE,)

CHECKS = Counter("steamwatch_checks", "Checks by outcome", ["outcome"])
TRANSITIONS = Counter(
    "steamwatch_task_transitions", "Tasks that became stalled, recovered or failed", ["to"]
)
OUTCOMES = ("ok", "error", "deferred", "interrupted", "dropped_gone", "dropped_inactive",
            "dropped_stale", "dropped_malformed")  # fmt: skip


def setup() -> None:
    broker, resources, settings = setup_worker(service=SERVICE, queues=QUEUES)
    steam = SteamResources(settings=settings, resources=resources)
    broker.add_middleware(steam)
    broker.add_middleware(HandBack())  # last: see shared.handback

    backoff = backoff_of(settings)

    def count(outcome: str) -> None:
        CHECKS.labels(outcome=outcome).inc()

    def transition(status: str) -> None:
        TRANSITIONS.labels(to=status).inc()

    # Every known series exists from the start, at 0: rates and alerts need no first event.
    for outcome in OUTCOMES:
        CHECKS.labels(outcome=outcome)
    for status in ("stalled", "recovered", "failed"):
        TRANSITIONS.labels(to=status)

    async def check(message: CheckMessage) -> None:
        fetcher = Fetcher(db=resources.pools.db, steam=steam.client, broker=broker, count=count,
                          backoff=backoff, transition=transition,
                          stopping=lambda: steam.stopping)  # fmt: skip
        await check_task(fetcher, message)

    dramatiq.actor(
        actor_name=CHECK_ACTOR,
        queue_name=CHECKS_QUEUE,
        broker=broker,
        # Retries are for outages (database down); the lease makes a retried check safe.
        max_retries=5,
        min_backoff=1_000,
        max_backoff=30_000,
        time_limit=int((settings.http_timeout * 3 + 30) * 1000),
    )(guarded(CheckMessage, check, count=count))
