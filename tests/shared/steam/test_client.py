"""The Steam client against the simulator over HTTP, through real local proxies.

Every fault mode the simulator injects must come out as the right error type; redirects and
HTML move the client to the other endpoint family; no credential ever shows.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from shared.observability import SecretURL, configure_logging
from shared.steam import (
    BadResponse,
    Budget,
    Item,
    ItemNotFound,
    ListingFilter,
    Listings,
    OrderBook,
    PriceOverview,
    ProxyAuthFailed,
    ProxyPool,
    ProxyPoolExhausted,
    RateLimited,
    Slot,
    SteamClient,
    SteamError,
    Unavailable,
    create_http_session,
)
from simulator.config import LimitsConfig, SimulatorConfig
from simulator.proxy import LocalProxy
from simulator.server import run_simulator

EUR = 3
SECRET = "pr0xy-s3cret"
BUDGETS = {e: Budget(limit=1000, window=60) for e in ("priceoverview", "listings", "orderbook")}


@dataclass
class Rig:
    sim: str
    proxy: LocalProxy
    http: aiohttp.ClientSession
    redis: redis.asyncio.Redis
    item: Item

    def client(self, *, proxy_url: str | None = None, **kw: object) -> SteamClient:
        url = proxy_url or self.proxy.url.replace("http://", f"http://steam:{SECRET}@")
        pool = ProxyPool.from_urls(self.redis, [SecretURL(url)], budgets=BUDGETS, slack=0)
        return SteamClient(http=self.http, pool=pool, base_url=self.sim, **kw)  # type: ignore[arg-type]

    async def fault(self, **spec: object) -> None:
        async with self.http.post(
            f"{self.sim}/__sim/faults", json={"faults": [spec], "replace": True}
        ) as r:
            assert r.status == 200, await r.text()

    async def stats(self) -> dict:  # type: ignore[type-arg]
        async with self.http.get(f"{self.sim}/__sim/stats") as r:
            return await r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    # The new market prices in the region's currency: here the watch's own (EUR).
    config = SimulatorConfig(
        limits=LimitsConfig(enabled=False), timeout_hold_s=5, region_currency=3
    )
    async with (
        run_simulator(config=config) as sim,
        LocalProxy(source_address="127.0.0.2", username="steam", password=SECRET) as proxy,
    ):
        http = create_http_session(timeout=2.0)
        client = redis.asyncio.Redis.from_url(redis_url)
        async with http.get(f"{sim}/__sim/catalogue", params={"appid": "730"}) as r:
            name = (await r.json())["items"][0]["market_hash_name"]
        yield Rig(sim, proxy, http, client, Item(appid=730, market_hash_name=name, currency=EUR))
        await http.close()
        await client.aclose()


async def test_each_endpoint_answers_with_its_result_type(rig: Rig) -> None:
    client = rig.client()
    overview = await client.price_overview(rig.item)
    assert isinstance(overview, PriceOverview) and overview.currency == EUR
    assert overview.lowest_price is not None and overview.lowest_price > 0
    listings = await client.listings(rig.item)
    assert isinstance(listings, Listings) and listings.total_count >= len(listings.listings) > 0
    assert all(entry.total > entry.price for entry in listings.listings)  # the fee is added
    book = await client.order_book(rig.item)
    assert isinstance(book, OrderBook)
    assert book.highest_buy is not None and book.lowest_sell is not None
    assert book.highest_buy < book.lowest_sell
    new = rig.client(family="new")
    assert isinstance(await new.listings(rig.item), Listings)
    assert isinstance(await new.order_book(rig.item), OrderBook)


async def test_the_simulator_saw_the_proxy_not_us(rig: Rig) -> None:
    await rig.client().price_overview(rig.item)
    assert set((await rig.stats())["clients"]) == {"127.0.0.2"}


FAULTS = [
    pytest.param({"mode": "http_5xx", "status": 502}, Unavailable, id="5xx"),
    pytest.param({"mode": "http_5xx", "status": 503}, Unavailable, id="503"),
    pytest.param({"mode": "timeout", "delay_ms": 4000}, Unavailable, id="timeout"),
    pytest.param({"mode": "malformed_json"}, BadResponse, id="malformed-json"),
    pytest.param({"mode": "html_error", "status": 200}, BadResponse, id="200-with-html-page"),
    pytest.param({"mode": "html_error", "status": 503}, Unavailable, id="503-html-page"),
    pytest.param({"mode": "null"}, BadResponse, id="null"),
    pytest.param({"mode": "success_false", "status": 200}, ItemNotFound, id="success-false"),
    pytest.param({"mode": "rate_limit_storm", "duration_s": 30}, RateLimited, id="429-storm"),
]


@pytest.mark.parametrize(("spec", "error"), FAULTS)
async def test_each_fault_maps_to_its_error_type(
    rig: Rig, spec: dict[str, object], error: type[SteamError]
) -> None:
    await rig.fault(**spec, endpoints=["priceoverview"])
    with pytest.raises(SteamError) as caught:
        await rig.client(fallback=False).price_overview(rig.item)
    assert type(caught.value) is error
    assert caught.value.endpoint == "priceoverview"


async def test_a_429_cools_the_proxy_down(rig: Rig) -> None:
    await rig.fault(mode="rate_limit_storm", duration_s=30)
    client = rig.client()
    with pytest.raises(RateLimited) as caught:
        await client.price_overview(rig.item)
    assert caught.value.proxy == client.pool.proxies[0].label
    state = await client.pool.state("priceoverview")
    assert int(state[0]["cooldown_ms"]) > 0  # type: ignore[call-overload]


def _retries(endpoint: str) -> float:
    value = REGISTRY.get_sample_value(
        "steamwatch_steam_retries_total", {"endpoint": endpoint, "reason": "429"}
    )
    return value or 0.0


def _rate_limited(stats: dict, client: str) -> int:  # type: ignore[type-arg]
    endpoints = stats["clients"].get(client, {}).get("endpoints", {})
    return sum(int(e["rate_limited"]) for e in endpoints.values())


def _served(stats: dict, client: str) -> int:  # type: ignore[type-arg]
    endpoints = stats["clients"].get(client, {}).get("endpoints", {})
    return sum(int(e["served"]) for e in endpoints.values())


async def test_a_429_moves_the_request_to_another_proxy_with_budget(rig: Rig) -> None:
    """Issue 19, 4: one proxy's 429 must not fail the check while another has budget."""
    async with LocalProxy(source_address="127.0.0.3") as other:
        first = SecretURL(rig.proxy.url.replace("http://", f"http://steam:{SECRET}@"))
        pool = ProxyPool.from_urls(
            rig.redis, [first, SecretURL(other.url)], budgets=BUDGETS, slack=0
        )
        client = SteamClient(http=rig.http, pool=pool, base_url=rig.sim)
        await rig.fault(mode="rate_limit_storm", client="127.0.0.2", duration_s=30)
        before = _retries("priceoverview")
        for _ in range(4):  # whichever proxy the pool hands out first, the storm one gets a turn
            assert isinstance(await client.price_overview(rig.item), PriceOverview)
        stats = await rig.stats()
        assert _rate_limited(stats, "127.0.0.2") == 1  # asked once, then cooling down
        assert _served(stats, "127.0.0.2") == 0
        assert _served(stats, "127.0.0.3") == 4  # every check answered, through the other
        assert _retries("priceoverview") == before + 1
        state = {s["proxy"]: s for s in await pool.state("priceoverview")}
        assert int(state[pool.proxies[0].label]["cooldown_ms"]) > 0  # type: ignore[call-overload]


