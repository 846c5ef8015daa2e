"""``steamwatch probe``: has Steam changed a format? One request per endpoint and family.

For operators after a Steam change (a library that follows the new market needed three fixes in
four weeks of 2026). Each endpoint is asked once, the way the fetcher asks it (same parameters and
headers, through one configured proxy), and its answer is held against the fields steamwatch
reads: fields missing, fields not seen before, fields whose JSON type changed, and whether the
parser reads it. Exit 1 when a field the parsers read is missing or changed type, or an answer
does not parse; 3 when an endpoint did not answer at all (nothing to judge); 2 for bad options;
0 otherwise. ``--json`` prints the same report for scripts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict
from urllib.parse import quote

import aiohttp
import click

from shared.config import DIRECT, Settings
from shared.observability import SecretURL, redact_text
from shared.steam import Item, ListingFilter, SteamError, currency_code
from shared.steam import _parsers as parsers
from shared.steam._client import listing_query
from steamwatch.common import fail, settings_or_exit

JsonType = str  # "object", "array", "string", "number", "bool", "null"


class _Ids(TypedDict):
    currency: int
    appid: int
    market_hash_name: str


# The fields each answer is expected to carry, by path ("[]" is every element of an array, "*"
# every key of an object keyed by ids), with the JSON types allowed. `True` after the types
# marks a field the parsers need; the others are reported when missing but are not drift.
Schema = dict[str, tuple[frozenset[JsonType], bool | None]]


def _t(*types: JsonType, needed: bool | None = True) -> tuple[frozenset[JsonType], bool | None]:
    """Allowed types; needed: True (the parsers read it), False (usually there), None (known,
    often absent: never reported missing)."""
    return frozenset(types), needed


NUMERIC = ("number", "string")  # Steam sends counts both ways

SCHEMAS: dict[str, Schema] = {
    "priceoverview": {
        "success": _t("bool"),
        "lowest_price": _t("string", needed=False),
        "median_price": _t("string", needed=False),
        "volume": _t("string", needed=False),
    },
    "listings": {
        "success": _t("bool"),
        "start": _t(*NUMERIC, needed=False),
        "pagesize": _t(*NUMERIC, needed=False),
        "total_count": _t(*NUMERIC),
        "results_html": _t("string", needed=False),
        "listinginfo": _t("object", "array"),
        "listinginfo.*.listingid": _t(*NUMERIC),
        "listinginfo.*.price": _t("number"),
        "listinginfo.*.fee": _t("number"),
        "listinginfo.*.currencyid": _t(*NUMERIC),
        "listinginfo.*.converted_price": _t("number", needed=False),
        "listinginfo.*.converted_fee": _t("number", needed=False),
        "listinginfo.*.converted_currencyid": _t(*NUMERIC, needed=False),
        "listinginfo.*.asset": _t("object"),
        **{
            f"listinginfo.*.{name}": _t("number", "string", needed=None)
            for name in (
                "publisher_fee_app",
                "publisher_fee_percent",
                "steam_fee",
                "publisher_fee",
                "converted_steam_fee",
                "converted_publisher_fee",
                "converted_price_per_unit",
                "converted_fee_per_unit",
                "converted_steam_fee_per_unit",
                "converted_publisher_fee_per_unit",
            )
        },
        "listinginfo.*.asset.id": _t(*NUMERIC),
        "assets": _t("object", "array", needed=False),
        "currency": _t("array", "object", needed=None),
        "hovers": _t("string", needed=None),
        "app_data": _t("object", needed=None),
    },
    "itemordershistogram": {
        "success": _t("number", "bool"),
        "highest_buy_order": _t("string", "number", "null"),
        "lowest_sell_order": _t("string", "number", "null"),
        "buy_order_count": _t(*NUMERIC, needed=None),
        "sell_order_count": _t(*NUMERIC, needed=None),
        "buy_order_graph": _t("array"),
        "sell_order_graph": _t("array"),
        "buy_order_graph.[]": _t("array", needed=False),
        "sell_order_graph.[]": _t("array", needed=False),
        "buy_order_price": _t("string", "null", needed=None),
        "sell_order_price": _t("string", "null", needed=None),
        "buy_order_table": _t("array", "string", "null", needed=None),
        "sell_order_table": _t("array", "string", "null", needed=None),
        "buy_order_summary": _t("string", needed=None),
        "sell_order_summary": _t("string", needed=None),
        "graph_max_y": _t("number", needed=False),
        "graph_min_x": _t("number", needed=False),
        "graph_max_x": _t("number", needed=False),
        "price_prefix": _t("string", needed=False),
        "price_suffix": _t("string", needed=False),
    },
    "search": {
        "success": _t("bool"),
        "start": _t("number", needed=False),
        "pagesize": _t("number", needed=False),
        "total_count": _t("number", needed=False),
        "results": _t("array"),
        "results.[].hash_name": _t("string"),
        "results.[].asset_description": _t("object", needed=False),
        "results.[].asset_description.market_hash_name": _t("string", needed=False),
        "results.[].asset_description.market_bucket_group_id": _t("string", needed=False),
        "searchdata": _t("object", needed=None),
        **{
            f"results.[].{name}": _t("string", "number", needed=None)
            for name in (
                "name",
                "sell_listings",
                "sell_price",
                "sell_price_text",
                "sale_price_text",
                "app_icon",
                "app_name",
            )
        },
    },
    "QueryListingsForItem": {
        "data": _t("object", "null"),
        "data.more": _t("bool", needed=False),
        "data.start": _t("number", needed=False),
        "data.total_count": _t(*NUMERIC),
        "data.listings": _t("array"),
        "data.facets": _t("array", needed=False),
        "data.listings.[].listingid": _t(*NUMERIC),
        "data.listings.[].unPrice": _t(*NUMERIC),
        "data.listings.[].unFee": _t(*NUMERIC),
        "data.listings.[].eCurrency": _t(*NUMERIC),
        "data.listings.[].description": _t("object", needed=False),
        "data.listings.[].description.market_hash_name": _t("string", needed=False),
        "data.listings.[].asset": _t("object", needed=False),
        "data.listings.[].asset.assetid": _t(*NUMERIC, needed=False),
        "data.listings.[].asset.asset_properties": _t("array", "null", needed=False),
        **{
            f"data.listings.[].{name}": _t("string", "number", "bool", "array", needed=None)
            for name in (
                "unSteamFee",
                "unPublisherFee",
                "unPricePerUnit",
                "unFeePerUnit",
                "unSteamFeePerUnit",
                "unPublisherFeePerUnit",
                "strSubtotal",
                "publisherFeeApp",
                "publisherFeePct",
                "bMine",
                "enhanced_appearances",
            )
        },
    },
    "orderbook": {
        "data": _t("object"),
        "data.success": _t("bool", "number"),
        "data.data": _t("object"),
        "data.data.amtMaxBuyOrder": _t("number", "string", "null"),
        "data.data.amtMinSellOrder": _t("number", "string", "null"),
        "data.data.eCurrency": _t(*NUMERIC),
        "data.data.cBuyOrders": _t(*NUMERIC),
        "data.data.cSellOrders": _t(*NUMERIC),
        "data.data.rgCompactBuyOrders": _t("array", needed=False),
        "data.data.rgCompactSellOrders": _t("array", needed=False),
    },
}
# Objects whose own fields vary by item or locale: their children are never "unexpected".
OPEN = ("assets", "app_data", "searchdata", "description", "asset_description", "asset.")


@dataclass
class Finding:
    """What one endpoint answered and how it compares with what steamwatch reads."""

    endpoint: str
    family: str
    url: str
    status: int | None = None
    parsed: bool = False
    parse_error: str | None = None
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # "path: was number, now string"
    error: str | None = None  # no answer at all
    seconds: float = 0.0

    @property
    def drift(self) -> bool:
        return bool(self.changed or self.parse_error or any(m.endswith("*") for m in self.missing))


def _json_type(value: Any) -> JsonType:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(body: Any) -> dict[str, set[JsonType]]:
    """Every path in a JSON document with the types seen there ("[]" for array elements, "*"
    for the keys of an object keyed by ids)."""
    seen: dict[str, set[JsonType]] = {}

    def walk(node: Any, path: str) -> None:
        if path:
            seen.setdefault(path, set()).add(_json_type(node))
        if isinstance(node, dict):
            for key, child in node.items():
                step = "*" if key.isdigit() else key
                walk(child, f"{path}.{step}" if path else step)
        elif isinstance(node, list):
            for child in node[:5]:
                if isinstance(child, dict | list):
                    walk(child, f"{path}.[]")

    walk(body, "")
    return seen


def compare(
    schema: Schema, seen: dict[str, set[JsonType]]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, changed) of ``seen`` against ``schema``; a needed field's missing
    entry ends in "*". A field under a parent that is absent or empty is not missing."""
    missing, changed = [], []
    for path, (types, needed) in schema.items():
        parent = path.rpartition(".")[0]
        if parent and not seen.get(parent, set()) & {"object", "array"}:
            continue  # nothing to look in (an empty list, a null `data`)
        if path not in seen:
            if needed is not None:
                missing.append(path + ("*" if needed else ""))
        elif not seen[path] <= types and not (seen[path] == {"null"} and not needed):
            was, now = "/".join(sorted(types)), "/".join(sorted(seen[path] - types))
            changed.append(f"{path}: expected {was}, got {now}")
    known_parents = {p.rpartition(".")[0] for p in schema} | {""}
    unexpected = [
        path
        for path in seen
        if path not in schema
        and path.rpartition(".")[0] in known_parents
        and not any(part in path for part in OPEN)
    ]
    return missing, sorted(unexpected), changed


