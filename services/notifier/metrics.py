"""The notifier's own metrics, counted where a delivery happens (``deliver.py``, ``stream.py``).

Destination URLs never appear in a label: ``channel`` is the Apprise service ("Telegram",
"JSON", "E-Mail"), beside the outcome. (Not ``service``: that is the scrape target's label.)
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = ("sent", "retry", "rate_limited", "dead", "paused", "refused")
DELIVERIES = Counter(
    "steamwatch_notifier_deliveries",
    "Delivery attempts by outcome and channel (the Apprise service): sent, retry (will be "
    "tried again), rate_limited (held back before sending), dead (dead-lettered), paused "
    "(the destination refused us: unauthorised or not found), refused (it reaches inside)",
    ["outcome", "channel"],
)
LATENCY = Histogram(
    "steamwatch_notifier_delivery_latency_seconds",
    "From the check that raised an event to its delivery being accepted by the service",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
RETRIES = Counter(
    "steamwatch_notifier_retries",
    "Failed sends that will be retried, by reason (5xx, 4xx, 429, timeout, connection, error)",
    ["reason", "channel"],
)
RESENT = Counter(
    "steamwatch_notifier_resent_after_crash",
    "Deliveries sent again because a notifier stopped mid-send (each may be a duplicate)",
)
EVENTS = Counter(
    "steamwatch_notifier_events",
    "Stream entries read, by outcome: matched (deliveries recorded), unmatched (no "
    "subscription wants it), malformed (not an event; acknowledged and logged)",
    ["outcome"],
)
PAUSED = Counter(
    "steamwatch_notifier_subscriptions_paused",
    "Subscriptions paused because their destination answered unauthorised or not found",
)
DEAD_LETTERS = Gauge(
    "steamwatch_notifier_dead_letters", "Deliveries in the dead-letter list (all notifiers)"
)
PENDING = Gauge(
    "steamwatch_notifier_pending_deliveries",
    "Deliveries waiting to be sent or retried (all notifiers)",
)
OLDEST_PENDING = Gauge(
    "steamwatch_notifier_oldest_pending_seconds",
    "Age of the oldest delivery still waiting (0 when none)",
)
BEHIND = Gauge(
    "steamwatch_notifier_stream_behind_seconds",
    "Age of the oldest event in the stream no notifier has read yet (0 when all are read)",
)
UNACKED = Gauge(
    "steamwatch_notifier_stream_unacked",
    "Stream entries read by a notifier and not yet acknowledged (all notifiers)",
)
RETRY_REASONS = ("5xx", "4xx", "429", "timeout", "connection", "unresolved", "error")


def seed(channels: tuple[str, ...] = ("JSON", "Telegram", "Discord")) -> None:
    """Every known series exists from the start, at 0."""
    for channel in channels:
        for outcome in OUTCOMES:
            DELIVERIES.labels(outcome=outcome, channel=channel)
        for reason in RETRY_REASONS:
            RETRIES.labels(reason=reason, channel=channel)
    for outcome in ("matched", "unmatched", "malformed"):
        EVENTS.labels(outcome=outcome)