async def test_when_every_proxy_answers_429_the_check_fails_having_tried_each_once(
    rig: Rig,
) -> None:
    async with LocalProxy(source_address="127.0.0.3") as other:
        first = SecretURL(rig.proxy.url.replace("http://", f"http://steam:{SECRET}@"))
        pool = ProxyPool.from_urls(
            rig.redis, [first, SecretURL(other.url)], budgets=BUDGETS, slack=0
        )
        client = SteamClient(http=rig.http, pool=pool, base_url=rig.sim)
        await rig.fault(mode="rate_limit_storm", duration_s=30)
        with pytest.raises(RateLimited):
            await client.price_overview(rig.item)
        stats = await rig.stats()
        assert _rate_limited(stats, "127.0.0.2") == 1
        assert _rate_limited(stats, "127.0.0.3") == 1
        # Both cooling down now: the next check finds no proxy and is deferred, not sent.
        with pytest.raises(ProxyPoolExhausted):
            await client.price_overview(rig.item)


def _exhausted(endpoint: str) -> float:
    value = REGISTRY.get_sample_value(
        "steamwatch_proxy_pool_exhausted_total", {"endpoint": endpoint}
    )
    return value or 0.0


@pytest.mark.parametrize("other_free", [False, True], ids=["other-cooling", "no-time-left"])
async def test_a_429_stands_when_no_other_proxy_is_free_in_time(rig: Rig, other_free: bool) -> None:
    """The 429 is the answer when the other proxy has no budget, or the request's time to move
    is spent: that proxy is not asked, and nothing counts as a retry or a deferral."""
    async with LocalProxy(source_address="127.0.0.3") as other:
        first = SecretURL(rig.proxy.url.replace("http://", f"http://steam:{SECRET}@"))
        pool = ProxyPool.from_urls(
            rig.redis, [first, SecretURL(other.url)], budgets=BUDGETS, slack=0
        )
        if not other_free:
            await pool.report_rate_limited(Slot(proxy=pool.proxies[1], endpoint="priceoverview"))
        client = SteamClient(
            http=rig.http, pool=pool, base_url=rig.sim, retry_within=0 if other_free else 10
        )
        await rig.fault(mode="rate_limit_storm", client="127.0.0.2", duration_s=30)
        retries, exhausted = _retries("priceoverview"), _exhausted("priceoverview")
        with pytest.raises(RateLimited) as caught:
            await client.price_overview(rig.item)  # the first proxy goes first: never used
        assert caught.value.proxy == pool.proxies[0].label
        stats = await rig.stats()
        assert _rate_limited(stats, "127.0.0.2") == 1
        assert "127.0.0.3" not in stats["clients"]  # never asked
        assert _retries("priceoverview") == retries
        assert _exhausted("priceoverview") == exhausted
        used = {row["proxy"]: row["used"] for row in await pool.state("priceoverview")}
        assert used[pool.proxies[1].label] == 0  # no slot taken on it either