@dataclass(frozen=True)
class Request:
    endpoint: str  # the parser's name
    family: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    parse: Callable[[bytes], object]


def requests_for(
    base: str, appid: int, name: str, currency: int, nameid: int | None, group: str | None = None
) -> list[Request]:
    """The calls the fetcher makes, with the same parameters and headers."""
    ids: _Ids = {"currency": currency, "appid": appid, "market_hash_name": name}
    page = f"{base}/market/listings/{appid}/{quote(name)}"
    new_headers = {"x-valve-request-type": "queryAction", "Referer": page}
    item = Item(appid=appid, market_hash_name=name, currency=currency)
    query = listing_query(item, group or name, ListingFilter())
    found = [
        Request(
            "priceoverview",
            "legacy",
            "/market/priceoverview/",
            {
                "country": "US",
                "currency": str(currency),
                "appid": str(appid),
                "market_hash_name": name,
            },
            {},
            lambda b: parsers.parse_priceoverview(b, **ids),
        ),
        Request(
            "listings",
            "legacy",
            f"/market/listings/{appid}/{quote(name, safe='')}/render/",
            {"start": "0", "count": "10", "currency": str(currency), "format": "json"},
            {"Cookie": "bMarketOptOut=1"},
            lambda b: parsers.parse_listings_render(b, **ids),
        ),
        Request(
            "search",
            "legacy",
            "/market/search/render/",
            {
                "query": name,
                "appid": str(appid),
                "start": "0",
                "count": "10",
                "search_descriptions": "0",
                "norender": "1",
            },
            {},
            lambda b: parsers.parse_search_results(b, appid=appid),
        ),
        Request(
            "QueryListingsForItem",
            "new",
            "/market/actions",
            {"q": "QueryListingsForItem", "qp": json.dumps([query], ensure_ascii=False)},
            new_headers,
            lambda b: parsers.parse_query_listings(b, **ids),
        ),
        Request(
            "orderbook",
            "new",
            "/market/orderbook",
            {"q": "Load", "qp": json.dumps([appid, name], ensure_ascii=False)},
            new_headers,
            lambda b: parsers.parse_orderbook(b, **ids),
        ),
    ]
    if nameid is not None:
        found.insert(
            2,
            Request(
                "itemordershistogram",
                "legacy",
                "/market/itemordershistogram",
                {
                    "country": "US",
                    "language": "english",
                    "currency": str(currency),
                    "item_nameid": str(nameid),
                    "two_factor": "0",
                    "norender": "1",
                },
                {},
                lambda b: parsers.parse_orders_histogram(b, **ids),
            ),
        )
    return found


