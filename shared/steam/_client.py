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
from decimal import Decimal
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
    WrongCurrency,
)
from shared.steam._item import Item, ListingFilter
from shared.steam._prices import UnknownCurrency, currency_code
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
PARSE_FAILURES = Counter(
    "steamwatch_steam_parse_failures",
    "Steam answers (HTTP 200) that did not read as the endpoint's format, by parser endpoint and "
    "reason: html, not_json, missing_field, wrong_type, currency (priced in another currency "
    "than asked), other. A sudden rise means Steam changed a format: run `steamwatch probe`",
    ["endpoint", "reason"],
)
PARSE_FAILURE_REASONS = ("html", "not_json", "missing_field", "wrong_type", "currency", "other")
ROUTES = ("priceoverview", "listings", "itemordershistogram", "QueryListingsForItem", "orderbook")
GROUP_RETRY_SECONDS = 6 * 3600.0  # how long "the search names no group for it" is believed
# CS2 exteriors and their wear ranges (bounds inclusive here; rows are checked by name anyway).
_WEAR_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "Factory New": (Decimal("0"), Decimal("0.07")),
    "Minimal Wear": (Decimal("0.07"), Decimal("0.15")),
    "Field-Tested": (Decimal("0.15"), Decimal("0.38")),
    "Well-Worn": (Decimal("0.38"), Decimal("0.45")),
    "Battle-Scarred": (Decimal("0.45"), Decimal("1")),
}
RESPONSES = Counter(
    "steamwatch_steam_responses",
    "Steam answers by endpoint, proxy and status class (2xx, 3xx, 4xx, 429, 5xx; timeout and "
    "error when there was no answer)",
    ["endpoint", "proxy", "status_class"],
)


def listing_query(item: Item, name: str, wanted: ListingFilter) -> dict[str, object]:
    """The object `QueryListingsForItem` takes in `qp=[…]` for ``item``, asked by ``name`` (its
    own, or its group's id), filtered to ``wanted``, cheapest first.

    The shape the new market's item page sends, as read by aiosteampy and other clients: the
    item under `strItemName`, filters as objects, the price bounds in minor units of
    `price.eCurrency`, the wear as property 2's float range.
    """
    price: dict[str, int] = {"eCurrency": item.currency}
    if wanted.max_price is not None:
        price["unMax"] = wanted.max_price
    properties: dict[str, dict[str, float | int]] = {}
    low, high = wanted.float_min, wanted.float_max
    if name != item.market_hash_name:
        # A group answers for every wear: its wear's float range keeps the page to this one.
        wear = _WEAR_RANGES.get(item.market_hash_name.rsplit("(", 1)[-1].rstrip(")"))
        if wear is not None:
            low = max(low, wear[0]) if low is not None else wear[0]
            high = min(high, wear[1]) if high is not None else wear[1]
    if low is not None or high is not None:
        # The server-side filter takes floats; the answer is checked again exactly.
        properties[str(parsers.PROPERTY_WEAR)] = {
            "property_id": parsers.PROPERTY_WEAR,
            "float_min": float(low) if low is not None else 0.0,
            "float_max": float(high) if high is not None else 1.0,
        }
    return {
        "appid": item.appid,
        "strItemName": name,
        "filters": {},
        "accessoryFilters": {},
        "propertyFilters": properties,
        "price": price,
        "sort": {"field": 0, "direction": 0},  # price, ascending
        "start": 0,
    }


