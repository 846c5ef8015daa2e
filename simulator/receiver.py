"""A local webhook receiver that stands in for the chat services the notifier posts to.

Apprise's `json://` and `form://` plugins POST (or PUT) a small body to a URL (`jsons://`
sends the same over TLS, which this plain-HTTP stand-in does not serve). Tests, benchmarks
and `make run` point them here instead of at Discord or Slack, so that
every delivery is seen, counted and kept (`--record` appends one JSON line per request,
flushed at once, so a `kill -9` loses nothing), and so that the destination fails on
demand: an error status, a timeout, a slow answer, a 429 storm with `Retry-After`, or a
dropped connection. The failure is chosen at run time through `/_receiver/...` on the
same port; those admin requests are never recorded as deliveries.

In-process use: `run_receiver`. From another process: `python -m simulator.receiver`,
then `ReceiverControl(url)` to steer it and `read_records(file)` to count what it got.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any, Literal, get_args
from urllib.parse import parse_qsl, urlencode

import click
from aiohttp import web

from simulator.clock import Clock, system_clock
from simulator.server import serve_app

ReceiverMode = Literal["ok", "status", "timeout", "slow", "rate_limit", "drop"]
RECEIVER_MODES: tuple[ReceiverMode, ...] = get_args(ReceiverMode)
Scope = Literal["path", "all"]
ADMIN_PREFIX = "/_receiver/"
SLOW_DELAY_S = 2.0  # below Apprise's default 4 s read timeout: slow, yet delivered
MEMORY_RECORDS = 100_000  # records kept for `/_receiver/received`; the file keeps all
MAX_BODY = 32 * 1024 * 1024  # room for Apprise's base64 attachments, as chat services allow
_COMMON_KEYS = frozenset({"mode", "paths", "count", "seconds"})
_MODE_KEYS: dict[ReceiverMode, frozenset[str]] = {
    "ok": frozenset({"delay"}),
    "status": frozenset({"status"}),
    "timeout": frozenset({"hold"}),
    "slow": frozenset({"delay"}),
    "rate_limit": frozenset({"limit", "per", "scope", "retry_after"}),
    "drop": frozenset(),
}


class ModeSpecError(ValueError):
    """Raised when a mode spec cannot be understood; `field` names the offending key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"bad receiver mode: {field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ModeRule:
    """How the receiver answers, where (`paths` prefixes) and for how long (`count`, `seconds`)."""

    mode: ReceiverMode = "ok"
    delay: float | None = None  # ok: None means the receiver's --delay; slow: SLOW_DELAY_S
    status: int = 500  # status: the error status to answer
    hold: float = 60.0  # timeout: seconds held before a 504
    limit: int = 0  # rate_limit: requests let through per `per` seconds
    per: float = 1.0
    scope: Scope = "path"  # rate_limit: one window per path, or one for all paths
    retry_after: float = 1.0
    paths: tuple[str, ...] | None = None  # None: every path; others are answered `ok`
    count: int | None = None  # the next N matching requests, then `ok`
    seconds: float | None = None  # this long from being set, then `ok`

    @classmethod
    def from_spec(cls, spec: Any) -> ModeRule:
        """Validate a JSON-like mapping, naming the first bad key; each mode takes its own keys."""
        if not isinstance(spec, dict):
            raise ModeSpecError("mode", "expected a JSON object with a 'mode' key")
        mode = spec.get("mode")
        if mode not in RECEIVER_MODES:
            raise ModeSpecError("mode", f"must be one of {', '.join(RECEIVER_MODES)}")
        allowed = _COMMON_KEYS | _MODE_KEYS[mode]
        values: dict[str, Any] = {"mode": mode}
        for key, value in spec.items():
            if key not in allowed:
                raise ModeSpecError(
                    str(key), f"not a key of mode {mode}: {', '.join(sorted(allowed))}"
                )
            if key != "mode":
                values[key] = _CHECKS[key](key, value)
        if mode == "rate_limit" and "limit" not in values:
            raise ModeSpecError("limit", "rate_limit needs a limit: requests per `per` seconds")
        return cls(**values)

    def to_spec(self) -> dict[str, Any]:
        """The keys that mean something for this mode, as `from_spec` takes them."""
        spec: dict[str, Any] = {"mode": self.mode}
        for key in sorted((_COMMON_KEYS | _MODE_KEYS[self.mode]) - {"mode"}):
            value = getattr(self, key)
            if value is not None:
                spec[key] = list(value) if isinstance(value, tuple) else value
        return spec

    def applies_to(self, path: str) -> bool:
        return self.paths is None or any(path.startswith(prefix) for prefix in self.paths)


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ModeSpecError(key, "must be a number of seconds, not negative")
    return float(value)


