"""Clocks the simulator reads time from: the wall clock, or a manual one tests move by hand.

Every time-dependent part of the simulator (prices, rate-limit windows, bans, fault
durations, stats timestamps) reads one injected clock, so a test controls all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the epoch, as `time.time` returns them."""


def system_clock() -> float:
    """The wall clock."""
    return time.time()


class ManualClock:
    """A clock that stands still until told to move; callable like `time.time`."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, got {seconds}")
        self._now += seconds
        return self._now
