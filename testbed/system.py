"""Real service processes for tests, benchmarks and the soak: the simulator, the services, logs.

Each process is what production runs (`steamwatch sim`, `steamwatch run <service>`), pointed
at the given PostgreSQL and Redis; its output goes to a file the caller can read afterwards.
The tests (``tests/fixtures/system.py``) and ``make bench`` both start their processes here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SESSION_STATE_ERRORS = re.compile(
    r"concurrent operations are not permitted|another operation is in progress|"
    r"IllegalStateChangeError|This session is provisioning|isce",
)


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stopped_on_purpose: bool = False

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class System:
    database_url: str
    redis_url: str
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    sim_url: str = ""
    proxy_urls: list[str] = field(default_factory=list)

    def base_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
        env.update(
            STEAMWATCH_DATABASE_URL=self.database_url,
            STEAMWATCH_REDIS_URL=self.redis_url,
            STEAMWATCH_LOG_FORMAT="json",
            STEAMWATCH_STEAM_BASE_URL=self.sim_url or "http://127.0.0.1:9",
            # Several services per test: each serves its health and metrics on a free port.
            STEAMWATCH_METRICS_HOST="127.0.0.1",
            STEAMWATCH_METRICS_PORT="0",
        )
        if self.proxy_urls:
            env["STEAMWATCH_PROXIES"] = ",".join(self.proxy_urls)
        env.update(self.env)
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = self.folder / f"{name}-{len(self.procs)}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        proc = Proc(name, process, log)
        self.procs.append(proc)
        return proc

    def start_simulator(self, *args: str, proxies: int = 2) -> None:
        proc = self.spawn(
            "sim",
            [
                sys.executable,
                "-m",
                "steamwatch",
                "sim",
                "--port",
                "0",
                "--proxies",
                str(proxies),
                *args,
            ],
            self.base_env(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = proc.text()
            serving = re.search(r"serving (http://\S+)", text)
            found = re.findall(r"proxy (http://\S+) exits", text)
            if serving and len(found) == proxies:
                self.sim_url, self.proxy_urls = serving.group(1), found
                return
            assert proc.process.poll() is None, text
            time.sleep(0.05)
        raise AssertionError(f"simulator did not start: {proc.text()}")

    def start_receiver(
        self, *args: str, port: int = 0, record: Path | None = None
    ) -> tuple[Proc, str, Path]:
        """The webhook receiver stand-in (`python -m simulator.receiver`): its process, its URL
        and the file where it records every request (kept across its restarts)."""
        record = record or self.folder / "received.jsonl"
        proc = self.spawn(
            "receiver",
            [
                sys.executable,
                "-m",
                "simulator.receiver",
                "--port",
                str(port),
                "--record",
                str(record),
                *args,
            ],
            self.base_env(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            serving = re.search(r"receiver serving on (http://\S+)", proc.text())
            if serving:
                return proc, serving.group(1), record
            assert proc.process.poll() is None, proc.text()
            time.sleep(0.05)
        raise AssertionError(f"receiver did not start: {proc.text()}")

    def start(self, service: str, **env: str) -> Proc:
        return self.spawn(
            service, [sys.executable, "-m", "steamwatch", "run", service], self.base_env(**env)
        )

    def start_api(self, **env: str) -> tuple[Proc, str]:
        """The HTTP API on a free port: its process and its base URL, once it is ready."""
        proc = self.start("api", STEAMWATCH_API_HOST="127.0.0.1", STEAMWATCH_API_PORT="0", **env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            serving = re.search(r"Uvicorn running on (http://[0-9.:]+)", proc.text())
            if serving and "Application startup complete" in proc.text():
                return proc, serving.group(1)
            assert proc.process.poll() is None, proc.text()
            time.sleep(0.05)
        raise AssertionError(f"api did not start: {proc.text()}")

    def logs(self, name: str | None = None) -> str:
        return "\n".join(p.text() for p in self.procs if name is None or p.name == name)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines of ``name``'s processes (all if None), in order, per process."""
        out = []
        for line in self.logs(name).splitlines():
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    def unexpected_exits(self) -> list[str]:
        return [
            f"{p.name} exited {p.process.returncode}"
            for p in self.procs
            if p.process.poll() is not None and not p.stopped_on_purpose
        ]

    def stop(self, proc: Proc, timeout: float = 20) -> int:
        proc.stopped_on_purpose = True
        if proc.process.poll() is None:
            proc.process.send_signal(signal.SIGTERM)
        try:
            return proc.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.process.pid, signal.SIGKILL)
            return proc.process.wait()

    def stop_all(self, timeout: float = 20) -> None:
        """SIGTERM every live process at once, wait for all, then kill what is left.

        Together rather than one after another: each service takes seconds to drain, and
        this runs after every test that started any.
        """
        live = [p for p in self.procs if p.process.poll() is None]
        for proc in live:
            proc.stopped_on_purpose = True
            proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in live:
            try:
                proc.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass  # killed below
        for proc in self.procs:
            proc.stopped_on_purpose = True
            try:
                os.killpg(proc.process.pid, signal.SIGKILL)  # stragglers and stray workers
            except ProcessLookupError:
                pass
            proc.process.wait()
