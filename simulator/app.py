"""The simulator as an aiohttp application: `create_app` wires market, limits, faults, stats.

One middleware stands between every market request and its handler, in Steam's order:
count it, add latency, then rate limits (a 429 is bare: no body, no Retry-After), then
an injected fault, then the real answer. Admin routes under `/__sim/` bypass all of it.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulator import admin, endpoints, search
from simulator.catalogue import Catalogue, load_catalogue
from simulator.clock import Clock, system_clock
from simulator.config import GROUP_OF, Endpoint, SimulatorConfig
from simulator.faults import FaultInjector, FaultRule
from simulator.limits import Limiter
from simulator.market import Market
from simulator.pages import error_page
from simulator.state import STATE, SimulatorState
from simulator.stats import Stats, outcome_of

_TRUNCATED_JSON = '{"success":true,"lowest_price":"1,66\\u20ac","volume":"5,6'
_HANDLERS = {**endpoints.ENDPOINT_OF_HANDLER, search.search: "search"}


def create_app(
    *, config: SimulatorConfig, clock: Clock = system_clock, catalogue: Catalogue | None = None
) -> web.Application:
    """A ready-to-run simulator; nothing starts until a runner serves it."""
    catalogue = catalogue if catalogue is not None else load_catalogue()
    now = clock()
    faults = FaultInjector(seed=config.seed)
    for spec in config.faults:
        faults.add(FaultRule.from_spec(dict(spec)), now)
    state = SimulatorState(
        config=config,
        clock=clock,
        catalogue=catalogue,
        market=Market(
            catalogue,
            seed=config.seed,
            clock=clock,
            tick_seconds=config.tick_seconds,
            book_cap=config.book_cap,
        ),
        limiter=Limiter(config.limits),
        faults=faults,
        stats=Stats(config.stats_ring),
        legacy=config.legacy,
        new_market=config.new_market,
        region_currency=config.region_currency,
        latency=config.latency,
    )
    app = web.Application(middlewares=[_steam_middleware])
    app[STATE] = state
    endpoints.add_routes(app)
    app.router.add_get("/market/search/render/", search.search)
    app.router.add_get("/market/search/render", search.search)
    admin.add_routes(app)
    app.on_response_prepare.append(_server_header)
    app.on_shutdown.append(_release_held)
    return app


def _endpoint_of(request: web.Request) -> Endpoint | None:
    return _HANDLERS.get(request.match_info.handler)


@web.middleware
async def _steam_middleware(request: web.Request, handler: endpoints.Handler) -> web.StreamResponse:
    endpoint = _endpoint_of(request)
    if endpoint is None:
        return await handler(request)
    state = request.app[STATE]
    client = request.remote or "unknown"
    now = state.clock()
    state.stats.seen(client, endpoint, now)
    delay = state.latency_s()
    if delay:
        await state.hold(delay)
    item = _item_name(request)
    if state.faults.pick(endpoint, client, now, storm=True, item=item) is not None:
        state.stats.record(client, endpoint, "rate_limited", now)
        return _bare_429()
    if state.limiter.check(client, GROUP_OF[endpoint], now, _item_key(request)) != "ok":
        state.stats.record(client, endpoint, "rate_limited", now)
        return _bare_429()
    fault = state.faults.pick(endpoint, client, now, item=item)
    if fault is not None:
        state.stats.record(client, endpoint, "fault", now)
        if fault.mode == "slow":
            await state.hold((fault.delay_ms if fault.delay_ms is not None else 3000) / 1000)
        elif fault.mode == "rename_field":
            return _renamed(await handler(request), fault)
        else:
            return await _faulty_answer(state, fault)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        state.stats.record(client, endpoint, outcome_of(exc.status), state.clock())
        raise
    state.stats.record(client, endpoint, outcome_of(response.status), state.clock())
    return response


def _item_name(request: web.Request) -> str | None:
    """The market_hash_name a request asks about, where it names one (for item faults)."""
    info, query = request.match_info, request.query
    if "name" in info:
        return info["name"]
    if "qp" in query:
        try:
            qp = json.loads(query["qp"])
        except ValueError:
            return None
        if isinstance(qp, list) and qp and isinstance(qp[0], dict):  # QueryListingsForItem
            name = qp[0].get("strItemName")
            return name if isinstance(name, str) else None
        return qp[1] if isinstance(qp, list) and len(qp) > 1 and isinstance(qp[1], str) else None
    return query.get("market_hash_name") or query.get("query")


def _item_key(request: web.Request) -> str:
    """What the request asks about, for limits that count distinct items."""
    info, query = request.match_info, request.query
    if "name" in info:
        return f"{info['appid']}/{info['name']}"
    if "item_nameid" in query:
        return query["item_nameid"]
    if "qp" in query:
        return query["qp"]
    return f"{query.get('appid', '')}/{query.get('market_hash_name', query.get('query', ''))}"


def _renamed(response: web.StreamResponse, fault: FaultRule) -> web.StreamResponse:
    """The answer with the fault's JSON key renamed wherever it appears (format drift)."""
    if not isinstance(response, web.Response) or response.text is None or fault.field is None:
        return response
    try:
        body = json.loads(response.text)
    except ValueError:
        return response
    new = fault.rename_to or f"{fault.field}_v2"

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {(new if k == fault.field else k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    kept = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "content-type")
    }
    return web.Response(
        status=response.status,
        text=json.dumps(walk(body), separators=(",", ":"), ensure_ascii=False),
        content_type="application/json",
        headers=kept,
    )


def _bare_429() -> web.Response:
    # Steam's 429 has an empty body and no Retry-After; clients must find their own pace.
    return web.Response(status=429)


async def _faulty_answer(state: SimulatorState, fault: FaultRule) -> web.Response:
    """What a fired fault sends instead of the real answer."""
    mode = fault.mode
    if mode == "timeout":
        hold = fault.delay_ms / 1000 if fault.delay_ms is not None else state.config.timeout_hold_s
        await state.hold(hold)
        page = error_page("Gateway Timeout")
        return web.Response(status=504, text=page, content_type="text/html")
    if mode == "http_5xx":
        status = state.faults.choose_status(fault)
        return web.Response(status=status, text=error_page(), content_type="text/html")
    if mode == "html_error":
        return web.Response(status=fault.status or 200, text=error_page(), content_type="text/html")
    body = {"malformed_json": _TRUNCATED_JSON, "null": "null"}.get(mode, '{"success":false}')
    return web.Response(status=fault.status or 200, text=body, content_type="application/json")


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "nginx"


async def _release_held(app: web.Application) -> None:
    """Wake requests held by `timeout`/`slow` faults so shutdown does not wait for them."""
    app[STATE].stopping.set()