def _positive_seconds(key: str, value: Any) -> float:
    if _seconds(key, value) == 0:
        raise ModeSpecError(key, "must be more than 0 seconds")
    return float(value)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModeSpecError(key, "must be a positive integer")
    return value


def _error_status(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ModeSpecError(key, "must be an HTTP error status from 400 to 599")
    return value


def _scope(key: str, value: Any) -> Scope:
    if value == "path" or value == "all":
        return value
    raise ModeSpecError(key, "must be 'path' (a window per path) or 'all' (one window)")


def _paths(key: str, value: Any) -> tuple[str, ...]:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value:
        raise ModeSpecError(key, "must be a non-empty list of path prefixes")
    if not all(isinstance(prefix, str) and prefix.startswith("/") for prefix in value):
        raise ModeSpecError(key, "each prefix must be a string starting with '/'")
    return tuple(value)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "delay": _seconds,
    "hold": _seconds,
    "retry_after": _seconds,
    "per": _positive_seconds,
    "seconds": _positive_seconds,
    "limit": _positive_int,
    "count": _positive_int,
    "status": _error_status,
    "scope": _scope,
    "paths": _paths,
}


def parse_mode(text: str) -> ModeRule:
    """A rule from JSON or the short form `name[:key=value,...]` (paths joined by `+`)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return ModeRule.from_spec(json.loads(text))
        except ValueError as exc:
            if isinstance(exc, ModeSpecError):
                raise
            raise ModeSpecError("mode", f"not JSON: {exc}") from exc
    name, _, rest = text.partition(":")
    spec: dict[str, Any] = {"mode": name.strip()}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ModeSpecError(pair, "expected key=value")
        spec[key.strip()] = _short_value(key.strip(), value.strip())
    return ModeRule.from_spec(spec)


def _short_value(key: str, value: str) -> Any:
    if key == "paths":
        return value.split("+")
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records a `--record` file holds, in order; torn lines (a kill mid-write) are skipped."""
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def max_in_window(records: Iterable[Mapping[str, Any]], window: float, *, ok: bool = False) -> int:
    """The most requests one path received within any `window` seconds (`ok`: only 2xx answers).

    Two requests exactly `window` apart fall in different windows, as the rate limit counts them.
    """
    times: dict[str, list[float]] = {}
    for record in records:
        status = record.get("status")
        if not ok or (isinstance(status, int) and 200 <= status < 300):
            times.setdefault(record["path"], []).append(record["at"])
    busiest = 0
    for stamps in times.values():
        stamps.sort()
        first = 0
        for last, at in enumerate(stamps):
            while at - stamps[first] >= window:
                first += 1
            busiest = max(busiest, last - first + 1)
    return busiest


