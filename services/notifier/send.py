"""One message to one destination through Apprise, with what the service answered.

Apprise reports only success or failure; whether a failure was a 429 with ``Retry-After``, an
"unauthorised", or a timeout decides what the notifier does next. So each send watches the
HTTP responses its own call receives: ``requests.Session.send`` (which every Apprise HTTP
plugin goes through, its policy sessions included) is wrapped once to note each response's
status and ``Retry-After`` into a context variable that only the send in progress holds.
Apprise copies the caller's context into its worker threads, so the note reaches us there too.
"""

from __future__ import annotations

import contextvars
import email.utils
import time
from dataclasses import dataclass
from typing import Any, Literal

import apprise
import requests

Verdict = Literal["sent", "rate_limited", "gone", "failed"]
#: Answers that mean the destination will not take messages until someone fixes it.
GONE = frozenset({401, 403, 404, 410})

#: (status, Retry-After) of each response; status 0 for a request that timed out, -1 for one
#: that got no answer at all (refused, reset).
Noted = list[tuple[int, str | None]]
_seen: contextvars.ContextVar[Noted | None] = contextvars.ContextVar(
    "steamwatch_notify_responses", default=None
)
_original_send: Any = None
_ASSET = apprise.AppriseAsset(async_mode=False)


def install_response_observer() -> None:
    """Wrap ``requests.Session.send`` once per process (the notifier's start)."""
    global _original_send
    if _original_send is not None:
        return
    _original_send = requests.Session.send

    def send(self: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
        noted = _seen.get()
        try:
            response: requests.Response = _original_send(self, request, **kwargs)
        except requests.Timeout:
            if noted is not None:
                noted.append((0, None))
            raise
        except requests.RequestException:
            if noted is not None:
                noted.append((-1, None))
            raise
        if noted is not None:
            noted.append((response.status_code, response.headers.get("Retry-After")))
        return response

    requests.Session.send = send  # type: ignore[method-assign]


@dataclass(frozen=True)
class SendResult:
    """What came of one send: the verdict, the last HTTP status, and how long to wait."""

    verdict: Verdict
    status: int | None = None
    retry_after: float | None = None
    error: str = ""
    reason: str = ""  # for the retry metric: 5xx, 4xx, 429, timeout, connection, error


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def send_blocking(url: str, *, title: str, body: str, timeout: float) -> SendResult:
    """Send one message (blocking: run it in a thread); never raises for the service's sake."""
    # Sequential: the send runs in this (the notifier's) thread, not handed on to Apprise's
    # own pool, so it leaves right after its rate-limit slot was taken.
    plugin = apprise.Apprise.instantiate(url, asset=_ASSET, suppress_exceptions=True)
    if plugin is None:
        return SendResult("failed", error="Apprise cannot read the destination URL", reason="error")
    # Our retries replace Apprise's own; the timeouts bound the thread's time.
    plugin.socket_connect_timeout = min(timeout, 4.0)
    plugin.socket_read_timeout = timeout
    notifier = apprise.Apprise(asset=_ASSET)
    notifier.add(plugin)
    noted: Noted = []
    token = _seen.set(noted)
    try:
        ok = bool(notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT))
    except Exception as e:  # a plugin bug must not end a send loop
        return SendResult("failed", error=f"Apprise raised {type(e).__name__}", reason="error")
    finally:
        _seen.reset(token)
    return judge(ok, noted)


def judge(ok: bool, responses: Noted) -> SendResult:
    """The verdict from Apprise's answer and the HTTP responses its call received."""
    status, retry_after = responses[-1] if responses else (None, None)
    if ok:
        return SendResult("sent", status=status if status and status > 0 else None)
    if status == 0:
        return SendResult("failed", error="the service did not answer in time", reason="timeout")
    if status is None or status < 0:
        # No HTTP response at all: refused, reset, or a service Apprise reaches otherwise (mail).
        return SendResult(
            "failed",
            error="no answer from the service (connection refused or reset)",
            reason="connection",
        )
    if status == 429:
        return SendResult(
            "rate_limited",
            status=status,
            retry_after=retry_after_seconds(retry_after),
            error="429 Too Many Requests",
            reason="429",
        )
    if status in GONE:
        return SendResult("gone", status=status, error=_describe(status), reason="4xx")
    reason = "5xx" if status >= 500 else "4xx" if status >= 400 else "error"
    if status in (408, 504):
        reason = "timeout"
    return SendResult("failed", status=status, error=_describe(status), reason=reason)


def _describe(status: int) -> str:
    try:
        from http import HTTPStatus

        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"
