"""The proxy pool: which proxy may call which Steam endpoint now, agreed by every fetcher at once.

Budgets are per proxy and per endpoint (N requests in any window of W seconds, a sliding log in
Redis), cool-downs follow a 429 with escalation, and a 407 disables a proxy. All decisions run
in one server-side Lua script, so processes never race on a read-modify-write. Selection is the
least recently used proxy with budget left; when none has any, :class:`ProxyPoolExhausted`
carries the earliest time a slot frees, so the caller reschedules instead of spinning.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import redis.asyncio
import structlog
from prometheus_client import Counter, Gauge

from shared.observability import SecretURL

log = structlog.get_logger(__name__)

Endpoint = Literal["priceoverview", "listings", "orderbook"]
ENDPOINTS: tuple[Endpoint, ...] = ("priceoverview", "listings", "orderbook")
PROXY_PREFIX = "steamwatch:proxy"

COOLDOWNS = Counter(
    "steamwatch_proxy_cooldowns", "Proxy cool-downs after a 429", ["proxy", "endpoint"]
)
DISABLED = Counter("steamwatch_proxy_disabled", "Proxies disabled after a 407", ["proxy"])
UNREACHABLE = Counter("steamwatch_proxy_unreachable", "Proxies rested, unreachable", ["proxy"])
EXHAUSTED = Counter(
    "steamwatch_proxy_pool_exhausted", "Requests deferred: no proxy had budget", ["endpoint"]
)
# Shared by every fetcher (the windows live in Redis): the latest reading is the truth.
BUDGET_LEFT = Gauge(
    "steamwatch_proxy_budget_left",
    "Requests a proxy may still send on an endpoint in its current window, as last taken",
    ["proxy", "endpoint"],
    multiprocess_mode="mostrecent",
)


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` requests in any ``window`` seconds, per proxy."""

    limit: int
    window: float


#: Community-measured limits per IP (Valve publishes none); see the samples README.
DEFAULT_BUDGETS: Mapping[Endpoint, Budget] = {
    "priceoverview": Budget(limit=20, window=60),
    "listings": Budget(limit=4, window=60),
    "orderbook": Budget(limit=10, window=3600),
}
DEFAULT_COOLDOWNS: tuple[float, ...] = (300, 600, 1200, 3600)


class ProxyPoolExhausted(Exception):
    """Raised when no proxy may call ``endpoint`` now; ``retry_at`` is when one may."""

    def __init__(self, endpoint: str, retry_at: datetime) -> None:
        self.endpoint = endpoint
        self.retry_at = retry_at
        super().__init__(f"no proxy free for {endpoint} until {retry_at.isoformat()}")


@dataclass(frozen=True)
class Proxy:
    """One configured proxy. ``label`` names it in logs and Redis keys; it holds no secret."""

    label: str
    url: SecretURL | None  # None: direct

    @classmethod
    def from_url(cls, url: SecretURL) -> Proxy:
        raw = url.reveal()
        if raw == "direct":
            return cls(label="direct", url=None)
        return cls(label=proxy_label(raw), url=url)


def proxy_label(proxy: str) -> str:
    """A proxy's name in logs, metrics, errors and Redis keys: ``host:port``, never a secret.

    Rotating-proxy services tell sessions apart by user name: those stay distinct as
    ``host:port#<digest of the user name>``, without the name itself (often a credential).
    A label passes through unchanged.
    """
    if "://" not in proxy and "@" not in proxy:
        return proxy
    # Credentials first: a password may itself contain "/" (or "@", hence the last "@").
    credentials, _, address = proxy.split("://", 1)[-1].rpartition("@")
    label = address.split("/", 1)[0]
    user = credentials.split(":", 1)[0]
    if user:
        label = f"{label}#{hashlib.sha256(user.encode()).hexdigest()[:8]}"
    return label


@dataclass(frozen=True)
class Slot:
    """Permission to send one request to ``endpoint`` through ``proxy``."""

    proxy: Proxy
    endpoint: Endpoint