async def test_an_unknown_item_is_confirmed_by_a_second_proxy_and_the_search(rig: Rig) -> None:
    ghost = Item(appid=730, market_hash_name="AK47 | Redline (Field Tested)", currency=EUR)
    async with LocalProxy(source_address="127.0.0.3") as other:
        first = SecretURL(rig.proxy.url.replace("http://", f"http://steam:{SECRET}@"))
        pool = ProxyPool.from_urls(
            rig.redis, [first, SecretURL(other.url)], budgets=BUDGETS, slack=0
        )
        client = SteamClient(http=rig.http, pool=pool, base_url=rig.sim)
        with pytest.raises(ItemNotFound) as caught:
            await client.price_overview(ghost)
    assert caught.value.confirmed
    assert "confirmed: the market search does not list it" in str(caught.value)
    stats = await rig.stats()
    assert set(stats["clients"]) == {"127.0.0.2", "127.0.0.3"}  # both proxies were asked
    assert stats["totals"]["search"]["served"] == 1


async def test_an_unknown_item_the_search_cannot_judge_stays_unconfirmed(rig: Rig) -> None:
    ghost = Item(appid=730, market_hash_name="AK47 | Redline (Field Tested)", currency=EUR)
    await rig.fault(mode="http_5xx", endpoints=["search"], duration_s=30)
    with pytest.raises(ItemNotFound) as caught:
        await rig.client().price_overview(ghost)
    assert not caught.value.confirmed


async def test_a_search_answering_404_confirms_nothing_and_is_asked_once(rig: Rig) -> None:
    ghost = Item(appid=730, market_hash_name="AK47 | Redline (Field Tested)", currency=EUR)
    await rig.fault(mode="http_5xx", status=404, endpoints=["search"], duration_s=30)
    with pytest.raises(ItemNotFound) as caught:
        await rig.client().price_overview(ghost)
    assert not caught.value.confirmed
    assert (await rig.stats())["totals"]["search"]["seen"] == 1


