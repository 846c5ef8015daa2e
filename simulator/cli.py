"""`steamwatch sim`: run the Steam market simulator (and optionally local proxies) until stopped.

The lead mounts the `sim` click command under the main CLI; `python -m simulator` runs
it alone. It prints one status line on start and one line per proxy, and stops cleanly
on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
from contextlib import AsyncExitStack
from typing import Any

import click

from simulator.app import create_app
from simulator.config import (
    GROUP_OF,
    Group,
    Latency,
    LegacyMode,
    LimitsConfig,
    SimulatorConfig,
    WindowLimit,
)
from simulator.faults import FAULT_MODES, FaultRule, FaultSpecError
from simulator.proxy import local_proxies
from simulator.server import serve_app

_GROUPS: list[Group] = sorted(set(GROUP_OF.values()))
_LEGACY: dict[str, LegacyMode] = {"on": "on", "html": "html", "redirect": "redirect"}


def parse_fault(text: str) -> dict[str, Any]:
    """A fault from JSON or the short form `mode[:key=value,...]` (endpoints joined by `+`)."""
    text = text.strip()
    if text.startswith("{"):
        spec = json.loads(text)
    else:
        mode, _, rest = text.partition(":")
        spec = {"mode": mode.strip()}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = pair.partition("=")
            if not sep:
                raise FaultSpecError(text, f"expected key=value, got {pair!r}")
            spec[key.strip()] = _value(key.strip(), value.strip())
    FaultRule.from_spec(spec)  # validate now, so a typo fails before the server starts
    return dict(spec)


def _value(key: str, value: str) -> Any:
    if key == "endpoints":
        return value.split("+")
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def parse_limit(text: str) -> tuple[Group, WindowLimit]:
    """`GROUP=N/SECONDS[/distinct]`, e.g. `priceoverview=20/60` or `histogram=10/3600/distinct`."""
    name, sep, rule = text.partition("=")
    parts = rule.split("/")
    group = next((g for g in _GROUPS if g == name), None)
    distinct = parts[2:] == ["distinct"]
    if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and not distinct) or not group:
        raise click.BadParameter(
            f"expected GROUP=N/SECONDS[/distinct] with GROUP in {', '.join(_GROUPS)}"
        )
    try:
        return group, WindowLimit(int(parts[0]), float(parts[1]), distinct)
    except ValueError as exc:
        raise click.BadParameter(f"bad limit {text!r}: {exc}") from exc


_EPILOG = """\b
Run-time control (JSON, never rate limited):
  GET  /__sim/stats?window=60    counts per client and endpoint, busiest window
  POST /__sim/faults             {"mode": "http_5xx", "probability": 0.1, ...}
  DEL  /__sim/faults             clear every fault
  POST /__sim/limits             {"windows": {"priceoverview": {"limit": 20,
                                 "window_s": 60}}, "enabled": true, "scale": 0.1}
  POST /__sim/latency            {"mean_ms": 120, "jitter_ms": 40}
  POST /__sim/legacy             {"mode": "on" | "html" | "redirect"}
  POST /__sim/new-market         {"mode": "on" | "route_changed",
                                 "region_currency": 3}
  POST /__sim/reset              forget stats, limits and faults
  GET  /__sim/catalogue          the items on offer, with item_nameids
