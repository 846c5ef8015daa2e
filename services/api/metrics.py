"""The API's metrics: requests by route, method and status; latency; refused tokens."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "steamwatch_api_requests_total",
    "API requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "steamwatch_api_request_duration_seconds",
    "Time from a request's arrival to its answer, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
AUTH_FAILURES = Counter(
    "steamwatch_api_auth_failures_total",
    "Requests refused for their token: missing, malformed, unknown or revoked.",
    ["reason"],
)


def seed() -> None:
    """Every refusal reason at 0 from the start, so rates and alerts see a series."""
    for reason in ("missing", "malformed", "unknown", "revoked"):
        AUTH_FAILURES.labels(reason)
