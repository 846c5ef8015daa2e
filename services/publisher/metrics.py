"""The publisher's own metrics, counted where a result is judged (``publish.py``)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.alerts import EVENT_KINDS

RESULTS = Counter("steamwatch_results", "Results judged by outcome", ["outcome"])
EVENTS = Counter("steamwatch_events_published", "Events published, by kind", ["kind"])
DUPLICATES = Counter(
    "steamwatch_events_duplicates_suppressed",
    "Events not published again: their id was published already (a redelivery)",
)
OUTCOMES = ("dropped_gone", "dropped_inactive", "dropped_malformed", "stale_result", "not_judged")


def seed() -> None:
    """Every known series exists from the start, at 0."""
    for kind in sorted(EVENT_KINDS):
        EVENTS.labels(kind=kind)
    for outcome in OUTCOMES:
        RESULTS.labels(outcome=outcome)