"""


@click.command("sim", epilog=_EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8780, show_default=True, help="Port to listen on (0: any free).")
@click.option(
    "--proxies",
    default=0,
    show_default=True,
    help="Also start N local forward proxies, each seen as a different client.",
)
@click.option("--proxy-user", default=None, help="Require this Basic proxy username.")
@click.option("--proxy-password", default=None, help="Require this Basic proxy password.")
@click.option(
    "--proxy-first-source",
    default="127.0.0.2",
    show_default=True,
    help="Source address of the first proxy's upstream connections; the rest follow.",
)
@click.option("--seed", default=730, show_default=True, help="Seed of the market's prices.")
@click.option(
    "--tick-seconds", default=60.0, show_default=True, help="How often prices and listings change."
)
@click.option(
    "--legacy",
    type=click.Choice(["on", "html", "redirect"]),
    default="on",
    show_default=True,
    help="Old endpoints work, or answer as if Steam turned them off.",
)
@click.option(
    "--new-market",
    type=click.Choice(["on", "route_changed"]),
    default="on",
    show_default=True,
    help="The new market's routes answer, or answer with the market page as if Steam moved them.",
)
@click.option(
    "--region-currency",
    type=click.IntRange(1, 47),
    default=1,
    show_default=True,
    help="The currency id the new market prices in (Steam uses the caller's region).",
)
@click.option("--no-limits", is_flag=True, help="Turn per-client rate limits off.")
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="GROUP=N/SECONDS[/distinct]",
    help=f"Override a window limit; groups: {', '.join(_GROUPS)}; '/distinct' counts "
    "different items rather than requests. Repeatable.",
)
@click.option(
    "--limit-scale",
    default=1.0,
    show_default=True,
    help="Multiply every limit window and ban duration (0.01 for quick tests).",
)
@click.option(
    "--strikes",
    default=10,
    show_default=True,
    help="429s within the strike window that earn a ban.",
)
@click.option(
    "--ban-ladder",
    default="300,3600,21600,86400",
    show_default=True,
    help="Ban durations in seconds, longer each time; the last repeats.",
)
@click.option("--latency-ms", default=0.0, show_default=True, help="Mean added latency.")
@click.option("--jitter-ms", default=0.0, show_default=True, help="Latency spread (uniform ±).")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SPEC",
    help="Inject a fault: JSON, or mode[:key=value,...], e.g. "
    "'http_5xx:probability=0.1,endpoints=priceoverview+histogram'. Modes: "
    f"{', '.join(FAULT_MODES)}. Repeatable; change at run time via "
    "POST /__sim/faults.",
)
def sim(
    host: str,
    port: int,
    proxies: int,
    proxy_user: str | None,
    proxy_password: str | None,
    proxy_first_source: str,
    seed: int,
    tick_seconds: float,
    legacy: str,
    new_market: str,
    region_currency: int,
    no_limits: bool,
    limits: tuple[str, ...],
    limit_scale: float,
    strikes: int,
    ban_ladder: str,
    latency_ms: float,
    jitter_ms: float,
    faults: tuple[str, ...],
) -> None:
    """Run a local Steam Community Market simulator that speaks Steam's real formats."""
    try:
        fault_specs = tuple(parse_fault(text) for text in faults)
        ladder = tuple(float(step) for step in ban_ladder.split(",") if step.strip())
    except (ValueError, FaultSpecError) as exc:
        raise click.BadParameter(str(exc)) from exc
    windows = dict(LimitsConfig().windows)
    for text in limits:
        group, rule = parse_limit(text)
        windows[group] = rule
    limits_config = LimitsConfig(
        enabled=not no_limits, windows=windows, strikes=strikes, ban_ladder_s=ladder
    ).scaled(limit_scale)
    config = SimulatorConfig(
        seed=seed,
        legacy=_LEGACY[legacy],
        new_market="route_changed" if new_market == "route_changed" else "on",
        region_currency=region_currency,
        limits=limits_config,
        latency=Latency(latency_ms, jitter_ms),
        faults=fault_specs,
        tick_seconds=tick_seconds,
    )
    asyncio.run(
        _serve(
            config,
            host=host,
            port=port,
            proxies=proxies,
            user=proxy_user,
            password=proxy_password,
            first_source=proxy_first_source,
        )
    )


async def _serve(
    config: SimulatorConfig,
    *,
    host: str,
    port: int,
    proxies: int,
    user: str | None,
    password: str | None,
    first_source: str,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(config=config)
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve_app(app, host=host, port=port))
        started = await stack.enter_async_context(
            local_proxies(proxies, first_source=first_source, username=user, password=password)
        )
        limits = "on" if config.limits.enabled else "off"
        click.echo(
            f"steamwatch sim: serving {url} (seed {config.seed}, legacy={config.legacy}, "
            f"limits {limits}, {len(config.faults)} faults, {proxies} proxies); "
            "Ctrl-C to stop",
            err=False,
        )
        for proxy in started:
            click.echo(f"proxy {proxy.url} exits from {proxy.source_address}")
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    click.echo("steamwatch sim: stopped")
