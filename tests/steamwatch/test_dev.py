"""`steamwatch dev` (what `make run` calls), as a real process tree with embedded stores."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import requests

from simulator.receiver import read_records

SECRET = "hunter2-very-secret"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    env.update(STEAMWATCH_LOG_FORMAT="json", **extra)
    return env


class Output:
    """Lines of a child's stdout+stderr, read on a thread so waits can have deadlines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> bool:
        if any(text in line for line in self.lines):
            return True
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.lines.append(line)
            if text in line:
                return True
        return False

    def drain(self, timeout: float) -> str:
        self.wait_for("\0never\0", timeout)
        return "".join(self.lines)


def _json_lines(text: str) -> list[dict[str, object]]:
    entries = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def _stop_processes_in(home: Path) -> None:
    """Terminate every process whose command line or working folder lies under ``home``."""
    import psutil

    for proc in psutil.process_iter(["cmdline", "cwd"]):
        where = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if str(home) in where:
            proc.terminate()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_dev_runs_the_whole_system_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """`make run`: ready, demo watches checked, events and status shown, Ctrl-C within 10 s."""
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "steamwatch", "dev"],
        env=_env(STEAMWATCH_HOME=str(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        assert output.wait_for("steamwatch ready", timeout=120), "".join(output.lines)
        started = _json_lines("".join(output.lines))
        pids = {e["service"]: e["pid"] for e in started if e.get("event") == "service started"}
        pids["simulator"] = next(e["pid"] for e in started if e.get("event") == "simulator started")
        pids["receiver"] = next(
            e["pid"] for e in started if e.get("event") == "webhook receiver started"
        )
        assert set(pids) == {
            "simulator",
            "receiver",
            "scheduler",
            "fetcher",
            "publisher",
            "watchdog",
            "notifier",
            "api",
        }
        assert all(_alive(pid) for pid in pids.values())
        assert (home / "postgres" / "postmaster.pid").exists()
        assert any(e.get("event") == "simulator started" for e in started)
        assert any(e.get("event") == "demo watches added" and e.get("count") == 20 for e in started)
        # The live feed and the status line: demo watches are checked and alert.
        assert output.wait_for("event  ", timeout=90), "".join(output.lines)[-3000:]
        assert output.wait_for("status: ", timeout=30)
        assert any(e.get("event") == "demo subscription added" for e in started)
        # ...and each alert arrives at the local webhook receiver as a delivered notification.
        assert output.wait_for("delivered to json://127.0.0.1:", timeout=60), "".join(output.lines)[
            -3000:
        ]
        [delivered] = [x for x in output.lines if "delivered to json://" in x][:1]
        assert re.search(r"notify  \w+ .+ delivered to json://127\.0\.0\.1:\d+/demo ", delivered)
        records = read_records(home / "received.jsonl")
        assert records and records[0]["path"] == "/demo" and records[0]["status"] == 200
        assert "steamcommunity.com/market/listings/" in records[0]["body"]["message"]
        tail = subprocess.run(
            [sys.executable, "-m", "steamwatch", "tail", "--from-start", "--count", "1", "--json"],
            env=_env(STEAMWATCH_HOME=str(home)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert tail.returncode == 0, tail.stderr
        assert json.loads(tail.stdout)["schema"] == 1
        # The banner says where everything is; `steamwatch env` gives it to other terminals.
        banner = "".join(output.lines)
        assert "notifications  the demo's alerts go to the local webhook receiver" in banner
        for service in ("scheduler", "fetcher", "publisher", "watchdog", "notifier", "api"):
            assert re.search(
                rf"  {service} +http://127\.0\.0\.1:\d+/metrics .*/healthz .*/readyz", banner
            )
        # The API, with a token for the demo owner kept (not printed) for the banner's curl.
        token_file = home / "api-token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        assert token not in banner
        [api_base] = re.findall(r"HTTP API  (http://127\.0\.0\.1:\d+)/docs", banner)
        assert f"Bearer $(cat {token_file})" in banner
        listed = requests.get(
            f"{api_base}/v1/watches", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert listed.status_code == 200
        assert len(listed.json()["items"]) == 20
        assert {w["owner"] for w in listed.json()["items"]} == {"demo"}
        assert re.search(r"  Redis +redis://127\.0\.0\.1:\d+", banner)
        exports = subprocess.run(
            [sys.executable, "-m", "steamwatch", "env"],
            env=_env(STEAMWATCH_HOME=str(home)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert exports.returncode == 0, exports.stderr
        [redis_line] = [x for x in exports.stdout.splitlines() if "STEAMWATCH_REDIS_URL=" in x]
        redis_url = redis_line.split("=", 1)[1]
        assert redis.Redis.from_url(redis_url).xlen("steamwatch:events") >= 1
        # A service that dies is restarted, as a Deployment would, and the feed says so.
        os.kill(pids["publisher"], signal.SIGKILL)
        assert output.wait_for("service  publisher restarted", timeout=30), "".join(output.lines)[
            -3000:
        ]
        assert any(
            "service  publisher exited with code -9; restarting in 1s" in line
            for line in output.lines
        )
        assert output.wait_for("service  publisher ready again", timeout=60)

        started_stop = time.monotonic()
        process.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground process
        code = process.wait(timeout=30)
        stop_seconds = time.monotonic() - started_stop
    finally:
        if process.poll() is None:  # a failed assertion: still stop the tree the clean way
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    text = output.drain(timeout=2)
    assert code == 0, text
    assert "steamwatch stopped" in text
    assert stop_seconds < 10
    assert not any(_alive(pid) for pid in pids.values())
    stopped = {
        entry["service"]: entry["code"]
        for entry in _json_lines(text)
        if entry.get("event") == "service stopped" and entry.get("logger") == "steamwatch.dev"
    }
    assert stopped == {service: 0 for service in pids}
    assert not (home / "stores.json").exists()
    assert not (home / "postgres" / "postmaster.pid").exists()  # the store stopped too
    assert "Traceback" not in text


def test_a_killed_supervisor_takes_its_children_with_it(tmp_path: Path) -> None:
    """Given `dev` killed by SIGKILL (no chance to clean up), I expect no orphaned process."""
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "steamwatch", "dev", "--no-demo"],
        env=_env(STEAMWATCH_HOME=str(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        assert output.wait_for("steamwatch ready", timeout=120), "".join(output.lines)
        started = _json_lines("".join(output.lines))
        kinds = ("service started", "simulator started", "webhook receiver started")
        pids = [e["pid"] for e in started if e.get("event") in kinds]
        assert len(pids) == 8  # six services, the simulator and the webhook receiver
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in pids if _alive(pid)]
    # The embedded stores are servers of their own: they outlive a killed supervisor (a later
    # `dev` reattaches to them). This test owns them, so it stops them.
    _stop_processes_in(home)
    assert survivors == []


def test_run_without_store_urls_refuses_and_says_why() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steamwatch", "run", "scheduler"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "STEAMWATCH_DATABASE_URL" in result.stderr


def test_a_bad_setting_stops_the_command_naming_the_variable_not_the_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steamwatch", "dev"],
        env=_env(STEAMWATCH_DATABASE_URL=f"mysql://u:{SECRET}@db/x"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "STEAMWATCH_DATABASE_URL" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_help_lists_the_commands_and_the_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steamwatch", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for word in ("dev", "run", "db", "STEAMWATCH_<NAME>", "DATABASE_URL", "PROXIES"):
        assert word in result.stdout
