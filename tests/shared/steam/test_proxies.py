"""The proxy pool against real Redis: budgets, LRU order, cool-downs, 407s, and no races."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from shared.observability import SecretURL
from shared.steam import Budget, Proxy, ProxyPool, ProxyPoolExhausted

URLS = [
    SecretURL("direct"),
    SecretURL("http://alice:s3cret-pw@127.0.0.1:3128"),
    SecretURL("http://127.0.0.1:3129"),
]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    c = redis.asyncio.Redis.from_url(redis_url)
    yield c
    await c.aclose()


def _pool(client: redis.asyncio.Redis, **kw: object) -> ProxyPool:
    kw.setdefault("budgets", {"priceoverview": Budget(limit=3, window=30)})
    kw.setdefault("slack", 0)
    return ProxyPool.from_urls(client, URLS, **kw)


def test_labels_name_proxies_without_their_secrets() -> None:
    labels = [Proxy.from_url(u).label for u in URLS]
    assert labels[0] == "direct"
    assert labels[1].startswith("127.0.0.1:3128#") and "alice" not in labels[1]
    assert "s3cret" not in labels[1]
    assert labels[2] == "127.0.0.1:3129"


async def test_least_recently_used_proxy_goes_first(client: redis.asyncio.Redis) -> None:
    pool = _pool(client)
    order = [(await pool.acquire("priceoverview")).proxy.label for _ in range(6)]
    assert order[:3] == [Proxy.from_url(u).label for u in URLS]
    assert order[3:] == order[:3]


async def test_exhausted_pool_says_when_a_slot_frees(client: redis.asyncio.Redis) -> None:
    pool = _pool(client)
    before = datetime.now(UTC)
    for _ in range(9):
        await pool.acquire("priceoverview")
    with pytest.raises(ProxyPoolExhausted) as caught:
        await pool.acquire("priceoverview")
    seconds = (caught.value.retry_at - before).total_seconds()
    assert 29 <= seconds <= 31  # the oldest request leaves the 30 s window
    assert caught.value.endpoint == "priceoverview"


async def test_budgets_are_per_endpoint(client: redis.asyncio.Redis) -> None:
    pool = _pool(
        client,
        budgets={"priceoverview": Budget(limit=1, window=30), "listings": Budget(1, 30)},
    )
    for _ in range(3):
        await pool.acquire("priceoverview")
    lease = await pool.acquire("listings")  # a separate budget
    assert lease.endpoint == "listings"


async def test_a_window_frees_its_slots_as_it_slides(client: redis.asyncio.Redis) -> None:
    pool = ProxyPool.from_urls(
        client, URLS[:1], budgets={"priceoverview": Budget(limit=2, window=0.5)}, slack=0
    )
    await pool.acquire("priceoverview")
    await pool.acquire("priceoverview")
    with pytest.raises(ProxyPoolExhausted) as caught:
        await pool.acquire("priceoverview")
    wait = (caught.value.retry_at - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, wait) + 0.05)  # exactly until the time the pool named
    assert (await pool.acquire("priceoverview")).proxy.label == "direct"


async def test_429_cools_a_proxy_down_with_escalation(client: redis.asyncio.Redis) -> None:
    pool = _pool(client, cooldowns=(5, 10, 20, 60))
    lease = await pool.acquire("priceoverview")
    cool = pool._keys("priceoverview", lease.proxy.label)[1]
    steps = []
    for _ in range(5):  # five episodes: each 429 comes after the previous cool-down ended
        await client.delete(cool)
        steps.append(await pool.report_rate_limited(lease))
    assert steps == [5, 10, 20, 60, 60]
    # The cooled proxy is skipped; the others still serve.
    labels = {(await pool.acquire("priceoverview")).proxy.label for _ in range(4)}
    assert lease.proxy.label not in labels
    state = {row["proxy"]: row for row in await pool.state("priceoverview")}
    assert 55_000 < int(state[lease.proxy.label]["cooldown_ms"]) <= 60_000  # type: ignore[call-overload]


async def test_429s_of_requests_in_flight_do_not_escalate_the_cool_down(
    client: redis.asyncio.Redis,
) -> None:
    pool = _pool(client, cooldowns=(5, 10, 20, 60))
    lease = await pool.acquire("priceoverview")
    first = await pool.report_rate_limited(lease)
    # Four more requests admitted before the cool-down began answer 429 as well.
    late = [await pool.report_rate_limited(lease) for _ in range(4)]
    assert first == 5 and all(4 < s <= 5 for s in late), late
    state = {row["proxy"]: row for row in await pool.state("priceoverview")}
    assert 4_000 < int(state[lease.proxy.label]["cooldown_ms"]) <= 5_000  # type: ignore[call-overload]
    # The next episode is the second strike, not the sixth.
    await client.delete(pool._keys("priceoverview", lease.proxy.label)[1])
    assert await pool.report_rate_limited(lease) == 10


async def test_cooldown_ends_and_the_proxy_comes_back(client: redis.asyncio.Redis) -> None:
    pool = ProxyPool.from_urls(
        client, URLS[:1], budgets={"priceoverview": Budget(10, 30)}, cooldowns=(0.3,), slack=0
    )
    lease = await pool.acquire("priceoverview")
    await pool.report_rate_limited(lease)
    with pytest.raises(ProxyPoolExhausted) as caught:
        await pool.acquire("priceoverview")
    wait = (caught.value.retry_at - datetime.now(UTC)).total_seconds()
    assert wait <= 0.3
    await asyncio.sleep(max(0.0, wait) + 0.05)
    assert (await pool.acquire("priceoverview")).proxy.label == "direct"


async def test_407_disables_the_proxy_for_every_endpoint(client: redis.asyncio.Redis) -> None:
    pool = _pool(client, budgets={"priceoverview": Budget(10, 30), "listings": Budget(10, 30)})
    lease = await pool.acquire("priceoverview")
    await pool.report_auth_failed(lease)
    for endpoint in ("priceoverview", "listings"):
        labels = {(await pool.acquire(endpoint)).proxy.label for _ in range(6)}  # type: ignore[arg-type]
        assert lease.proxy.label not in labels


async def test_concurrent_acquires_never_exceed_the_budget(redis_url: str) -> None:
    """Given 200 acquires at once from 4 separate clients, I expect exactly the budget granted."""
    clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(4)]
    pools = [_pool(c, budgets={"priceoverview": Budget(limit=7, window=30)}) for c in clients]

    async def attempt(pool: ProxyPool) -> str | None:
        try:
            return (await pool.acquire("priceoverview")).proxy.label
        except ProxyPoolExhausted:
            return None

    results = await asyncio.gather(*(attempt(pools[i % 4]) for i in range(200)))
    granted = Counter(r for r in results if r is not None)
    assert granted == {Proxy.from_url(u).label: 7 for u in URLS}
    for c in clients:
        await c.aclose()


def _exhausted(endpoint: str) -> float:
    value = REGISTRY.get_sample_value(
        "steamwatch_proxy_pool_exhausted_total", {"endpoint": endpoint}
    )
    return value or 0.0


async def test_another_slot_is_never_on_a_proxy_already_asked(
    client: redis.asyncio.Redis,
) -> None:
    """A request one proxy could not answer moves on; the proxies it asked are not offered again,
    even when they are the least recently used or the only ones with budget."""
    pool = _pool(client, budgets={"priceoverview": Budget(limit=1, window=30)})
    labels = [p.label for p in pool.proxies]
    first = await pool.acquire("priceoverview")  # the first proxy, never used before
    assert first.proxy.label == labels[0]
    second = await pool.acquire_another("priceoverview", besides={labels[0]})
    assert second is not None and second.proxy.label == labels[1]
    before = _exhausted("priceoverview")
    # Only the third has budget left; asked besides it, there is none, and nothing is deferred.
    assert await pool.acquire_another("priceoverview", besides={labels[2]}) is None
    assert await pool.acquire_another("priceoverview", besides=set(labels)) is None
    assert _exhausted("priceoverview") == before
    assert [row["used"] for row in await pool.state("priceoverview")] == [1, 1, 0]
    third = await pool.acquire_another("priceoverview", besides={labels[0], labels[1]})
    assert third is not None and third.proxy.label == labels[2]
