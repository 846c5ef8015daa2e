"""The one way to Steam: a call through the proxy pool, mapped to a result or a typed error.

One :class:`SteamClient` per process, over the process's one ``aiohttp.ClientSession`` (made by
:func:`create_http_session` in a startup hook and closed in the shutdown hook). Every request
takes a proxy slot first, so the budgets hold across all fetchers; a 429 cools the proxy down
and the request moves to another proxy with budget (each proxy once, within ``retry_within``
seconds; the 429 is raised when none is left), a 407 disables it. Which endpoint family is used
is configurable, and a family that starts answering with HTML or redirects is set aside for a
while in favour of the other.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Literal, TypedDict, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from prometheus_client import Counter, Histogram

from shared.observability import redact_text
from shared.steam import _pages as pages
from shared.steam import _parsers as parsers
from shared.steam._errors import (
    BadResponse,
    ItemNotFound,
    ProxyAuthFailed,
    RateLimited,
    SteamError,
    Unavailable,
)
from shared.steam._item import Item
from shared.steam._proxies import Endpoint, ProxyPool, ProxyPoolExhausted, Slot
from shared.steam._results import Listings, OrderBook, PriceOverview

Family = Literal["legacy", "new"]
R = TypeVar("R")
Parser = Callable[[bytes], R]

MAX_BODY = 4 * 1024 * 1024  # a market answer is KBs; anything this large is not one

log = structlog.get_logger(__name__)
RETRIES = Counter(
    "steamwatch_steam_retries",
    "Requests asked again through another proxy: after a 429 (reason 429), or to confirm that "
    "an item does not exist (not_found)",
    ["endpoint", "reason"],
)

REQUEST_SECONDS = Histogram(
    "steamwatch_steam_request_seconds",
    "Duration of one Steam request, answered or not",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
RESPONSES = Counter(
    "steamwatch_steam_responses",
    "Steam answers by endpoint, proxy and status class (2xx, 3xx, 4xx, 429, 5xx; timeout and "
    "error when there was no answer)",
    ["endpoint", "proxy", "status_class"],
)


def status_class(status: int) -> str:
    return "429" if status == 429 else f"{status // 100}xx"


def initialize_metrics(pool: ProxyPool) -> None:
    """Every proxy's 429 series from the start, at 0, so rates need no first 429; the pool
    seeds its own."""
    for endpoint in pool.budgets:
        RETRIES.labels(endpoint=endpoint, reason="429")
        RETRIES.labels(endpoint=endpoint, reason="not_found")
        for proxy in pool.proxies:
            RESPONSES.labels(endpoint=endpoint, proxy=proxy.label, status_class="429")
    pool.seed_metrics()


class _ItemIds(TypedDict):
    currency: int
    appid: int
    market_hash_name: str


class SteamClient:
    """Steam market calls through the proxy pool; returns results, raises :mod:`errors` types."""

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        pool: ProxyPool,
        base_url: str,
        family: Family = "legacy",
        language: str = "english",
        country: str = "US",
        fallback: bool = True,
        fallback_for: float = 600.0,
        cache_size: int = 10_000,
        retry_within: float = 10.0,
    ) -> None:
        self.http = http
        self.pool = pool
        self.base_url = base_url.rstrip("/")
        self.family = family
        self.language = language
        self.country = country
        self.fallback = fallback
        self.fallback_for = fallback_for
        self._fallback_until = 0.0
        self._cache_size = cache_size
        self.retry_within = retry_within  # seconds a request may keep moving proxies on 429s
        # (url) -> (etag, last-modified, result): answers to conditional requests.
        self._validators: OrderedDict[str, tuple[str | None, str | None, object]] = OrderedDict()
        self._nameids: dict[tuple[int, str], int] = {}

    # ---- the three watches ----------------------------------------------------------------

    async def price_overview(self, item: Item) -> PriceOverview | OrderBook:
        """Lowest and median price and volume (legacy); the order book's lowest sell (new)."""
        return await self._with_fallback(
            legacy=lambda: self._legacy_priceoverview(item), new=lambda: self._new_orderbook(item)
        )

    async def listings(self, item: Item, *, count: int = 10) -> Listings:
        return await self._with_fallback(
            legacy=lambda: self._legacy_listings(item, count),
            new=lambda: self._new_listings(item, count),
        )

    async def order_book(self, item: Item) -> OrderBook:
        return await self._with_fallback(
            legacy=lambda: self._legacy_histogram(item), new=lambda: self._new_orderbook(item)
        )

    async def search(self, appid: int, query: str, *, count: int = 50) -> list[str]:
        """Market hash names Steam finds for ``query`` in ``appid`` (every word, in any order).

        Steam limits search on its own; here it shares the listings budget, the stricter one.
        """
        probe = Item(appid=appid, market_hash_name=query, currency=1)
        params = {
            "query": query,
            "appid": str(appid),
            "start": "0",
            "count": str(count),
            "search_descriptions": "0",
            "sort_column": "popular",
            "sort_dir": "desc",
            "norender": "1",
        }
        return await self._call(
            "listings",
            "/market/search/render/",
            item=probe,
            params=params,
            parse=lambda body: parsers.parse_search_names(body, appid=appid),
            about_an_item=False,  # a 404 here says nothing of an item, and must not search again
        )

    # ---- family choice ------------------------------------------------------------------------

    @property
    def current_family(self) -> Family:
        if time.monotonic() < self._fallback_until:
            return "new" if self.family == "legacy" else "legacy"
        return self.family

    async def _with_fallback(
        self, *, legacy: Callable[[], Awaitable[R]], new: Callable[[], Awaitable[R]]
    ) -> R:
        first = self.current_family
        calls = {"legacy": legacy, "new": new}
        try:
            return await calls[first]()
        except BadResponse as e:
            if not (e.is_html and self.fallback):
                raise
            # Steam answered this family with a page or a redirect: it is switched off here.
            other: Family = "new" if first == "legacy" else "legacy"
            self._fallback_until = (
                time.monotonic() + self.fallback_for if first == self.family else 0.0
            )
            return await calls[other]()

    # ---- legacy endpoints ---------------------------------------------------------------------

    async def _legacy_priceoverview(self, item: Item) -> PriceOverview:
        params = {
            "country": self.country,
            "currency": str(item.currency),
            "appid": str(item.appid),
            "market_hash_name": item.market_hash_name,
        }
        return await self._call(
            "priceoverview",
            "/market/priceoverview/",
            item=item,
            params=params,
            parse=lambda body: parsers.parse_priceoverview(body, **self._ids(item)),
            body_on_500=True,
        )

    async def _legacy_listings(self, item: Item, count: int) -> Listings:
        path = f"/market/listings/{item.appid}/{quote(item.market_hash_name, safe='')}/render/"
        params = {
            "start": "0",
            "count": str(count),
            "country": self.country,
            "language": self.language,
            "currency": str(item.currency),
            "format": "json",
        }
        return await self._call(
            "listings",
            path,
            item=item,
            params=params,
            headers={"Cookie": "bMarketOptOut=1"},
            parse=lambda body: parsers.parse_listings_render(body, **self._ids(item)),
        )

    async def _legacy_histogram(self, item: Item) -> OrderBook:
        nameid = await self._item_nameid(item)
        params = {
            "country": self.country,
            "language": self.language,
            "currency": str(item.currency),
            "item_nameid": str(nameid),
            "two_factor": "0",
            "norender": "1",
        }
        return await self._call(
            "orderbook",
            "/market/itemordershistogram",
            item=item,
            params=params,
            parse=lambda body: parsers.parse_orders_histogram(body, **self._ids(item)),
        )

    async def _item_nameid(self, item: Item) -> int:
        """Steam's numeric id of an item, scraped once from its listing page and kept."""
        key = (item.appid, item.market_hash_name)
        if key not in self._nameids:
            path = f"/market/listings/{item.appid}/{quote(item.market_hash_name, safe='')}"
            self._nameids[key] = await self._call(
                "listings",
                path,
                item=item,
                params={},
                headers={"Cookie": "bMarketOptOut=1", "Accept": "text/html"},
                parse=lambda body: pages.parse_item_nameid(body, **self._ids(item)),
            )
        return self._nameids[key]

    # ---- new market ---------------------------------------------------------------------------

    async def _new_listings(self, item: Item, count: int) -> Listings:
        qp = [item.appid, item.market_hash_name, 0, count, item.currency]
        return await self._call(
            "listings",
            "/market/actions",
            item=item,
            params={"q": "QueryListingsForItem", "qp": json.dumps(qp, ensure_ascii=False)},
            headers={"x-valve-request-type": "queryAction"},
            parse=lambda body: parsers.parse_query_listings(body, **self._ids(item)),
            conditional=True,
        )

    async def _new_orderbook(self, item: Item) -> OrderBook:
        qp = [item.appid, item.market_hash_name, item.currency]
        return await self._call(
            "orderbook",
            "/market/orderbook",
            item=item,
            params={"q": "Load", "qp": json.dumps(qp, ensure_ascii=False)},
            headers={"x-valve-request-type": "queryAction"},
            parse=lambda body: parsers.parse_orderbook(body, **self._ids(item)),
            conditional=True,
        )

    # ---- the request itself -------------------------------------------------------------------

    @staticmethod
    def _ids(item: Item) -> _ItemIds:
        return {
            "currency": item.currency,
            "appid": item.appid,
            "market_hash_name": item.market_hash_name,
        }

    async def _call(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        item: Item,
        params: dict[str, str],
        parse: Parser[R],
        headers: dict[str, str] | None = None,
        conditional: bool = False,
        body_on_500: bool = False,
        about_an_item: bool = True,
    ) -> R:
        """One request; on a 429 the same request through another proxy with budget.

        An unknown item is asked about once more through another proxy (if one is free), then
        looked up in Steam's market search: it is ``confirmed`` missing only when the search
        answers and does not list it. A passing glitch (Steam saying "no such item" of every
        item for a while) does not survive the search, so it never fails a watch for good.
        Each proxy at most once per request, and no proxy taken after ``retry_within`` seconds:
        the 429 is raised when no other proxy is left.
        """
        slot = await self.pool.acquire(endpoint)
        tried = {slot.proxy.label}
        deadline = time.monotonic() + self.retry_within
        missing: ItemNotFound | None = None
        while True:
            try:
                return await self._request(
                    slot,
                    endpoint,
                    path,
                    item=item,
                    params=params,
                    parse=parse,
                    headers=headers,
                    conditional=conditional,
                    body_on_500=body_on_500,
                )
            except RateLimited:
                # That proxy is cooling down now; another may have budget.
                after = await self._another_slot(slot, tried, deadline, reason="429")
                if after is None:
                    raise
                slot = after
            except ItemNotFound as e:
                if not about_an_item:
                    raise
                if missing is None:  # a second proxy first: one proxy's answer may be its own
                    after = await self._another_slot(slot, tried, deadline, reason="not_found")
                    if after is not None:
                        missing, slot = e, after
                        continue
                e.confirmed = await self._search_misses(item)
                raise

    async def _search_misses(self, item: Item) -> bool:
        """Whether Steam's market search, asked for ``item``'s exact name, answers without it.

        No answer (an error, a 429, no budget) confirms nothing.
        """
        try:
            found = await self.search(item.appid, item.market_hash_name, count=10)
        except (SteamError, ProxyPoolExhausted, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.info(
                "search could not confirm an unknown item",
                market_hash_name=item.market_hash_name,
                error=type(e).__name__,
            )
            return False
        wanted = item.market_hash_name.casefold()
        return all(name.casefold() != wanted for name in found)

    async def _another_slot(
        self, slot: Slot, tried: set[str], deadline: float, *, reason: Literal["429", "not_found"]
    ) -> Slot | None:
        """A slot on a proxy this request has not tried, while its time lasts; None if none."""
        endpoint = slot.endpoint
        if len(tried) >= len(self.pool.proxies):
            return None  # every proxy has answered this request
        late = time.monotonic() >= deadline
        after = None if late else await self.pool.acquire_another(endpoint, besides=tried)
        if after is None:
            log.info(
                "no other proxy free in time; the answer stands",
                why="time" if late else "budget",
                endpoint=endpoint,
                reason=reason,
                proxy=slot.proxy.label,
                tried=sorted(tried),
            )
            return None
        tried.add(after.proxy.label)
        RETRIES.labels(endpoint=endpoint, reason=reason).inc()
        log.info(
            "the request moves to another proxy",
            endpoint=endpoint,
            reason=reason,
            proxy=slot.proxy.label,
            next_proxy=after.proxy.label,
            tried=len(tried),
        )
        return after

    async def _request(
        self,
        slot: Slot,
        endpoint: Endpoint,
        path: str,
        *,
        item: Item,
        params: dict[str, str],
        parse: Parser[R],
        headers: dict[str, str] | None,
        conditional: bool,
        body_on_500: bool,
    ) -> R:
        url = self.base_url + path
        request_headers = {"Accept-Language": f"{self.language_tag},en;q=0.8", **(headers or {})}
        cache_key = f"{url}?{sorted(params.items())}" if conditional else ""
        cached = self._validators.get(cache_key) if conditional else None
        if cached is not None:
            etag, modified, _ = cached
            if etag:
                request_headers["If-None-Match"] = etag
            if modified:
                request_headers["If-Modified-Since"] = modified
        proxy = slot.proxy.url.reveal() if slot.proxy.url is not None else None
        started = time.perf_counter()
        answered = "error"
        try:
            async with self.http.get(
                url, params=params, headers=request_headers, proxy=proxy, allow_redirects=False
            ) as response:
                status = response.status
                answered = status_class(status)
                body = await response.content.read(MAX_BODY + 1)
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
                location = response.headers.get("Location", "")
        except aiohttp.ClientHttpProxyError as e:
            if e.status == 407:
                await self.pool.report_auth_failed(slot)
                raise ProxyAuthFailed(endpoint=endpoint, proxy=slot.proxy.label) from None
            raise self._unreachable(slot, f"proxy answered {e.status}") from None
        except (aiohttp.ClientProxyConnectionError, aiohttp.ClientConnectorError) as e:
            if isinstance(e, aiohttp.ClientProxyConnectionError):
                await self.pool.report_unreachable(slot)
            raise self._unreachable(slot, f"cannot connect: {type(e).__name__}") from None
        except TimeoutError:
            answered = "timeout"
            raise Unavailable(endpoint=endpoint, reason="timed out") from None
        except (aiohttp.ClientError, OSError) as e:
            reason = redact_text(f"{type(e).__name__}: {e}")[:200]
            raise Unavailable(endpoint=endpoint, reason=reason) from None
        finally:
            REQUEST_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
            label = slot.proxy.label
            RESPONSES.labels(endpoint=endpoint, proxy=label, status_class=answered).inc()
        return await self._interpret(
            slot,
            item,
            status,
            body,
            parse,
            location=location,
            cache_key=cache_key,
            validators=(etag, modified),
            body_on_500=body_on_500,
        )

    def _unreachable(self, slot: Slot, reason: str) -> Unavailable:
        return Unavailable(endpoint=slot.endpoint, reason=f"{reason} via {slot.proxy.label}")

    async def _interpret(
        self,
        slot: Slot,
        item: Item,
        status: int,
        body: bytes,
        parse: Parser[R],
        *,
        location: str,
        cache_key: str,
        validators: tuple[str | None, str | None],
        body_on_500: bool,
    ) -> R:
        endpoint = slot.endpoint
        if status == 429:
            await self.pool.report_rate_limited(slot)
            raise RateLimited(endpoint=endpoint, proxy=slot.proxy.label)
        if status == 407:
            await self.pool.report_auth_failed(slot)
            raise ProxyAuthFailed(endpoint=endpoint, proxy=slot.proxy.label)
        if status == 304 and cache_key in self._validators:
            self._validators.move_to_end(cache_key)
            return self._validators[cache_key][2]  # type: ignore[return-value]
        if 300 <= status < 400:
            # Steam redirects a switched-off endpoint to an HTML page: the same signal as HTML.
            raise BadResponse(
                endpoint=endpoint,
                reason=f"redirected ({status}) to {location[:80]!r}",
                status=status,
                is_html=True,
            )
        if len(body) > MAX_BODY:
            raise BadResponse.from_body(
                body[:200], endpoint=endpoint, reason="body too large", status=status
            )
        if status == 500 and body_on_500:
            try:  # priceoverview says "unknown item" as a 500 with {"success":false}
                parse(body)
            except ItemNotFound:
                raise
            except SteamError:
                pass
        if status >= 500:
            raise Unavailable(endpoint=endpoint, status=status, reason=f"HTTP {status}")
        if status == 404:
            raise ItemNotFound(
                endpoint=endpoint, appid=item.appid, market_hash_name=item.market_hash_name
            )
        if status != 200:
            raise BadResponse.from_body(
                body, endpoint=endpoint, reason=f"unexpected HTTP {status}", status=status
            )
        try:
            result = parse(body)
        except SteamError as e:
            e.status = status  # type: ignore[attr-defined]
            raise
        if cache_key and (validators[0] or validators[1]):
            self._validators[cache_key] = (*validators, result)
            self._validators.move_to_end(cache_key)
            while len(self._validators) > self._cache_size:
                self._validators.popitem(last=False)
        return result

    @property
    def language_tag(self) -> str:
        return {"english": "en-US", "russian": "ru-RU", "german": "de-DE"}.get(self.language, "en")