def failure_reason(error: BadResponse) -> str:
    """The `reason` label of a parse failure, from the error the parser raised."""
    text = error.reason
    if error.is_html:
        return "html"
    if text.startswith(("malformed JSON", "empty body", "expected a JSON object", "body is not")):
        return "not_json"
    if text.startswith("missing field"):
        return "missing_field"
    if text.startswith("answered in"):
        return "currency"
    if " must " in text or text.startswith(("unexpected", "success is")):
        return "wrong_type"
    return "other"


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, or its first MAX_BODY + 1 bytes. (``content.read(n)`` alone returns
    whatever has arrived, at most n: a 128 KB listing page would come back cut.)"""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


def _code(currency: int) -> str:
    try:
        return currency_code(currency)
    except UnknownCurrency:
        return "an unknown currency"


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
    for route in ROUTES:
        for reason in PARSE_FAILURE_REASONS:
            PARSE_FAILURES.labels(endpoint=route, reason=reason)
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
        # (appid, name) -> (group id or None, when learned): the new market's name for a skin's
        # group of wears, learned from the market search when a name-keyed query finds nothing.
        self._groups: dict[tuple[int, str], tuple[str | None, float]] = {}

    # ---- the three watches ----------------------------------------------------------------

    async def price_overview(self, item: Item) -> PriceOverview | OrderBook:
        """Lowest and median price and volume (legacy); the order book's lowest sell (new)."""
        return await self._with_fallback(
            legacy=lambda: self._legacy_priceoverview(item), new=lambda: self._new_orderbook(item)
        )

    async def listings(
        self, item: Item, *, count: int = 10, wanted: ListingFilter | None = None
    ) -> Listings:
        """Sell listings, cheapest first; on the new market filtered by Steam to ``wanted``."""
        return await self._with_fallback(
            legacy=lambda: self._legacy_listings(item, count),
            new=lambda: self._new_listings(item, wanted or ListingFilter()),
        )

    async def order_book(self, item: Item) -> OrderBook:
        return await self._with_fallback(
            legacy=lambda: self._legacy_histogram(item), new=lambda: self._new_orderbook(item)
        )

    async def search(self, appid: int, query: str, *, count: int = 50) -> list[str]:
        """Market hash names Steam finds for ``query`` in ``appid`` (every word, in any order).

        Steam limits search on its own; here it shares the listings budget, the stricter one.
        """
        return [name for name, _ in await self.search_groups(appid, query, count=count)]

    async def search_groups(
        self, appid: int, query: str, *, count: int = 50
    ) -> list[tuple[str, str | None]]:
        """Like :meth:`search`, with each result's market bucket group id (or None)."""
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
            parse=lambda body: parsers.parse_search_results(body, appid=appid),
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
        except WrongCurrency:
            if first == self.family or not self.fallback:
                raise
            # Set aside for the other family, which cannot price this watch: back to the
            # configured one at once, rather than fail the watch until the set-aside ends.
            self._fallback_until = 0.0
            return await calls[self.family]()
        except BadResponse as e:
            if not (e.is_html and self.fallback):
                raise
            # Steam answered this family with a page or a redirect: it is switched off here.
            other: Family = "new" if first == "legacy" else "legacy"
            self._fallback_until = (
                time.monotonic() + self.fallback_for if first == self.family else 0.0
            )
            try:
                return await calls[other]()
            except WrongCurrency:
                # The other family cannot price this watch: do not stay on it (the first one
                # may be back at the next check), and say what the first one answered.
                self._fallback_until = 0.0
                raise e from None

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

    async def _new_listings(self, item: Item, wanted: ListingFilter) -> Listings:
        """`QueryListingsForItem`, by the item's name or, for a grouped skin, its group's id.

        Steam files a skin's wears under one group and answers a name-keyed query for a grouped
        item with nothing at all; the group id comes from the market search and is kept.
        """
        key = (item.appid, item.market_hash_name)
        group, _ = self._groups.get(key, (None, 0.0))
        found = await self._query_listings(item, group or item.market_hash_name, wanted)
        if found.total_count or group is not None or not self._group_lookup_due(key):
            return found
        group = await self._learn_group(item)
        if group is None or group == item.market_hash_name:
            return found
        return await self._query_listings(item, group, wanted)

    def _group_lookup_due(self, key: tuple[int, str]) -> bool:
        learned = self._groups.get(key)
        return learned is None or time.monotonic() - learned[1] > GROUP_RETRY_SECONDS

    async def _learn_group(self, item: Item) -> str | None:
        """The item's market bucket group id from Steam's search, remembered either way."""
        key = (item.appid, item.market_hash_name)
        try:
            results = await self.search_groups(item.appid, item.market_hash_name, count=10)
        except (SteamError, ProxyPoolExhausted) as e:
            log.info("no group id for the item: search failed", error=type(e).__name__)
            return None  # not remembered: the next empty answer asks again
        group = next((g for name, g in results if name == item.market_hash_name), None)
        self._groups[key] = (group, time.monotonic())
        log.info("market group learned", market_hash_name=item.market_hash_name, group=group)
        return group

    async def _query_listings(self, item: Item, name: str, wanted: ListingFilter) -> Listings:
        query = listing_query(item, name, wanted)
        listings = await self._call(
            "listings",
            "/market/actions",
            item=item,
            params={"q": "QueryListingsForItem", "qp": json.dumps([query], ensure_ascii=False)},
            headers=self._new_market_headers(item),
            parse=lambda body: parsers.parse_query_listings(body, **self._ids(item)),
            conditional=True,
        )
        for entry in listings.listings:
            self._same_currency(item, entry.currency, "QueryListingsForItem")
        return listings

    async def _new_orderbook(self, item: Item) -> OrderBook:
        # No currency in `qp`: Steam prices the book in the currency of the caller's region.
        qp = [item.appid, item.market_hash_name]
        book = await self._call(
            "orderbook",
            "/market/orderbook",
            item=item,
            params={"q": "Load", "qp": json.dumps(qp, ensure_ascii=False)},
            headers=self._new_market_headers(item),
            parse=lambda body: parsers.parse_orderbook(body, **self._ids(item)),
            conditional=True,
        )
        self._same_currency(item, book.currency, "orderbook")
        return book

    def _new_market_headers(self, item: Item) -> dict[str, str]:
        """What the new market's own page sends: Steam's WAF refuses calls without them."""
        page = f"{self.base_url}/market/listings/{item.appid}/{quote(item.market_hash_name)}"
        return {"x-valve-request-type": "queryAction", "Referer": page}

    @staticmethod
    def _same_currency(item: Item, answered: int, endpoint: str) -> None:
        """A price in another currency than the watch's cannot be judged against its limits."""
        if answered == item.currency:
            return
        error = WrongCurrency(
            endpoint=endpoint,
            reason=(
                f"answered in {_code(answered)} ({answered}), the watch is in "
                f"{_code(item.currency)} ({item.currency}): the new market prices in the "
                "currency of the proxy's region; use proxies in that region or the legacy family"
            ),
        )
        PARSE_FAILURES.labels(endpoint=endpoint, reason="currency").inc()
        raise error

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
                body = await _read_capped(response)
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
        except BadResponse as e:
            e.status = status
            PARSE_FAILURES.labels(endpoint=e.endpoint or endpoint, reason=failure_reason(e)).inc()
            raise
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