async def _ask(
    http: aiohttp.ClientSession, base: str, request: Request, proxy: str | None
) -> tuple[Finding, bytes]:
    finding = Finding(request.endpoint, request.family, base + request.path)
    started = time.perf_counter()
    headers = {"Accept-Language": "en-US,en;q=0.8", **request.headers}
    try:
        async with http.get(
            base + request.path,
            params=request.params,
            headers=headers,
            proxy=proxy,
            allow_redirects=False,
        ) as response:
            finding.status = response.status
            body = await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        finding.error = redact_text(f"{type(e).__name__}: {e}")[:200] or type(e).__name__
        return finding, b""
    finally:
        finding.seconds = round(time.perf_counter() - started, 3)
    try:
        request.parse(body)
        finding.parsed = True
    except SteamError as e:
        finding.parse_error = str(e)[:300]
    try:
        document = json.loads(body)
    except ValueError:
        return finding, body
    finding.missing, finding.unexpected, finding.changed = compare(
        SCHEMAS[request.endpoint], shape(document)
    )
    return finding, body


async def _nameid(
    http: aiohttp.ClientSession, base: str, appid: int, name: str, proxy: str | None
) -> int | None:
    from shared.steam import _pages as pages

    url = f"{base}/market/listings/{appid}/{quote(name, safe='')}"
    try:
        async with http.get(
            url,
            headers={"Cookie": "bMarketOptOut=1", "Accept-Language": "en-US,en;q=0.8"},
            proxy=proxy,
        ) as r:
            text = await r.read()
        return pages.parse_item_nameid(text, currency=1, appid=appid, market_hash_name=name)
    except (SteamError, aiohttp.ClientError, OSError, TimeoutError):
        return None