async def test_unknown_item_is_item_not_found_on_every_endpoint(rig: Rig) -> None:
    ghost = Item(appid=730, market_hash_name="No Such Item (Factory New)", currency=EUR)
    for family in ("legacy", "new"):
        client = rig.client(family=family, fallback=False)
        for call in (client.price_overview, client.listings, client.order_book):
            if family == "new" and call == client.listings:
                # The new market's listing query says "nothing listed" of any name it does not
                # know; the search finds no group for it either, so it stays an empty book.
                assert await call(ghost) == Listings(total_count=0, listings=())
                continue
            with pytest.raises(ItemNotFound):
                await call(ghost)


async def test_wrong_proxy_credentials_give_407_and_disable_the_proxy(rig: Rig) -> None:
    wrong = rig.proxy.url.replace("http://", "http://steam:wrong-password@")
    client = rig.client(proxy_url=wrong)
    with pytest.raises(ProxyAuthFailed):
        await client.price_overview(rig.item)
    state = await client.pool.state("priceoverview")
    assert int(state[0]["disabled_ms"]) > 0  # type: ignore[call-overload]


async def test_a_dead_proxy_is_unavailable(rig: Rig) -> None:
    client = rig.client(proxy_url="http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(Unavailable):
        await client.price_overview(rig.item)


@pytest.mark.parametrize("legacy_mode", ["redirect", "html"])
async def test_a_switched_off_legacy_market_falls_back_to_the_new_one(
    rig: Rig, legacy_mode: str
) -> None:
    async with rig.http.post(f"{rig.sim}/__sim/legacy", json={"mode": legacy_mode}) as r:
        assert r.status == 200, await r.text()
    client = rig.client(family="legacy")
    assert isinstance(await client.listings(rig.item), Listings)
    assert client.current_family == "new"
    assert isinstance(await client.order_book(rig.item), OrderBook)


async def test_the_new_market_is_asked_conditionally(rig: Rig) -> None:
    client = rig.client(family="new")
    first = await client.listings(rig.item)
    second = await client.listings(rig.item)
    assert second == first and first.listings
    stats = (await rig.stats())["clients"]["127.0.0.2"]["endpoints"]
    # By name (nothing: a grouped skin), the search for its group, by group; then by group, 304.
    assert (stats["actions"]["served"], stats["actions"]["not_modified"]) == (2, 1)
    assert stats["search"]["served"] == 1


async def test_a_grouped_skin_is_found_through_its_group_and_kept_to_its_wear(rig: Rig) -> None:
    client = rig.client(family="new")
    listings = await client.listings(rig.item)
    legacy = await rig.client(family="legacy").listings(rig.item)
    assert listings.listings and all(entry.float_value is not None for entry in listings.listings)
    # The group answers every wear; what comes back is this item's cheapest, as the old render.
    shared = min(len(listings.listings), len(legacy.listings))
    assert listings.listings[:shared] == legacy.listings[:shared]


async def test_listing_filters_are_asked_of_steam(rig: Rig) -> None:
    everything = await rig.client(family="legacy").listings(rig.item, count=100)
    ceiling = sorted(entry.total for entry in everything.listings)[3]
    wanted = ListingFilter(max_price=ceiling)
    found = await rig.client(family="new").listings(rig.item, wanted=wanted)
    assert found.listings and all(entry.total <= ceiling for entry in found.listings)
    assert len(found.listings) == sum(1 for e in everything.listings if e.total <= ceiling)


def _parse_failures(endpoint: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "steamwatch_steam_parse_failures_total", {"endpoint": endpoint, "reason": reason}
    )
    return value or 0.0


async def test_a_book_in_another_currency_is_refused_and_counted(rig: Rig) -> None:
    async with rig.http.post(f"{rig.sim}/__sim/new-market", json={"region_currency": 4}) as r:
        assert r.status == 200
    before = _parse_failures("orderbook", "currency")
    with pytest.raises(BadResponse) as caught:
        await rig.client(family="new").order_book(rig.item)
    assert "answered in CHF (4), the watch is in EUR (3)" in str(caught.value)
    assert not caught.value.is_html  # not a family problem: no fallback
    assert _parse_failures("orderbook", "currency") == before + 1


async def test_a_renamed_field_is_a_bad_response_counted_as_missing(rig: Rig) -> None:
    await rig.fault(mode="rename_field", field="amtMinSellOrder", endpoints=["orderbook"])
    before = _parse_failures("orderbook", "missing_field")
    with pytest.raises(BadResponse, match="missing field amtMinSellOrder"):
        await rig.client(family="new", fallback=False).order_book(rig.item)
    assert _parse_failures("orderbook", "missing_field") == before + 1


async def test_a_moved_new_market_route_falls_back_to_the_legacy_family(rig: Rig) -> None:
    async with rig.http.post(f"{rig.sim}/__sim/new-market", json={"mode": "route_changed"}) as r:
        assert r.status == 200
    client = rig.client(family="new")
    assert isinstance(await client.order_book(rig.item), OrderBook)
    assert client.current_family == "legacy"
    assert isinstance(await client.listings(rig.item), Listings)
    stats = (await rig.stats())["clients"]["127.0.0.2"]["endpoints"]
    assert stats["orderbook"]["served"] == 1  # answered with the page, once: then set aside
    assert stats["histogram"]["served"] == 1 and stats["listings_render"]["served"] == 1


async def test_credentials_never_appear_in_logs_or_errors(rig: Rig) -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    seen: list[str] = []
    try:
        await rig.fault(mode="rate_limit_storm", duration_s=30)
        # Other user names give other pool labels, so the 429 cool-down above doesn't mask them.
        wrong = rig.proxy.url.replace("http://", f"http://intruder:{SECRET}-wrong@")
        dead = f"http://ghost:{SECRET}@127.0.0.1:9"
        for url in (None, wrong, dead):
            try:
                await rig.client(proxy_url=url).price_overview(rig.item)
            except SteamError as e:
                seen.extend([str(e), repr(e), repr(e.__dict__)])
    finally:
        logging.getLogger().handlers.clear()
    logged = stream.getvalue()
    assert "cooling down" in logged and "407" in logged  # the pool did log
    assert len(seen) == 9
    assert all(SECRET not in text for text in [logged, *seen])


async def test_a_fallback_family_in_another_currency_is_not_kept(rig: Rig) -> None:
    """The legacy family answers a page for a moment; the new market prices in the proxy's
    region (CHF here), not the watch's EUR: the check fails with the legacy answer, and the
    next check asks the legacy family again instead of the new one for ten minutes."""
    async with rig.http.post(f"{rig.sim}/__sim/new-market", json={"region_currency": 4}) as r:
        assert r.status == 200
    await rig.fault(mode="html_error", endpoints=["priceoverview"], times=1)
    client = rig.client(family="legacy")
    with pytest.raises(BadResponse) as caught:
        await client.price_overview(rig.item)
    assert caught.value.is_html and caught.value.endpoint == "priceoverview"
    assert client.current_family == "legacy"
    overview = await client.price_overview(rig.item)  # the fault spent: legacy answers again
    assert isinstance(overview, PriceOverview) and overview.currency == EUR


async def test_while_set_aside_a_watch_the_other_family_cannot_price_goes_back_at_once(
    rig: Rig,
) -> None:
    """Both families answered pages for a moment, so the legacy one is set aside for ten
    minutes; once Steam is back, a EUR watch the new market prices in USD is asked through the
    legacy family again at its next check instead of failing all that time."""
    await rig.fault(mode="html_error", times=2)  # the legacy answer, then the new one
    client = rig.client(family="legacy")
    with pytest.raises(BadResponse):
        await client.price_overview(rig.item)
    async with rig.http.post(f"{rig.sim}/__sim/new-market", json={"region_currency": 1}) as r:
        assert r.status == 200
    assert client.current_family == "new"
    overview = await client.price_overview(rig.item)
    assert isinstance(overview, PriceOverview) and overview.currency == EUR
    assert client.current_family == "legacy"
