"""What a send's answer means: sent, wait (429 and its Retry-After), gone (pause), retry."""

from __future__ import annotations

import pytest

from services.notifier.send import judge, retry_after_seconds


def test_a_429_carries_its_retry_after_in_seconds_or_as_a_date() -> None:
    assert judge(False, [(429, "7")]).retry_after == 7.0
    verdict = judge(False, [(429, "Wed, 03 Dec 2026 10:00:30 GMT")])
    assert verdict.verdict == "rate_limited"
    at = 1_796_292_000.0  # 2026-12-03 10:00:00 UTC
    assert retry_after_seconds("Wed, 03 Dec 2026 10:00:30 GMT", now=at) == 30.0
    assert judge(False, [(429, None)]).retry_after is None
    assert retry_after_seconds("soon") is None


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_unauthorised_or_not_found_means_the_destination_is_gone(status: int) -> None:
    result = judge(False, [(status, None)])
    assert result.verdict == "gone"
    assert str(status) in result.error


@pytest.mark.parametrize(
    ("noted", "reason"),
    [
        ([(503, None)], "5xx"),
        ([(400, None)], "4xx"),
        ([(0, None)], "timeout"),
        ([], "connection"),
        ([(-1, None)], "connection"),
        ([(504, None)], "timeout"),
    ],
)
def test_other_failures_are_retried_with_their_reason(
    noted: list[tuple[int, str | None]], reason: str
) -> None:
    result = judge(False, noted)
    assert result.verdict == "failed"
    assert result.reason == reason


def test_success_is_sent_whatever_came_before() -> None:
    assert judge(True, [(503, None), (200, None)]).verdict == "sent"