# KEYS: lru, then for each candidate proxy (all, or some: the LRU order skips the others): log,
# cool, disabled.  ARGV: limit, window_ms, slack_ms, member, candidate labels...
# Returns {index among the candidates, budget left} on success or {0, earliest_free_ms}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local now_us = t[1] * 1000000 + t[2]  -- LRU order needs finer than ms
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) + tonumber(ARGV[3])
local member = ARGV[4]
local n = (#KEYS - 1) / 3
local order = redis.call('ZRANGE', KEYS[1], 0, -1)
local index_of = {}
for i = 1, n do index_of[ARGV[4 + i]] = i end
local used = {}
for _, label in ipairs(order) do used[label] = true end
-- Never used first (in configured order), then least recently used first.
local candidates = {}
for i = 1, n do if not used[ARGV[4 + i]] then table.insert(candidates, i) end end
for _, label in ipairs(order) do
  if index_of[label] then table.insert(candidates, index_of[label]) end
end
local earliest = nil
for _, i in ipairs(candidates) do
  local log_key, cool_key, off_key = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local free_at = nil
  if redis.call('EXISTS', off_key) == 1 then
    free_at = now + redis.call('PTTL', off_key)
  elseif redis.call('EXISTS', cool_key) == 1 then
    free_at = now + redis.call('PTTL', cool_key)
  else
    redis.call('ZREMRANGEBYSCORE', log_key, '-inf', now - window)
    local used = redis.call('ZCARD', log_key)
    if used < limit then
      redis.call('ZADD', log_key, now, member)
      redis.call('PEXPIRE', log_key, window)
      redis.call('ZADD', KEYS[1], now_us, ARGV[4 + i])
      return {i, limit - used - 1}
    end
    local oldest = redis.call('ZRANGE', log_key, 0, 0, 'WITHSCORES')
    free_at = tonumber(oldest[2]) + window
  end
  if earliest == nil or free_at < earliest then earliest = free_at end
end
return {0, earliest or (now + 1000)}
"""

# KEYS: cool, strikes.  ARGV: ladder of cool-downs in ms..., decay_ms.
# Returns {1, cool-down ms} for a new cool-down; {0, ms left} for a 429 that arrives during one
# (a request admitted before it began): the same episode, not another strike.
_COOL_DOWN = """
local current = redis.call('GET', KEYS[1])
if current and current ~= 'unreachable' then
  return {0, math.max(redis.call('PTTL', KEYS[1]), 0)}
end
local strikes = redis.call('INCR', KEYS[2])
local step = math.min(strikes, #ARGV - 1)
local ms = tonumber(ARGV[step])
redis.call('SET', KEYS[1], strikes, 'PX', ms)
redis.call('PEXPIRE', KEYS[2], ms + tonumber(ARGV[#ARGV]))
return {1, ms}
"""


@dataclass
class ProxyPool:
    """The configured proxies and their shared state in Redis."""

    client: redis.asyncio.Redis
    proxies: Sequence[Proxy]
    budgets: Mapping[Endpoint, Budget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    cooldowns: Sequence[float] = DEFAULT_COOLDOWNS
    #: Added to every window: a request admitted at the edge may reach Steam a little later.
    slack: float = 0.5
    #: How long strikes are remembered after a cool-down ends.
    strike_memory: float = 3600
    #: How long a proxy that answered 407 stays disabled.
    disabled_for: float = 3600

    def __post_init__(self) -> None:
        if not self.proxies:
            raise ValueError("a proxy pool needs at least one proxy (or 'direct')")
        self._acquire = self.client.register_script(_ACQUIRE)
        self._cool_down = self.client.register_script(_COOL_DOWN)

    @classmethod
    def from_urls(
        cls, redis_client: redis.asyncio.Redis, urls: Sequence[SecretURL], **kw: object
    ) -> ProxyPool:
        return cls(client=redis_client, proxies=[Proxy.from_url(u) for u in urls], **kw)  # type: ignore[arg-type]

    def seed_metrics(self) -> None:
        """Every proxy's cool-down and exhaustion series, at 0 from the start (alerts need no
        first event)."""
        for endpoint in self.budgets:
            EXHAUSTED.labels(endpoint=endpoint)
            for proxy in self.proxies:
                COOLDOWNS.labels(proxy=proxy.label, endpoint=endpoint)

    def _keys(self, endpoint: str, label: str) -> tuple[str, str, str, str]:
        base = f"{PROXY_PREFIX}:{endpoint}:{label}"
        return f"{base}:log", f"{base}:cool", f"{PROXY_PREFIX}:{label}:disabled", f"{base}:strikes"

    async def acquire(self, endpoint: Endpoint) -> Slot:
        """Take one request slot for ``endpoint`` from the least recently used proxy with budget."""
        taken = await self._take(endpoint, self.proxies)
        if isinstance(taken, datetime):
            EXHAUSTED.labels(endpoint=endpoint).inc()
            raise ProxyPoolExhausted(endpoint, taken)
        return taken

    async def acquire_another(self, endpoint: Endpoint, *, besides: Collection[str]) -> Slot | None:
        """A slot on a proxy not labelled in ``besides``, for a request those could not answer;
        None when no other proxy has budget.

        Not counted as exhaustion: nothing waits for a slot, the caller keeps the answer it has.
        """
        others = [proxy for proxy in self.proxies if proxy.label not in besides]
        if not others:
            return None
        taken = await self._take(endpoint, others)
        return None if isinstance(taken, datetime) else taken

    async def _take(self, endpoint: Endpoint, proxies: Sequence[Proxy]) -> Slot | datetime:
        """A slot on the least recently used of ``proxies`` with budget, or when one frees."""
        budget = self.budgets[endpoint]
        keys = [f"{PROXY_PREFIX}:{endpoint}:lru"]
        for proxy in proxies:
            keys.extend(self._keys(endpoint, proxy.label)[:3])
        args: list[str | int] = [
            budget.limit,
            int(budget.window * 1000),
            int(self.slack * 1000),
            uuid.uuid4().hex,
            *(p.label for p in proxies),
        ]
        result = await self._acquire(keys=keys, args=args)
        if int(result[0]) == 0:
            return datetime.fromtimestamp(int(result[1]) / 1000, tz=UTC)
        proxy = proxies[int(result[0]) - 1]
        BUDGET_LEFT.labels(proxy=proxy.label, endpoint=endpoint).set(int(result[1]))
        return Slot(proxy=proxy, endpoint=endpoint)

    async def report_rate_limited(self, slot: Slot) -> float:
        """Steam answered 429: cool this proxy down for this endpoint, longer each time.

        Requests already in flight when a cool-down starts may answer 429 too; those belong to
        the same episode and leave the cool-down as it is. Returns the seconds it has left.
        """
        log_key, cool, _, strikes = self._keys(slot.endpoint, slot.proxy.label)
        ladder = [int(c * 1000) for c in self.cooldowns]
        started, ms = await self._cool_down(
            keys=[cool, strikes], args=[*ladder, int(self.strike_memory * 1000)]
        )
        seconds = int(ms) / 1000
        if not int(started):
            log.info(
                "proxy rate limited during its cool-down; not escalated",
                proxy=slot.proxy.label,
                endpoint=slot.endpoint,
                cooldown_left_s=seconds,
            )
            return seconds
        COOLDOWNS.labels(proxy=slot.proxy.label, endpoint=slot.endpoint).inc()
        log.warning(
            "proxy rate limited; cooling down",
            proxy=slot.proxy.label,
            endpoint=slot.endpoint,
            cooldown_s=seconds,
        )
        return seconds

    async def report_unreachable(self, slot: Slot, seconds: float = 30) -> None:
        """The proxy itself could not be reached: rest it briefly, without escalation."""
        _, cool, _, _ = self._keys(slot.endpoint, slot.proxy.label)
        UNREACHABLE.labels(proxy=slot.proxy.label).inc()
        await self.client.set(cool, "unreachable", px=int(seconds * 1000), nx=True)

    async def report_auth_failed(self, slot: Slot) -> None:
        """The proxy answered 407: disable it for every endpoint, and say so."""
        _, _, disabled, _ = self._keys(slot.endpoint, slot.proxy.label)
        await self.client.set(disabled, "407", px=int(self.disabled_for * 1000))
        DISABLED.labels(proxy=slot.proxy.label).inc()
        log.error(
            "proxy rejected our credentials (407); disabled",
            proxy=slot.proxy.label,
            disabled_for_s=self.disabled_for,
        )

    async def state(self, endpoint: Endpoint) -> list[dict[str, object]]:
        """Per proxy: requests in the current window, cool-down and disabled time left (ms)."""
        budget = self.budgets[endpoint]
        now_s, now_us = await self.client.time()
        now_ms = now_s * 1000 + now_us // 1000
        rows = []
        for proxy in self.proxies:
            log_key, cool, disabled, _ = self._keys(endpoint, proxy.label)
            window_start = now_ms - int((budget.window + self.slack) * 1000)
            used = await self.client.zcount(log_key, window_start, "+inf")
            rows.append(
                {
                    "proxy": proxy.label,
                    "used": int(used),
                    "limit": budget.limit,
                    "cooldown_ms": max(0, int(await self.client.pttl(cool))),
                    "disabled_ms": max(0, int(await self.client.pttl(disabled))),
                }
            )
        return rows
