"""Per-client rate limits the way Steam applies them per IP: sliding windows, then bans.

A client is the TCP peer address. Each endpoint group has its own window; a request
that fits is counted, one that does not draws a strike and a 429. Enough strikes in a
short time earn a ban from every group, longer each time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from simulator.config import Group, LimitsConfig

Verdict = Literal["ok", "limited", "banned"]


@dataclass(slots=True)
class _Client:
    windows: dict[Group, deque[tuple[float, str]]] = field(default_factory=dict)
    strikes: deque[float] = field(default_factory=deque)
    banned_until: float = 0.0
    bans: int = 0


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What the limiter knows about one client, for `/__sim/stats`."""

    banned_until: float | None
    bans: int
    recent_strikes: int


class Limiter:
    """Decides, per request, whether a client is within its limits; remembers who is banned."""

    def __init__(self, config: LimitsConfig) -> None:
        self.config = config
        self._clients: dict[str, _Client] = {}

    def reset(self) -> None:
        self._clients.clear()

    def check(self, client: str, group: Group, now: float, key: str = "") -> Verdict:
        """Admit and count the request, or say why not; a refusal may escalate to a ban.

        `key` names what was asked for; a `distinct` window counts each key once.
        """
        if not self.config.enabled:
            return "ok"
        state = self._clients.setdefault(client, _Client())
        if now < state.banned_until:
            return "banned"
        rule = self.config.windows.get(group)
        if rule is None:
            return "ok"
        window = state.windows.setdefault(group, deque())
        while window and window[0][0] <= now - rule.window_s:
            window.popleft()
        if rule.distinct and any(seen == key for _, seen in window):
            return "ok"
        used = len({seen for _, seen in window}) if rule.distinct else len(window)
        if used < rule.limit:
            window.append((now, key))
            return "ok"
        self._strike(state, now)
        return "banned" if now < state.banned_until else "limited"

    def _strike(self, state: _Client, now: float) -> None:
        state.strikes.append(now)
        while state.strikes and state.strikes[0] <= now - self.config.strike_window_s:
            state.strikes.popleft()
        ladder = self.config.ban_ladder_s
        if not ladder or len(state.strikes) < self.config.strikes:
            return
        state.banned_until = now + ladder[min(state.bans, len(ladder) - 1)]
        state.bans += 1
        state.strikes.clear()
        # A ban outlasts every window: forget the old requests so the client starts clean.
        state.windows.clear()

    def describe(self, client: str, now: float) -> ClientLimits:
        state = self._clients.get(client)
        if state is None:
            return ClientLimits(banned_until=None, bans=0, recent_strikes=0)
        recent = sum(1 for t in state.strikes if t > now - self.config.strike_window_s)
        banned = state.banned_until if state.banned_until > now else None
        return ClientLimits(banned_until=banned, bans=state.bans, recent_strikes=recent)

    def clients(self) -> list[str]:
        return list(self._clients)
