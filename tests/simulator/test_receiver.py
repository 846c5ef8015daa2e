"""The webhook receiver: a real server on loopback that stands in for chat services.

Given a receiver in some mode, when a real client (aiohttp, urllib, or Apprise itself)
posts to it, I expect the answer that mode promises and a record of what arrived.
"""

from __future__ import annotations

import asyncio
import json
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from simulator.clock import ManualClock
from simulator.receiver import (
    ModeRule,
    ModeSpecError,
    ReceiverAdminError,
    ReceiverControl,
    max_in_window,
    parse_mode,
    read_records,
    receiver,
    run_receiver,
)
from tests.fixtures.waiting import until

ROOT = Path(__file__).resolve().parents[2]
STARTUP = re.compile(r"receiver serving on (http://127\.0\.0\.1:\d+)\n")
NOTICE = {"version": "1.0", "title": "AK-47 | Redline", "message": "below 10.00", "type": "info"}
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- in-process receiver, aiohttp client -------------------------------------------------


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with run_receiver() as base:
        yield base


async def _send(
    session: aiohttp.ClientSession, url: str, path: str = "/hook", **kwargs: Any
) -> tuple[int, Any, Any]:
    method = kwargs.pop("method", "POST")
    kwargs.setdefault("json", NOTICE)
    async with session.request(method, url + path, **kwargs) as response:
        return response.status, await response.json(), response.headers


