"""``steamwatch dev``: the whole system on one machine, as child processes of one supervisor.

Boots the stores (embedded when no URLs are set), migrates, starts every service as its own
process with the store URLs in its environment, waits for each to report ready through its
heartbeat, and on Ctrl-C / SIGTERM stops them (SIGTERM to each service's main process only,
then SIGKILL to its group after a timeout) before stopping the stores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
import structlog

from shared import migrate
from shared.config import Settings
from shared.embedded import stores
from shared.heartbeat import read_beats

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


def spawn(service: str, env: dict[str, str]) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "steamwatch", "run", service],
        env=env,
        start_new_session=True,
    )
    log.info("service started", service=service, pid=process.pid)
    return Child(service=service, process=process)


def wait_ready(
    children: Sequence[Child], client: redis.Redis, *, timeout: float, stop: threading.Event
) -> str | None:
    """None once every service has a "ready" heartbeat; otherwise why not."""
    deadline = time.monotonic() + timeout
    pending = {c.service for c in children}
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


def run_dev(settings: Settings, *, ready_timeout: float, stop_timeout: float) -> int:
    """Run until a signal or a service's death; returns the process exit code."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    database_url = settings.database_url.reveal() if settings.database_url else None
    redis_url = settings.redis_url.reveal() if settings.redis_url else None
    with stores(home=settings.home, database_url=database_url, redis_url=redis_url) as urls:
        log.info("migrating the database")
        migrate.upgrade(url=urls.database_url)
        env = {
            **os.environ,
            "STEAMWATCH_DATABASE_URL": urls.database_url,
            "STEAMWATCH_REDIS_URL": urls.redis_url,
        }
        client = redis.Redis.from_url(urls.redis_url)
        children = [spawn(service, env) for service in SERVICES]
        code = 0
        try:
            problem = wait_ready(children, client, timeout=ready_timeout, stop=stop)
            if problem and not stop.is_set():
                log.error("steamwatch did not start", reason=problem)
                code = 1
            elif not stop.is_set():
                print("steamwatch ready: " + ", ".join(SERVICES) + " (Ctrl-C stops)", flush=True)
                code = supervise(children, stop)
        finally:
            log.info("stopping services")
            stop_children(children, timeout=stop_timeout)
            client.close()
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