async def probe(
    base: str,
    *,
    appid: int,
    name: str,
    currency: int,
    proxy: str | None,
    seconds: float,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Finding]:
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds))
    try:
        progress("item page (for the order histogram's item_nameid)")
        nameid = await _nameid(http, base, appid, name, proxy)
        findings = []
        group: str | None = None
        for request in requests_for(base, appid, name, currency, nameid):
            if request.endpoint == "QueryListingsForItem" and group is not None:
                # Ask as the fetcher does: a grouped skin by its group's id.
                (request,) = [
                    r
                    for r in requests_for(base, appid, name, currency, nameid, group)
                    if r.endpoint == "QueryListingsForItem"
                ]
            progress(f"{request.family} {request.endpoint}")
            finding, body = await _ask(http, base, request, proxy)
            findings.append(finding)
            if request.endpoint == "listings" and nameid is None:
                # The histogram is asked by the item_nameid its page names: no page, no question.
                findings.append(
                    Finding(
                        "itemordershistogram",
                        "legacy",
                        f"{base}/market/itemordershistogram",
                        error="not asked: the item page named no item_nameid",
                    )
                )
            if request.endpoint == "search" and finding.parsed:
                results = parsers.parse_search_results(body, appid=appid)
                group = next((g for n, g in results if n == name), None)
        return findings
    finally:
        await http.close()


def _line(f: Finding) -> str:
    if f.error:
        return f"  {f.family:<6} {f.endpoint:<21} no answer: {f.error}"
    verdict = "parsed" if f.parsed else f"NOT PARSED: {f.parse_error}"
    head = f"  {f.family:<6} {f.endpoint:<21} HTTP {f.status}  {verdict}  ({f.seconds:.2f}s)"
    notes = []
    needed = [m.rstrip("*") for m in f.missing if m.endswith("*")]
    optional = [m for m in f.missing if not m.endswith("*")]
    if needed:
        notes.append("missing: " + ", ".join(needed))
    if f.changed:
        notes.append("changed type: " + "; ".join(f.changed))
    if f.unexpected:
        notes.append("unexpected: " + ", ".join(f.unexpected[:12]))
    if optional:
        notes.append("absent (optional): " + ", ".join(optional))
    return "\n".join([head, *(f"      {note}" for note in notes)])