async def _admin(
    session: aiohttp.ClientSession, method: str, url: str, name: str, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    async with session.request(method, f"{url}/_receiver/{name}", data=data) as response:
        return response.status, await response.json()


async def _set_mode(session: aiohttp.ClientSession, url: str, **spec: Any) -> None:
    status, body = await _admin(session, "POST", url, "mode", spec)
    assert status == 200, body


async def _received(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    status, records = await _admin(session, "GET", url, "received")
    assert status == 200
    return list(records)


async def test_ok_answers_200_after_the_delay_and_records_the_delivery(
    session: aiohttp.ClientSession,
) -> None:
    async with run_receiver(delay=0.05) as url:
        started = time.monotonic()
        status, body, _ = await _send(session, url, headers={"User-Agent": "Apprise"})
        assert time.monotonic() - started >= 0.05
        assert (status, body) == (200, {"ok": True})
        assert (await _send(session, url, "/put/here", method="PUT"))[0] == 200
        assert (await _admin(session, "GET", url, "healthz"))[0] == 200

        first, second = await _received(session, url)  # admin calls are not deliveries
    assert first["body"] == NOTICE
    assert first["headers"] == {"Content-Type": "application/json", "User-Agent": "Apprise"}
    assert (first["method"], first["path"], first["status"], first["mode"]) == (
        "POST",
        "/hook",
        200,
        "ok",
    )
    assert abs(first["at"] - time.time()) < 5
    assert (second["method"], second["path"]) == ("PUT", "/put/here")


async def test_text_and_form_bodies_are_recorded_as_they_came(
    session: aiohttp.ClientSession, url: str
) -> None:
    async with session.post(url + "/text", data="plain words") as response:
        assert response.status == 200
    async with session.post(url + "/form", data={"title": "t", "message": "m"}) as response:
        assert response.status == 200
    curl_style = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` says
    async with session.post(url + "/curl", data='{"a": 1}', headers=curl_style) as response:
        assert response.status == 200
    form = aiohttp.FormData({"title": "t"})
    form.add_field("file", b"\x00\x01", filename="chart.png", content_type="image/png")
    async with session.post(url + "/multipart", data=form) as response:
        assert response.status == 200

    bodies = [record["body"] for record in await _received(session, url)]
    assert bodies == [
        "plain words",
        {"title": "t", "message": "m"},
        {"a": 1},
        {"title": "t", "file": {"filename": "chart.png"}},
    ]


@pytest.mark.parametrize("code", [503, 401, 404])
async def test_status_mode_answers_that_error_with_a_json_body(
    session: aiohttp.ClientSession, url: str, code: int
) -> None:
    await _set_mode(session, url, mode="status", status=code)
    status, body, _ = await _send(session, url)
    assert status == code
    assert body["code"] == code
    assert (await _received(session, url))[0]["status"] == code


async def test_rate_limit_answers_429_with_retry_after_above_the_limit_per_path(
    session: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    async with run_receiver(clock=clock) as url:
        await _set_mode(session, url, mode="rate_limit", limit=3, per=1.0, retry_after=2)
        answers = await asyncio.gather(*(_send(session, url, "/a") for _ in range(6)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200, 200, 200, 429, 429, 429]
        limited = [(body, headers) for status, body, headers in answers if status == 429]
        assert all(h["Retry-After"] == "2" for _, h in limited)
        assert limited[0][0]["message"] == "You are being rate limited."
        assert limited[0][0]["retry_after"] == 2.0
        assert (await _send(session, url, "/b"))[0] == 200  # each path has its own window

        status, stats = await _admin(session, "GET", url, "stats?window=1")
        assert status == 200
        assert (stats["max_in_window"], stats["max_ok_in_window"]) == (6, 3)
        assert stats["by_status"] == {"200": 4, "429": 3}

        clock.advance(0.999)
        assert (await _send(session, url, "/a"))[0] == 429
        clock.advance(0.001)  # the first three leave the window
        assert (await _send(session, url, "/a"))[0] == 200


async def test_rate_limit_over_all_paths_counts_them_together(
    session: aiohttp.ClientSession, url: str
) -> None:
    await _set_mode(session, url, mode="rate_limit", limit=2, scope="all")
    statuses = [(await _send(session, url, path))[0] for path in ("/a", "/b", "/c")]
    assert statuses == [200, 200, 429]
    assert (await _send(session, url, "/d"))[1]["global"] is True


async def test_count_applies_to_the_next_n_requests_then_ok(
    session: aiohttp.ClientSession, url: str
) -> None:
    await _set_mode(session, url, mode="status", status=500, count=2)
    statuses = [(await _send(session, url))[0] for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await _admin(session, "GET", url, "mode"))[1]["mode"] == {"mode": "ok"}


async def test_seconds_apply_for_that_long_then_ok(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with run_receiver(clock=clock) as url:
        await _set_mode(session, url, mode="status", status=503, seconds=30)
        assert (await _send(session, url))[0] == 503
        assert (await _admin(session, "GET", url, "mode"))[1]["seconds_left"] == 30
        clock.advance(30)
        assert (await _send(session, url))[0] == 200


async def test_paths_narrow_the_mode_and_other_paths_spend_no_count(
    session: aiohttp.ClientSession, url: str
) -> None:
    await _set_mode(session, url, mode="status", status=503, paths=["/discord"], count=1)
    assert (await _send(session, url, "/slack"))[0] == 200
    assert (await _send(session, url, "/discord/123"))[0] == 503
    assert (await _send(session, url, "/discord/123"))[0] == 200


async def test_drop_closes_the_connection_without_an_answer(
    session: aiohttp.ClientSession, url: str
) -> None:
    await _set_mode(session, url, mode="drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _send(session, url)
    [record] = await _received(session, url)
    assert (record["mode"], record["status"], record["body"]) == ("drop", None, NOTICE)


async def test_timeout_holds_past_the_senders_patience_then_answers_504(
    session: aiohttp.ClientSession, url: str
) -> None:
    await _set_mode(session, url, mode="timeout", hold=30)
    with pytest.raises(asyncio.TimeoutError):
        await _send(session, url, timeout=aiohttp.ClientTimeout(total=0.2))

    async def kept_unanswered() -> bool:
        records = await _received(session, url)
        return [(r["mode"], r["status"]) for r in records] == [("timeout", None)]

    assert await until(kept_unanswered, within=5, every=0.05)
    await _set_mode(session, url, mode="timeout", hold=0.05)
    assert (await _send(session, url))[0] == 504


async def test_slow_answers_200_after_its_delay(session: aiohttp.ClientSession, url: str) -> None:
    await _set_mode(session, url, mode="slow", delay=0.3)
    started = time.monotonic()
    assert (await _send(session, url))[0] == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"mode": "explode"}, "mode"),
        ({"mode": "status", "status": 200}, "status"),
        ({"mode": "ok", "status": 500}, "status"),
        ({"mode": "rate_limit"}, "limit"),
        ({"mode": "rate_limit", "limit": 0}, "limit"),
        ({"mode": "rate_limit", "limit": 5, "scope": "world"}, "scope"),
        ({"mode": "slow", "delay": -1}, "delay"),
        ({"mode": "drop", "paths": ["discord"]}, "paths"),
        ({"mode": "drop", "count": 1.5}, "count"),
        ({"mode": "drop", "seconds": 0}, "seconds"),
        ("{not json", "body"),
        ([], "mode"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_a_bad_mode_is_refused_naming_the_field_and_changes_nothing(
    session: aiohttp.ClientSession, url: str, spec: Any, field: str
) -> None:
    await _set_mode(session, url, mode="status", status=503)
    status, body = await _admin(session, "POST", url, "mode", spec)
    assert (status, body["field"]) == (400, field)
    assert field in body["error"]
    assert (await _admin(session, "GET", url, "mode"))[1]["mode"] == {
        "mode": "status",
        "status": 503,
    }


async def test_clearing_forgets_the_records_held_in_memory(
    session: aiohttp.ClientSession, url: str
) -> None:
    for path in ("/a/1", "/a/2", "/b"):
        await _send(session, url, path)
    status, under_a = await _admin(session, "GET", url, "received?path=/a/")
    assert [r["path"] for r in under_a] == ["/a/1", "/a/2"]
    assert (await _admin(session, "DELETE", url, "received"))[1] == {"cleared": 3}
    assert await _received(session, url) == []


# --- pure parts ---------------------------------------------------------------------------


def test_max_in_window_counts_the_busiest_window_on_one_path() -> None:
    records = [
        {"path": "/a", "at": at, "status": status}
        for at, status in [(0.0, 200), (0.5, 429), (0.9, 200), (1.0, 200), (1.2, 200)]
    ] + [{"path": "/b", "at": 0.1, "status": 200}]
    assert max_in_window(records, 1.0) == 4  # 0.5, 0.9, 1.0, 1.2; 0.0 and 1.0 are 1 s apart
    assert max_in_window(records, 1.0, ok=True) == 3
    assert max_in_window(records, 0.05) == 1


def test_parse_mode_reads_json_and_the_short_form() -> None:
    assert parse_mode("rate_limit:limit=5,per=0.5,paths=/a+/b") == ModeRule(
        mode="rate_limit", limit=5, per=0.5, paths=("/a", "/b")
    )
    assert parse_mode('{"mode": "timeout", "hold": 3}') == ModeRule(mode="timeout", hold=3.0)
    with pytest.raises(ModeSpecError) as caught:
        parse_mode("status:statu=500")
    assert caught.value.field == "statu"


def test_read_records_skips_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"path": "/a", "at": 1.0}\n{"path": "/b", "at": 2.0}\n{"path": "/c", "a')
    assert [r["path"] for r in read_records(path)] == ["/a", "/b"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("status:statu=500", "statu"),
        ("explode", "mode"),
        ('{"mode": "rate_limit"}', "limit"),
        ("status:status=200", "status"),
        ("{broken", "not JSON"),
    ],
)
def test_the_command_refuses_a_bad_mode_before_serving(text: str, named: str) -> None:
    result = CliRunner().invoke(receiver, ["--mode", text])
    assert result.exit_code == 2
    assert "--mode" in result.output and named in result.output


# --- the receiver as a process, steered from synchronous code -----------------------------


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`python -m simulator.receiver --port 0 ARGS`, and the URL from its one line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.receiver", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    line = process.stdout.readline() if ready else ""
    match = STARTUP.fullmatch(line)
    if match is None:
        process.kill()
        raise AssertionError(f"no startup line, got {line!r}: {process.communicate()[1]}")
    return process, match.group(1)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM stops it cleanly: exit 0, and nothing more on stdout than the startup line."""
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert (process.returncode, out) == (0, ""), err


def _post(url: str, body: Any = NOTICE) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    process, base = _start("--delay", "0.01")
    try:
        yield base
    finally:
        _stop(process)


@pytest.fixture
def control(served: str) -> ReceiverControl:
    control = ReceiverControl(served)
    control.set_mode(mode="ok")
    control.clear()
    return control


def test_the_record_file_survives_sigkill_and_a_restart(tmp_path: Path) -> None:
    record = tmp_path / "deliveries.jsonl"
    process, base = _start("--record", str(record))
    try:
        assert _post(base + "/hook/1") == 200
        assert _post(base + "/hook/2", {"title": "second"}) == 200
        assert [r["path"] for r in read_records(record)] == ["/hook/1", "/hook/2"]
    finally:
        process.kill()
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    with record.open("a") as file:  # as if the kill had landed mid-write
        file.write('{"at": 17')

    process, base = _start("--record", str(record), "--mode", "status:status=503")
    try:
        assert _post(base + "/hook/3") == 503
    finally:
        _stop(process)
    records = read_records(record)
    assert [(r["path"], r["status"]) for r in records] == [
        ("/hook/1", 200),
        ("/hook/2", 200),
        ("/hook/3", 503),
    ]
    assert records[0]["body"] == NOTICE


def test_control_steers_a_running_receiver(control: ReceiverControl) -> None:
    assert control.set_mode(mode="status", status=401, count=1)["count_left"] == 1
    assert [_post(control.base_url + "/hook") for _ in range(2)] == [401, 200]
    assert [r["status"] for r in control.wait_received(2, path="/hook")] == [401, 200]
    stats = control.stats(1.0)
    assert (stats["total"], stats["by_status"], stats["max_in_window"]) == (
        2,
        {"401": 1, "200": 1},
        2,
    )
    with pytest.raises(ReceiverAdminError) as caught:
        control.set_mode(mode="rate_limit", limit=-1)
    assert (caught.value.status, caught.value.field) == (400, "limit")
    assert control.mode()["mode"] == {"mode": "ok"}
    assert control.clear() == 2
    assert control.received() == []


def test_apprise_json_and_form_notifications_arrive_as_sent(control: ReceiverControl) -> None:
    apprise = pytest.importorskip("apprise")
    port = control.base_url.rsplit(":", 1)[1]
    notifier = apprise.Apprise()
    assert notifier.add(f"json://127.0.0.1:{port}/hook")
    assert notifier.notify(title="AK-47 | Redline", body="below 10.00")  # a result, truthy
    [record] = control.wait_received(1, path="/hook")
    assert (record["method"], record["status"], record["headers"]["User-Agent"]) == (
        "POST",
        200,
        "Apprise",
    )
    assert record["body"]["title"] == "AK-47 | Redline"
    assert record["body"]["message"] == "below 10.00"
    assert record["body"]["type"] == "info"

    control.set_mode(mode="status", status=503)
    failing = apprise.Apprise()
    assert failing.add(f"form://127.0.0.1:{port}/form")
    assert not failing.notify(title="t", body="b")
    [record] = control.wait_received(1, path="/form")
    assert (record["status"], record["body"]["message"]) == (503, "b")


def test_the_module_refuses_a_bad_mode_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator.receiver", "--mode", "explode"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "--mode" in done.stderr and "mode: must be one of ok, status" in done.stderr