@dataclass(slots=True)
class ReceiverState:
    """What one receiver knows: its mode, its rate windows, and what it has received."""

    default_delay: float
    clock: Clock
    record_path: Path | None = None
    rule: ModeRule = field(default_factory=ModeRule)
    until: float | None = None
    left: int | None = None
    records: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MEMORY_RECORDS))
    windows: dict[str, deque[float]] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _file: IO[str] | None = None

    def set_rule(self, rule: ModeRule) -> None:
        """Put a rule in force from now; rate windows start afresh."""
        self.rule, self.windows = rule, {}
        self.until = self.clock() + rule.seconds if rule.seconds is not None else None
        self.left = rule.count

    def current(self) -> ModeRule:
        """The rule in force, falling back to `ok` once its count or seconds run out."""
        spent = self.left is not None and self.left <= 0
        if spent or (self.until is not None and self.clock() >= self.until):
            self.set_rule(ModeRule())
        return self.rule

    def choose(self, path: str) -> ModeRule:
        """The rule that answers a request on `path`; spends one of its `count`."""
        rule = self.current()
        if not rule.applies_to(path):
            return ModeRule()
        if self.left is not None:
            self.left -= 1
        return rule

    def admit(self, rule: ModeRule, path: str, now: float) -> bool:
        """Sliding window: let a request through if fewer than `limit` were let through lately."""
        window = self.windows.setdefault(path if rule.scope == "path" else "*", deque())
        while window and window[0] <= now - rule.per:
            window.popleft()
        if len(window) >= rule.limit:
            return False
        window.append(now)
        return True

    def open_record(self) -> None:
        if self.record_path is None:
            return
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.record_path.exists() and self.record_path.stat().st_size > 0:
            with open(self.record_path, "rb") as existing:
                existing.seek(-1, 2)
                torn = existing.read(1) != b"\n"
        self._file = open(self.record_path, "a", encoding="utf-8")
        if torn:  # a kill mid-write left half a line: seal it, so the next record is whole
            self._file.write("\n")
            self._file.flush()

    def close_record(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def keep(self, record: dict[str, Any]) -> None:
        """Hold a record in memory and append it to the file, flushed at once.

        The write is synchronous: one short line, and a record that waited on the loop
        could be lost to a kill the test itself sends.
        """
        self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            self._file.flush()

    def selected(self, prefix: str | None) -> list[dict[str, Any]]:
        return [r for r in self.records if prefix is None or r["path"].startswith(prefix)]

    async def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, but wake at once when the server begins to shut down."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
            except TimeoutError:
                pass


RECEIVER = web.AppKey("receiver_state", ReceiverState)


def create_receiver_app(
    *,
    delay: float = 0.0,
    record: Path | None = None,
    mode: ModeRule | None = None,
    clock: Clock = system_clock,
) -> web.Application:
    """A ready-to-run receiver; the record file opens when a runner starts it."""
    state = ReceiverState(default_delay=delay, clock=clock, record_path=record)
    state.set_rule(mode or ModeRule())
    app = web.Application(client_max_size=MAX_BODY)
    app[RECEIVER] = state
    app.router.add_get(ADMIN_PREFIX + "healthz", _healthz)
    app.router.add_get(ADMIN_PREFIX + "mode", _mode_get)
    app.router.add_post(ADMIN_PREFIX + "mode", _mode_post)
    app.router.add_get(ADMIN_PREFIX + "received", _received_get)
    app.router.add_delete(ADMIN_PREFIX + "received", _received_delete)
    app.router.add_get(ADMIN_PREFIX + "stats", _stats)
    for method in ("POST", "PUT", "PATCH"):
        app.router.add_route(method, "/{tail:.*}", _deliver)
    app.cleanup_ctx.append(_record_file)
    app.on_shutdown.append(_release_held)
    return app


async def _record_file(app: web.Application) -> AsyncIterator[None]:
    app[RECEIVER].open_record()
    yield
    app[RECEIVER].close_record()


async def _release_held(app: web.Application) -> None:
    """Wake requests held by `timeout`/`slow` so that stopping never waits on them."""
    app[RECEIVER].stopping.set()


async def _deliver(request: web.Request) -> web.StreamResponse:
    """One delivery: read and record it, and answer as the mode in force says."""
    state = request.app[RECEIVER]
    if request.path.startswith(ADMIN_PREFIX):
        raise web.HTTPNotFound()
    at = state.clock()
    record: dict[str, Any] = {
        "at": at,
        "method": request.method,
        "path": request.path,
        "status": None,  # None: no answer was sent (dropped, or the sender left first)
        "mode": "ok",
        "headers": {
            k: request.headers[k] for k in ("Content-Type", "User-Agent") if k in request.headers
        },
        "body": await _body(request),
    }
    rule = state.choose(request.path)
    record["mode"] = rule.mode
    if rule.mode == "drop":
        state.keep(record)
        return await _drop(request, state)
    try:
        response = await _answer(state, rule, request.path, at)
    except asyncio.CancelledError:  # the sender gave up first: keep what arrived, unanswered
        state.keep(record)
        raise
    record["status"] = response.status
    state.keep(record)
    return response


async def _answer(state: ReceiverState, rule: ModeRule, path: str, at: float) -> web.Response:
    """The answer `rule` gives (any mode but `drop`), after its wait."""
    if rule.mode == "status":
        return _error(rule.status)
    if rule.mode == "timeout":
        await state.wait(rule.hold)
        return _error(504)
    if rule.mode == "rate_limit" and not state.admit(rule, path, at):
        body = {"message": "You are being rate limited.", "retry_after": rule.retry_after}
        headers = {"Retry-After": str(math.ceil(rule.retry_after))}
        return web.json_response(
            {**body, "global": rule.scope == "all"}, status=429, headers=headers
        )
    if rule.mode == "slow":
        await state.wait(rule.delay if rule.delay is not None else SLOW_DELAY_S)
    else:
        await state.wait(rule.delay if rule.delay is not None else state.default_delay)
    return web.json_response({"ok": True})


def _error(status: int) -> web.Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return web.json_response({"message": f"{status}: {phrase}", "code": status}, status=status)


async def _drop(request: web.Request, state: ReceiverState) -> web.StreamResponse:
    """Close the connection with no answer; the sender sees a transport error.

    `serve_app`'s runner cancels the handler once the connection is gone, so the response
    below is only reached at shutdown, and goes nowhere.
    """
    if request.transport is not None:
        request.transport.close()
    await state.stopping.wait()
    return web.Response(status=503)


async def _body(request: web.Request) -> Any:
    """A JSON object or array as parsed, a form as a dict, anything else as text."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        return {
            key: value if isinstance(value, str) else {"filename": getattr(value, "filename", "")}
            for key, value in form.items()
        }
    text = (await request.read()).decode(request.charset or "utf-8", errors="replace")
    if text.lstrip()[:1] in ("{", "["):  # JSON whatever the label (`curl -d` says "form")
        try:
            return json.loads(text)
        except ValueError:
            pass
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    return text


def _bad(field: str, reason: str) -> web.Response:
    return web.json_response({"error": f"{field}: {reason}", "field": field}, status=400)


def _mode_view(state: ReceiverState) -> dict[str, Any]:
    rule = state.current()
    until = None if state.until is None else max(0.0, state.until - state.clock())
    return {"mode": rule.to_spec(), "count_left": state.left, "seconds_left": until}


async def _healthz(request: web.Request) -> web.Response:
    state = request.app[RECEIVER]
    return web.json_response({"ok": True, "mode": state.current().mode, "held": len(state.records)})


async def _mode_get(request: web.Request) -> web.Response:
    return web.json_response(_mode_view(request.app[RECEIVER]))


async def _mode_post(request: web.Request) -> web.Response:
    state = request.app[RECEIVER]
    try:
        spec = json.loads(await request.text() or "null")
    except ValueError as exc:
        return _bad("body", f"not JSON: {exc}")
    try:
        rule = ModeRule.from_spec(spec)
    except ModeSpecError as exc:
        return _bad(exc.field, exc.reason)
    state.set_rule(rule)
    return web.json_response(_mode_view(state))


async def _received_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[RECEIVER].selected(request.query.get("path")))


async def _received_delete(request: web.Request) -> web.Response:
    state = request.app[RECEIVER]
    cleared = len(state.records)
    state.records.clear()
    return web.json_response({"cleared": cleared})


async def _stats(request: web.Request) -> web.Response:
    """Counts by answer status and path; the busiest `?window=` seconds on any one path."""
    try:
        window = float(request.query.get("window", "1"))
    except ValueError:
        return _bad("window", "must be a number of seconds")
    if window <= 0:
        return _bad("window", "must be positive")
    records = request.app[RECEIVER].selected(request.query.get("path"))
    statuses = Counter("none" if r["status"] is None else str(r["status"]) for r in records)
    return web.json_response(
        {
            "total": len(records),
            "by_status": dict(statuses),
            "by_path": dict(Counter(r["path"] for r in records)),
            "window": window,
            "max_in_window": max_in_window(records, window),
            "max_ok_in_window": max_in_window(records, window, ok=True),
        }
    )


@asynccontextmanager
async def run_receiver(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    delay: float = 0.0,
    record: Path | None = None,
    mode: ModeRule | None = None,
    clock: Clock = system_clock,
) -> AsyncIterator[str]:
    """Serve a receiver on a free loopback port and yield its base URL, e.g. for a test."""
    app = create_receiver_app(delay=delay, record=record, mode=mode, clock=clock)
    async with serve_app(app, host=host, port=port) as url:
        yield url


_EPILOG = """\b
Run-time control on the same port (JSON, never recorded):
  POST /_receiver/mode          {"mode": "status", "status": 503, "count": 3}
                                modes: ok{delay} status{status} timeout{hold}
                                slow{delay} rate_limit{limit,per,scope,retry_after}
                                drop; any mode: paths, count, seconds
  GET  /_receiver/mode          the mode in force
  GET  /_receiver/received      records held in memory (?path=PREFIX)
  DEL  /_receiver/received      forget them (the --record file stays)
  GET  /_receiver/stats         counts by status; ?window=1 adds max_in_window
  GET  /_receiver/healthz
"""


@click.command("receiver", epilog=_EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port to listen on (0: any free).")
@click.option(
    "--delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds before a healthy 200.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append every request as a JSON line to this file, flushed at once.",
)
@click.option(
    "--mode",
    "mode",
    default=None,
    metavar="SPEC",
    help="Starting mode: JSON, or name[:key=value,...], e.g. 'status:status=503,count=2' or "
    f"'rate_limit:limit=5,per=1,paths=/a+/b'. Modes: {', '.join(RECEIVER_MODES)}.",
)
def receiver(host: str, port: int, delay: float, record: Path | None, mode: str | None) -> None:
    """Run a local webhook receiver standing in for chat services; it fails on demand."""
    try:
        rule = parse_mode(mode) if mode is not None else ModeRule()
    except ModeSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--mode") from exc
    asyncio.run(_serve(host=host, port=port, delay=delay, record=record, rule=rule))


async def _serve(
    *, host: str, port: int, delay: float, record: Path | None, rule: ModeRule
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_receiver(host=host, port=port, delay=delay, record=record, mode=rule) as url:
        click.echo(f"receiver serving on {url}")  # the one stdout line; callers parse the URL
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    click.echo("receiver stopped", err=True)


class ReceiverAdminError(RuntimeError):
    """Raised when the receiver's admin API refuses a request; `field` names a bad mode key."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        super().__init__(f"receiver admin answered {status}: {reason}")
        self.status = status
        self.reason = reason
        self.field = field


class ReceiverControl:
    """Steer a running receiver from synchronous code (tests, benchmarks) with the stdlib only."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Loopback is never reached through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def set_mode(self, **spec: Any) -> dict[str, Any]:
        """Put a mode in force, e.g. `set_mode(mode="status", status=503, count=2)`."""
        view: dict[str, Any] = self._call("POST", "mode", body=spec)
        return view

    def mode(self) -> dict[str, Any]:
        view: dict[str, Any] = self._call("GET", "mode")
        return view

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        """The records held in memory, oldest first; `path` keeps those under that prefix."""
        records: list[dict[str, Any]] = self._call("GET", "received", query={"path": path})
        return records

    def clear(self) -> int:
        """Forget the records held in memory (not the file); how many there were."""
        cleared: int = self._call("DELETE", "received")["cleared"]
        return cleared

    def stats(self, window: float, path: str | None = None) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "stats", query={"window": window, "path": path})
        return stats

    def healthz(self) -> dict[str, Any]:
        health: dict[str, Any] = self._call("GET", "healthz")
        return health

    def wait_received(
        self, count: int, *, path: str | None = None, within: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` records are held, or raise TimeoutError after `within`."""
        deadline = time.monotonic() + within
        while True:
            records = self.received(path)
            if len(records) >= count:
                return records
            if time.monotonic() >= deadline:
                raise TimeoutError(f"receiver holds {len(records)} records, expected {count}")
            time.sleep(0.02)

    def _call(
        self,
        method: str,
        name: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        url = f"{self.base_url}{ADMIN_PREFIX}{name}"
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read())
            except ValueError:
                detail = {}
            reason = detail.get("error", exc.reason) if isinstance(detail, dict) else exc.reason
            field = detail.get("field") if isinstance(detail, dict) else None
            raise ReceiverAdminError(exc.code, str(reason), field) from exc


if __name__ == "__main__":
    receiver()
