"""``steamwatch dev``: the whole system on one machine, as child processes of one supervisor.

Boots the stores (embedded when no URLs are set), migrates, starts the Steam simulator with two
local proxies (unless ``STEAMWATCH_STEAM_BASE_URL`` names a Steam to use), adds demo watches to
an empty database, starts every service as its own process with the URLs in its environment,
waits for each to report ready through its heartbeat, then shows the live event feed and a
status line. On Ctrl-C / SIGTERM it stops them (SIGTERM to each service's main process only,
then SIGKILL to its group after a timeout) before stopping the stores.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import structlog

from shared.config import Settings
from shared.db import migrate
from shared.runtime import die_with_parent, read_beats, sync_client
from steamwatch.demo import seed_demo
from steamwatch.discovery import remove_stores, write_stores
from steamwatch.embedded import stores
from steamwatch.monitor import Monitor

log = structlog.get_logger(__name__)

SERVICES: tuple[str, ...] = ("scheduler", "fetcher", "publisher", "watchdog")


@dataclass
class Child:
    """One service process; its own session, so a terminal's Ctrl-C reaches only the supervisor."""

    service: str
    process: subprocess.Popen[bytes]
    stopping: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self) -> None:
        # To the main process only: dramatiq's main process forwards it to its workers, which
        # then drain. A signal to the whole group would send its workers down the kill path.
        self.stopping = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def free_ports(count: int) -> list[int]:
    """Ports free on loopback now, one per service (chosen by the kernel, so none collide)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def spawn(service: str, env: dict[str, str]) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "steamwatch", "run", service],
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    log.info("service started", service=service, pid=process.pid)
    return Child(service=service, process=process)


def start_simulator(home: os.PathLike[str], env: dict[str, str]) -> tuple[Child, str, list[str]]:
    """The simulator and two local proxies as a child; returns it, its URL and the proxies'."""
    log_path = Path(home) / "simulator.log"
    argv = [
        sys.executable,
        "-m",
        "steamwatch",
        "sim",
        "--port",
        "0",
        "--proxies",
        "2",
        "--tick-seconds",
        "15",
    ]
    with log_path.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    child = Child(service="simulator", process=process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        text = log_path.read_text(errors="replace")
        serving = re.search(r"serving (http://\S+)", text)
        proxies = re.findall(r"proxy (http://\S+) exits", text)
        if serving and len(proxies) == 2:
            log.info("simulator started", url=serving.group(1), pid=process.pid)
            return child, serving.group(1), proxies
        time.sleep(0.05)
    child.terminate()
    raise RuntimeError(f"the simulator did not start; see {log_path}")


def wait_ready(
    children: Sequence[Child], client: redis.Redis, *, timeout: float, stop: threading.Event
) -> str | None:
    """None once every service has a "ready" heartbeat; otherwise why not."""
    deadline = time.monotonic() + timeout
    pending = {c.service for c in children if c.service in SERVICES}
    while pending:
        for child in children:
            if child.process.poll() is not None:
                return f"{child.service} exited with code {child.process.returncode} before ready"
        try:
            ready = {b.service for b in read_beats(client) if b.state == "ready"}
        except redis.RedisError as e:
            return f"Redis is not answering: {e}"
        pending -= ready
        if not pending:
            return None
        if time.monotonic() > deadline:
            return f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}"
        if stop.wait(0.2):
            return "stopped before ready"
    return None


def stop_children(children: Sequence[Child], *, timeout: float) -> None:
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            code = child.process.wait(remaining)
            log.info("service stopped", service=child.service, code=code)
        except subprocess.TimeoutExpired:
            log.warning("service did not stop in time; killing it", service=child.service)
            child.kill_group()
            child.process.wait()
        # Worker processes of a dramatiq main that exited must not linger.
        child.kill_group()


def run_dev(
    settings: Settings, *, ready_timeout: float, stop_timeout: float, demo: bool = True
) -> int:
    """Run until a signal or a service's death; returns the process exit code."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    database_url = settings.database_url.reveal() if settings.database_url else None
    redis_url = settings.redis_url.reveal() if settings.redis_url else None
    settings.home.mkdir(parents=True, exist_ok=True)
    with stores(home=settings.home, database_url=database_url, redis_url=redis_url) as urls:
        log.info("migrating the database")
        migrate.upgrade(url=urls.database_url)
        write_stores(settings.home, database_url=urls.database_url, redis_url=urls.redis_url)
        env = {
            **os.environ,
            "STEAMWATCH_DATABASE_URL": urls.database_url,
            "STEAMWATCH_REDIS_URL": urls.redis_url,
        }
        children: list[Child] = []
        client = sync_client(urls.redis_url)
        monitor: Monitor | None = None
        code = 0
        try:
            if "STEAMWATCH_STEAM_BASE_URL" not in os.environ:
                simulator, sim_url, proxies = start_simulator(settings.home, env)
                children.append(simulator)
                env["STEAMWATCH_STEAM_BASE_URL"] = sim_url
                env["STEAMWATCH_PROXIES"] = ",".join(["direct", *proxies])
                if demo:
                    added = asyncio.run(
                        seed_demo(database_url=urls.database_url, simulator_url=sim_url)
                    )
                    if added:
                        log.info("demo watches added", count=added)
            ports = free_ports(len(SERVICES))
            for service, port in zip(SERVICES, ports, strict=True):
                children.append(
                    spawn(
                        service,
                        {
                            **env,
                            "STEAMWATCH_METRICS_HOST": "127.0.0.1",
                            "STEAMWATCH_METRICS_PORT": str(port),
                        },
                    )
                )
            problem = wait_ready(children, client, timeout=ready_timeout, stop=stop)
            if problem and not stop.is_set():
                log.error("steamwatch did not start", reason=problem)
                code = 1
            elif not stop.is_set():
                print("steamwatch ready: " + ", ".join(SERVICES) + " (Ctrl-C stops)", flush=True)
                print("  events: `steamwatch tail` in another terminal, or below", flush=True)
                served = dict(zip(SERVICES, ports, strict=True))
                urls_of = [f"{s} http://127.0.0.1:{p}/metrics" for s, p in served.items()]
                print("  metrics and health: " + ", ".join(urls_of), flush=True)
                monitor = Monitor(
                    database_url=urls.database_url,
                    redis_url=urls.redis_url,
                    emit=lambda line: print(line, flush=True),
                )
                monitor.start()
                code = supervise(children, stop)
        finally:
            if monitor is not None:
                monitor.stop()
            log.info("stopping services")
            stop_children(children, timeout=stop_timeout)
            client.close()
            remove_stores(settings.home)
        log.info("stopping stores")
    print("steamwatch stopped", flush=True)
    return code


def supervise(children: Sequence[Child], stop: threading.Event) -> int:
    """Wait for a stop signal; a service that dies meanwhile stops the whole system."""
    while not stop.wait(0.5):
        for child in children:
            if child.process.poll() is not None:
                log.error(
                    "service exited unexpectedly; stopping everything",
                    service=child.service,
                    code=child.process.returncode,
                )
                return 1
    return 0
