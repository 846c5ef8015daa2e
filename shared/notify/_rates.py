"""How fast a destination may be sent to: per destination and, where the service caps an
account (a Telegram bot), per account, shared by every notifier replica through Redis.

The services' published limits: Telegram about 30 messages a second per bot and 20 a minute
per group chat; Discord webhooks about 5 requests per 2 seconds; Slack about one a second per
webhook. A moving window (the ``limits`` library's, on Redis, one second longer than the rate's
own: see ``services.notifier.deliver.MARGIN``) means no destination ever sees more than its
rate in any window, whichever replica sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: float

    def __str__(self) -> str:
        seconds = int(self.seconds) if self.seconds == int(self.seconds) else self.seconds
        return f"{self.limit}/{seconds}s"

    def per_second(self) -> float:
        return self.limit / self.seconds


#: Per destination, by scheme (both the plain and the secure form).
DESTINATION_RATES: dict[str, Rate] = {
    "tgram": Rate(20, 60),
    "discord": Rate(5, 2),
    "slack": Rate(1, 1),
    "default": Rate(10, 1),
}
#: Per account (what in the URL names it: the Telegram bot token).
ACCOUNT_RATES: dict[str, Rate] = {"tgram": Rate(30, 1)}


def destination_rate(scheme: str, overrides: Mapping[str, Rate]) -> Rate:
    plain = scheme.removesuffix("s") if scheme.endswith("s") and scheme != "s" else scheme
    for name in (scheme, plain, "default"):
        if name in overrides:
            return overrides[name]
    for name in (scheme, plain):
        if name in DESTINATION_RATES:
            return DESTINATION_RATES[name]
    return DESTINATION_RATES["default"]


def account_rate(scheme: str) -> Rate | None:
    return ACCOUNT_RATES.get(scheme)
