"""The fetcher's own metrics, counted where a check ends (:mod:`services.fetcher.check`)."""

from __future__ import annotations

from prometheus_client import Counter

CHECKS = Counter("steamwatch_checks", "Checks by outcome", ["outcome"])
TRANSITIONS = Counter(
    "steamwatch_task_transitions", "Tasks that became stalled, recovered or failed", ["to"]
)
OUTCOMES = (
    "ok",
    "error",
    "deferred",  # no proxy had budget: the check waits, it did not fail
    "interrupted",
    "dropped_gone",
    "dropped_inactive",
    "dropped_stale",
    "dropped_malformed",
)
STATUSES = ("stalled", "recovered", "failed")


def seed() -> None:
    """Every known series exists from the start, at 0: rates and alerts need no first event."""
    for outcome in OUTCOMES:
        CHECKS.labels(outcome=outcome)
    for status in STATUSES:
        TRANSITIONS.labels(to=status)