@click.command("probe")
@click.option("--appid", type=int, default=730, show_default=True, help="The item's app.")
@click.option(
    "--item",
    default="AK-47 | Redline (Field-Tested)",
    show_default=True,
    help="A market hash name that exists (any will do; it should have listings).",
)
@click.option("--currency", default="USD", show_default=True, help="Currency code or id.")
@click.option(
    "--proxy",
    metavar="URL",
    help='The proxy to ask through (default: the first of STEAMWATCH_PROXIES; "direct": none).',
)
@click.option("--base-url", metavar="URL", help="Steam, or a simulator (default: the setting).")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds per request.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def probe_command(
    appid: int,
    item: str,
    currency: str,
    proxy: str | None,
    base_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Ask each Steam endpoint once and report format drift (exit 1 on drift, 3 if unanswered).

    \b
    Per endpoint and family: HTTP status, whether steamwatch's parser reads it, and the fields
    seen against those expected: missing (* marks a field the parsers need), unexpected, and
    changed JSON type. About 7 requests in all, through one proxy: mind Steam's limits.
    """
    from shared.tasks import CURRENCY_IDS

    settings: Settings = settings_or_exit()
    code = currency.strip().upper()
    currency_id = CURRENCY_IDS.get(code) or (int(code) if code.isdigit() else None)
    if currency_id is None or currency_id not in CURRENCY_IDS.values():
        fail(f"--currency: {currency!r} is not a Steam currency (USD, EUR, ... or an id)")
    base, chosen = _where(settings, base_url, proxy)
    shown = "direct" if chosen is None else SecretURL(chosen).masked
    if not as_json:
        click.echo(
            f"probing {base} through {shown} for {item!r} (app {appid}, "
            f"{currency_code(currency_id)})",
            err=True,
        )
    findings = asyncio.run(
        probe(
            base,
            appid=appid,
            name=item,
            currency=currency_id,
            proxy=chosen,
            seconds=timeout,
            progress=(lambda _: None) if as_json else (lambda s: click.echo(f"  … {s}", err=True)),
        )
    )
    drift = any(f.drift for f in findings)
    silent = [f.endpoint for f in findings if f.error is not None]
    if as_json:
        report = {
            "base_url": base,
            "item": item,
            "appid": appid,
            "drift": drift,
            "unanswered": silent,
            "endpoints": [asdict(f) | {"drift": f.drift} for f in findings],
        }
        click.echo(json.dumps(report, indent=2))
    else:
        for finding in findings:
            click.echo(_line(finding))
        click.echo(
            "drift: a field steamwatch reads is missing or changed, or an answer does not parse"
            if drift
            else "no drift: every answer reads as expected"
        )
        if silent and not drift:
            click.echo(f"no answer from {', '.join(silent)}: nothing to judge there")
    sys.exit(1 if drift else 3 if silent else 0)


def _where(settings: Settings, base_url: str | None, proxy: str | None) -> tuple[str, str | None]:
    """Steam (or `make run`'s simulator, found the way `tasks add` finds it) and the proxy."""
    from steamwatch.discovery import read_stores

    stores = read_stores(settings.home) or {}
    proxies = [p.reveal() for p in settings.proxies]
    base = settings.steam_base_url
    if base_url is None and "STEAMWATCH_STEAM_BASE_URL" not in os.environ:
        if "steam_base_url" in stores:
            base = str(stores["steam_base_url"])
            proxies = [str(p) for p in stores.get("proxies") or [DIRECT]]
    chosen = proxy if proxy is not None else (proxies[0] if proxies else DIRECT)
    return (base_url or base).rstrip("/"), None if chosen.lower() == DIRECT else chosen
