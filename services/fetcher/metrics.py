"""The fetcher's own metrics, counted where a check ends (:mod:`services.fetcher.check`)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.alerts import EVENT_KINDS

CHECKS = Counter("steamwatch_checks", "Checks by outcome", ["outcome"])
TRANSITIONS = Counter(
    "steamwatch_task_transitions", "Tasks that became stalled, recovered or failed", ["to"]
)
EVENTS = Counter(
    "steamwatch_events_raised",
    "Events checks raised, by kind (written to the outbox in the check's transaction)",
    ["kind"],
)
SENT = Counter(
    "steamwatch_events_sent",
    "Events after their check's commit: published, duplicate (published already), or left in "
    "the outbox for the publisher (Redis away)",
    ["outcome"],
)
SENT_OUTCOMES = ("published", "duplicate", "left")
OUTCOMES = (
    "ok",
    "error",
    "deferred",  # no proxy had budget: the check waits, it did not fail
    "interrupted",
    "dropped_gone",
    "dropped_inactive",
    "dropped_stale",
    "dropped_malformed",
    "not_judged",  # the conditions or the result do not fit the watch: stored, not judged
)
STATUSES = ("stalled", "recovered", "failed")


def seed() -> None:
    """Every known series exists from the start, at 0: rates and alerts need no first event."""
    for outcome in OUTCOMES:
        CHECKS.labels(outcome=outcome)
    for status in STATUSES:
        TRANSITIONS.labels(to=status)
    for kind in sorted(EVENT_KINDS):
        EVENTS.labels(kind=kind)
    for outcome in SENT_OUTCOMES:
        SENT.labels(outcome=outcome)
