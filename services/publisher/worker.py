"""The publisher's dramatiq entry point: ``dramatiq services.publisher.worker:setup``.

``setup`` runs in each worker process; importing this module starts nothing.
"""

from __future__ import annotations

import dramatiq
from prometheus_client import Counter

from services.publisher.publish import Publisher, publish_result
from shared.broker import RESULT_ACTOR, RESULTS_QUEUE
from shared.events import EVENT_KINDS
from shared.handback import HandBack
from shared.messages import ResultMessage, guarded
from shared.resources import setup_worker

SERVICE = "publisher"
QUEUES = (RESULTS_QUEUE,)

RESULTS = Counter("steamwatch_results", "Results judged by outcome", ["outcome"])
EVENTS = Counter("steamwatch_events_published", "Events published, by kind", ["kind"])
DUPLICATES = Counter(
    "steamwatch_events_duplicates_suppressed",
    "Events not published again: their id was published already (a redelivery)",
)


def setup() -> None:
    broker, resources, _settings = setup_worker(service=SERVICE, queues=QUEUES)
    broker.add_middleware(HandBack())  # last: see shared.handback

    for kind in sorted(EVENT_KINDS):  # every series from the start, at 0
        EVENTS.labels(kind=kind)
    for outcome in ("dropped_gone", "dropped_inactive", "dropped_malformed", "stale_result",
                    "not_judged"):  # fmt: skip
        RESULTS.labels(outcome=outcome)

    def count(outcome: str) -> None:
        if outcome.startswith("event_"):
            EVENTS.labels(kind=outcome.removeprefix("event_")).inc()
        elif outcome == "duplicate_event":
            DUPLICATES.inc()
        else:
            RESULTS.labels(outcome=outcome).inc()

    async def publish(message: ResultMessage) -> None:
        pools = resources.pools
        await publish_result(Publisher(db=pools.db, redis=pools.redis, count=count), message)

    dramatiq.actor(
        actor_name=RESULT_ACTOR,
        queue_name=RESULTS_QUEUE,
        broker=broker,
        max_retries=5,
        min_backoff=1_000,
        max_backoff=30_000,
        time_limit=60_000,
    )(guarded(ResultMessage, publish, count=count))
