"""The busiest-window count that tests use to judge their clients as Steam would."""

from __future__ import annotations

import pytest

from simulator.stats import max_in_window, outcome_of


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([], 60.0, 0),
        ([0.0, 10.0, 20.0], 60.0, 3),
        ([0.0, 60.0, 120.0], 60.0, 1),
        ([0.0, 59.9, 60.0, 61.0], 60.0, 3),
        ([5.0, 1.0, 3.0], 3.0, 2),
    ],
    ids=["empty", "all-in-one", "exactly-a-window-apart", "edge-is-exclusive", "unsorted"],
)
def test_max_in_window(times: list[float], window: float, expected: int) -> None:
    assert max_in_window(times, window) == expected


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "served"), (304, "not_modified"), (429, "rate_limited"), (302, "other"), (500, "other")],
)
def test_outcome_of_status(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome
