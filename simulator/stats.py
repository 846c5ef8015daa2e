"""What the simulator saw, per client and endpoint: counts by outcome and recent timestamps.

Tests and benchmarks check their own clients against this view, e.g. "no client sent
more than N requests to a group in any W seconds", the way Steam would judge them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from simulator.config import ENDPOINTS, GROUP_OF, Endpoint, Group

Outcome = Literal["served", "not_modified", "rate_limited", "fault", "other"]


@dataclass(slots=True)
class Counter:
    """One client's traffic to one endpoint; `seen_at`/`served_at` keep the latest `ring`.

    Every request is `seen` and gets one outcome, except a `slow` fault: its answer is
    late but real, so it counts as a fault and as served.
    """

    ring: int
    seen: int = 0
    served: int = 0
    not_modified: int = 0
    rate_limited: int = 0
    fault: int = 0
    other: int = 0
    seen_at: deque[float] = field(init=False)
    served_at: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        self.seen_at = deque(maxlen=self.ring)
        self.served_at = deque(maxlen=self.ring)

    def as_dict(self, timestamps: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seen": self.seen,
            "served": self.served,
            "not_modified": self.not_modified,
            "rate_limited": self.rate_limited,
            "faults": self.fault,
            "other": self.other,
        }
        if timestamps:
            data["seen_at"] = list(self.seen_at)
            data["served_at"] = list(self.served_at)
        return data


def outcome_of(status: int) -> Outcome:
    """Classify a response the handler produced (faults are counted by the caller)."""
    if 200 <= status < 300:
        return "served"
    if status == 304:
        return "not_modified"
    if status == 429:
        return "rate_limited"
    return "other"


def max_in_window(times: Iterable[float], window_s: float) -> int:
    """The most timestamps that fall inside any half-open window of `window_s` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class Stats:
    """Counters for every (client, endpoint) pair the simulator has seen."""

    def __init__(self, ring: int) -> None:
        self._ring = ring
        self._counters: dict[str, dict[Endpoint, Counter]] = {}

    def reset(self) -> None:
        self._counters.clear()

    def counter(self, client: str, endpoint: Endpoint) -> Counter:
        per_client = self._counters.setdefault(client, {})
        found = per_client.get(endpoint)
        if found is None:
            found = per_client[endpoint] = Counter(self._ring)
        return found

    def seen(self, client: str, endpoint: Endpoint, now: float) -> None:
        counter = self.counter(client, endpoint)
        counter.seen += 1
        counter.seen_at.append(now)

    def record(self, client: str, endpoint: Endpoint, outcome: Outcome, now: float) -> None:
        counter = self.counter(client, endpoint)
        setattr(counter, outcome, getattr(counter, outcome) + 1)
        if outcome in ("served", "not_modified"):
            counter.served_at.append(now)

    def clients(self) -> list[str]:
        return list(self._counters)

    def group_times(self, client: str, group: Group, *, served_only: bool = False) -> list[float]:
        """Every kept timestamp of `client`'s requests to the endpoints of `group`."""
        times: list[float] = []
        for endpoint, counter in self._counters.get(client, {}).items():
            if GROUP_OF[endpoint] == group:
                times.extend(counter.served_at if served_only else counter.seen_at)
        return times

    def snapshot(
        self, *, window_s: float | None, timestamps: bool, served_only: bool = False
    ) -> dict[str, Any]:
        """JSON-ready view; with `window_s`, the busiest window per client and group too.

        The busiest window counts every request seen (as Steam counts them), or with
        `served_only` only those answered 2xx/304.
        """
        clients: dict[str, Any] = {}
        keys = ("seen", "served", "not_modified", "rate_limited", "faults", "other")
        totals = {endpoint: dict.fromkeys(keys, 0) for endpoint in ENDPOINTS}
        for client, per_endpoint in self._counters.items():
            entry: dict[str, Any] = {
                "endpoints": {e: c.as_dict(timestamps) for e, c in per_endpoint.items()}
            }
            if window_s is not None:
                groups = sorted({GROUP_OF[e] for e in per_endpoint})
                entry["max_in_window"] = {
                    g: max_in_window(self.group_times(client, g, served_only=served_only), window_s)
                    for g in groups
                }
            clients[client] = entry
            for endpoint, counter in per_endpoint.items():
                for key, value in counter.as_dict(timestamps=False).items():
                    totals[endpoint][key] += value
        return {"clients": clients, "totals": totals}
