"""The publisher's own metrics, counted where the outbox is drained (``service.py``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SENT = Counter(
    "steamwatch_outbox_events_sent",
    "Events sent from the outbox: published, or duplicate (published already by their check)",
    ["outcome"],
)
FAILURES = Counter(
    "steamwatch_outbox_drain_failures",
    "Publisher passes that could not drain the outbox (PostgreSQL or Redis away)",
)
WAITING = Gauge("steamwatch_outbox_events", "Events waiting in the outbox")
OLDEST = Gauge(
    "steamwatch_outbox_oldest_age_seconds", "Age of the oldest event in the outbox (0 when empty)"
)


def seed() -> None:
    """Every known series exists from the start, at 0."""
    for outcome in ("published", "duplicate"):
        SENT.labels(outcome=outcome)
