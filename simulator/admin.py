"""Run-time control under `/__sim/`: stats, faults, limits, latency, legacy mode, reset.

Never rate limited or faulted. Bodies are JSON; a bad one gets a 400 saying why.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from aiohttp import web

from shared.steam import SUPPORTED_CURRENCIES
from simulator.config import GROUP_OF, Latency, LegacyMode, LimitsConfig, WindowLimit
from simulator.faults import FaultRule, FaultSpecError
from simulator.market import Market
from simulator.state import STATE, SimulatorState

_LEGACY_MODES: tuple[LegacyMode, ...] = ("on", "html", "redirect")


class AdminRequestError(ValueError):
    """Raised when an admin request body cannot be applied."""


def _state(request: web.Request) -> SimulatorState:
    return request.app[STATE]


async def _body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AdminRequestError(f"body is not JSON: {exc}") from exc


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


async def health(request: web.Request) -> web.Response:
    state = _state(request)
    return web.json_response({"ok": True, "items": len(state.catalogue), "legacy": state.legacy})


async def stats(request: web.Request) -> web.Response:
    """Counts per client and endpoint; `?window=W` adds each client's busiest W seconds.

    `?served=1` counts only answered requests in that window; `?timestamps=0` leaves
    the timestamp lists out.
    """
    state = _state(request)
    window = request.query.get("window")
    try:
        window_s = float(window) if window is not None else None
    except ValueError:
        return _bad("window must be a number of seconds")
    now = state.clock()
    body = state.stats.snapshot(
        window_s=window_s,
        timestamps=request.query.get("timestamps") != "0",
        served_only=request.query.get("served") == "1",
    )
    for client, entry in body["clients"].items():
        limits = state.limiter.describe(client, now)
        entry["limits"] = {
            "banned_until": limits.banned_until,
            "bans": limits.bans,
            "recent_strikes": limits.recent_strikes,
        }
    body["now"] = now
    return web.json_response(body)


async def faults_get(request: web.Request) -> web.Response:
    state = _state(request)
    return web.json_response({"faults": [f.describe() for f in state.faults.active(state.clock())]})


async def faults_post(request: web.Request) -> web.Response:
    """One fault object, a list of them, or `{"faults": [...], "replace": true}`."""
    state = _state(request)
    try:
        body = await _body(request)
        replace_all = isinstance(body, dict) and body.get("replace") is True
        specs = body.get("faults") if isinstance(body, dict) and "faults" in body else body
        rules = [FaultRule.from_spec(s) for s in (specs if isinstance(specs, list) else [specs])]
    except (AdminRequestError, FaultSpecError) as exc:
        return _bad(str(exc))
    if replace_all:
        state.faults.clear()
    added = [state.faults.add(rule, state.clock()).describe() for rule in rules]
    return web.json_response({"added": added})


async def faults_delete(request: web.Request) -> web.Response:
    _state(request).faults.clear()
    return web.json_response({"faults": []})


def _limits_json(limits: LimitsConfig) -> dict[str, Any]:
    return {
        "enabled": limits.enabled,
        "windows": {
            group: {"limit": rule.limit, "window_s": rule.window_s, "distinct": rule.distinct}
            for group, rule in limits.windows.items()
        },
        "strikes": limits.strikes,
        "strike_window_s": limits.strike_window_s,
        "ban_ladder_s": list(limits.ban_ladder_s),
    }


def apply_limits(limits: LimitsConfig, body: Any) -> LimitsConfig:
    """`limits` changed by a JSON body; `scale` multiplies every duration last."""
    if not isinstance(body, dict):
        raise AdminRequestError("expected an object")
    try:
        windows = dict(limits.windows)
        for group, rule in (body.get("windows") or {}).items():
            if group not in GROUP_OF.values():
                raise AdminRequestError(f"unknown group {group!r}")
            old = windows.get(group, WindowLimit(1, 60.0))
            windows[group] = WindowLimit(
                int(rule.get("limit", old.limit)),
                float(rule.get("window_s", old.window_s)),
                bool(rule.get("distinct", old.distinct)),
            )
        result = replace(
            limits,
            enabled=bool(body.get("enabled", limits.enabled)),
            windows=windows,
            strikes=int(body.get("strikes", limits.strikes)),
            strike_window_s=float(body.get("strike_window_s", limits.strike_window_s)),
            ban_ladder_s=tuple(float(s) for s in body.get("ban_ladder_s", limits.ban_ladder_s)),
        )
        return result.scaled(float(body["scale"])) if "scale" in body else result
    except (TypeError, ValueError, AttributeError) as exc:
        raise AdminRequestError(f"bad limits: {exc}") from exc


async def limits_get(request: web.Request) -> web.Response:
    return web.json_response(_limits_json(_state(request).limiter.config))


async def limits_post(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        body = await _body(request)
        state.limiter.config = apply_limits(state.limiter.config, body)
    except AdminRequestError as exc:
        return _bad(str(exc))
    if body.get("reset"):
        state.limiter.reset()
    return web.json_response(_limits_json(state.limiter.config))


async def latency_post(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        body = await _body(request)
        state.latency = Latency(
            mean_ms=max(0.0, float(body.get("mean_ms", 0))),
            jitter_ms=max(0.0, float(body.get("jitter_ms", 0))),
        )
    except (AdminRequestError, TypeError, ValueError, AttributeError) as exc:
        return _bad(f"bad latency: {exc}")
    return web.json_response(
        {"mean_ms": state.latency.mean_ms, "jitter_ms": state.latency.jitter_ms}
    )


async def legacy_post(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        mode = (await _body(request)).get("mode")
    except (AdminRequestError, AttributeError) as exc:
        return _bad(str(exc))
    if mode not in _LEGACY_MODES:
        return _bad(f"mode must be one of {', '.join(_LEGACY_MODES)}")
    state.legacy = mode
    return web.json_response({"legacy": state.legacy})


async def new_market_post(request: web.Request) -> web.Response:
    """Move the new market's routes (`{"mode": "route_changed"}`) or put them back, and/or set
    the currency it prices in (`{"region_currency": 3}`)."""
    state = _state(request)
    try:
        body = await _body(request)
        mode = body.get("mode", state.new_market)
        region = body.get("region_currency", state.region_currency)
    except (AdminRequestError, AttributeError) as exc:
        return _bad(str(exc))
    if mode not in ("on", "route_changed"):
        return _bad("mode must be one of on, route_changed")
    if region not in SUPPORTED_CURRENCIES or isinstance(region, bool):
        return _bad(f"region_currency must be a Steam currency id, got {region!r}")
    state.new_market, state.region_currency = mode, region
    return web.json_response({"mode": mode, "region_currency": region})


async def reset(request: web.Request) -> web.Response:
    """Forget stats, limiter state and faults; `{"market": true}` also reopens the market."""
    state = _state(request)
    try:
        body = await _body(request)
    except AdminRequestError as exc:
        return _bad(str(exc))
    state.stats.reset()
    state.limiter.reset()
    state.faults.clear()
    if isinstance(body, dict) and body.get("market"):
        cfg = state.config
        state.market = Market(
            state.catalogue,
            seed=cfg.seed,
            clock=state.clock,
            tick_seconds=cfg.tick_seconds,
            book_cap=cfg.book_cap,
        )
    return web.json_response({"reset": True})


async def catalogue(request: web.Request) -> web.Response:
    """The items on offer, optionally for one appid: name, appid, item_nameid, base price."""
    state = _state(request)
    appid = request.query.get("appid")
    items = [
        {
            "appid": it.appid,
            "market_hash_name": it.market_hash_name,
            "item_nameid": it.item_nameid,
            "daily_volume": it.daily_volume,
            "base_price_usd_cents": it.base_price,
        }
        for it in state.catalogue
        if appid is None or str(it.appid) == appid
    ]
    return web.json_response({"items": items})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/__sim/health", health)
    r.add_get("/__sim/stats", stats)
    r.add_get("/__sim/faults", faults_get)
    r.add_post("/__sim/faults", faults_post)
    r.add_delete("/__sim/faults", faults_delete)
    r.add_get("/__sim/limits", limits_get)
    r.add_post("/__sim/limits", limits_post)
    r.add_post("/__sim/latency", latency_post)
    r.add_post("/__sim/legacy", legacy_post)
    r.add_post("/__sim/new-market", new_market_post)
    r.add_post("/__sim/reset", reset)
    r.add_get("/__sim/catalogue", catalogue)
