"""``steamwatch dev``: the whole system on one machine, as child processes of one supervisor.

Boots the stores (embedded when no URLs are set), migrates, starts the Steam simulator with two
local proxies (unless ``STEAMWATCH_STEAM_BASE_URL`` names a Steam to use), adds demo watches to
an empty database, starts every service as its own process with the URLs in its environment,
waits for each to report ready through its heartbeat, then shows the live event feed and a
status line. A service that dies is restarted with back-off, as a Deployment would; one that
keeps crashing stops everything. On Ctrl-C / SIGTERM it stops them (SIGTERM to each service's
main process only, then SIGKILL to its group after a timeout) before stopping the stores.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import structlog

from shared.config import Settings
from shared.db import migrate
from shared.notify import SecretBox, generate_key, parse_keys
from shared.observability import SecretURL
from shared.runtime import SERVICES, Beat, die_with_parent, read_beats, sync_client
from steamwatch.common import API_TOKEN_FILE, KEY_FILE
from steamwatch.demo import demo_token, seed_demo, seed_demo_subscription
from steamwatch.discovery import remove_stores, write_stores
from steamwatch.embedded import stores
from steamwatch.monitor import Monitor

log = structlog.get_logger(__name__)


@dataclass
class Child:
    """One service process; its own session, so a terminal's Ctrl-C reaches only the supervisor."""

    service: str
    process: subprocess.Popen[bytes]
    stopping: bool = field(default=False)
    env: dict[str, str] | None = None  # what it was started with; None: not restartable

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


def service_ports(settings: Settings, environ: Mapping[str, str]) -> list[int]:
    """Each service's /metrics port: from STEAMWATCH_METRICS_PORT up (scheduler, fetcher,
    publisher, watchdog, notifier, api) when it is set, for URLs that stay the same from run to
    run; free ones the kernel picks otherwise."""
    if "STEAMWATCH_METRICS_PORT" in environ and settings.metrics_port != 0:
        return [settings.metrics_port + i for i in range(len(SERVICES))]
    return free_ports(len(SERVICES))


def spawn(service: str, env: dict[str, str]) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "steamwatch", "run", service],
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    log.info("service started", service=service, pid=process.pid)
    return Child(service=service, process=process, env=env)


def respawn(child: Child) -> Child:
    """The same service again, with the environment it was first started with."""
    assert child.env is not None
    return spawn(child.service, child.env)


@dataclass(frozen=True)
class RestartPolicy:
    """Like a Deployment's crash-loop back-off: restart after 1, 2, 4… s (capped), and give up
    when a service crashed more than ``max_crashes`` times within ``window`` seconds."""

    base: float = 1.0
    cap: float = 30.0
    max_crashes: int = 5
    window: float = 300.0

    def delay(self, crashes: int) -> float:
        return min(self.cap, self.base * 2 ** (crashes - 1))


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


def start_receiver(home: os.PathLike[str], env: dict[str, str]) -> tuple[Child, str]:
    """The webhook receiver stand-in as a child (answering in 50 ms, recording to a file)."""
    log_path = Path(home) / "receiver.log"
    argv = [
        sys.executable,
        "-m",
        "simulator.receiver",
        "--port",
        "0",
        "--delay",
        "0.05",
        "--record",
        str(Path(home) / "received.jsonl"),
    ]
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    child = Child(service="receiver", process=process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        serving = re.search(
            r"receiver serving on (http://\S+)", log_path.read_text(errors="replace")
        )
        if serving:
            log.info("webhook receiver started", url=serving.group(1), pid=process.pid)
            return child, serving.group(1)
        time.sleep(0.05)
    child.terminate()
    raise RuntimeError(f"the webhook receiver did not start; see {log_path}")


def keep_demo_token(database_url: str, path: Path) -> None:
    """Keep a live API token for the demo owner in ``path`` (readable by this user only)."""
    existing = path.read_text().strip() if path.exists() else None
    token = asyncio.run(demo_token(database_url=database_url, existing=existing))
    if token is not None:
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(token + "\n")
        log.info("api token for the demo owner written", path=str(path))


def secret_key(settings: Settings) -> str:
    """STEAMWATCH_SECRET_KEY, or the key kept in ``<home>/secret.key`` (made on first run)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.home) / KEY_FILE
    if not path.exists():
        path.write_text(generate_key() + "\n")
        path.chmod(0o600)
        log.info("secret key for destination URLs created", path=str(path))
    return path.read_text().strip()


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
    """Run until a signal, or until a service keeps crashing; returns the exit code."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    database_url = settings.database_url.reveal() if settings.database_url else None
    redis_url = settings.redis_url.reveal() if settings.redis_url else None
    settings.home.mkdir(parents=True, exist_ok=True)
    with stores(home=settings.home, database_url=database_url, redis_url=redis_url) as urls:
        log.info("migrating the database")
        migrate.upgrade(url=urls.database_url)
        key = secret_key(settings)
        env = {
            **os.environ,
            "STEAMWATCH_DATABASE_URL": urls.database_url,
            "STEAMWATCH_REDIS_URL": urls.redis_url,
            "STEAMWATCH_SECRET_KEY": key,
        }
        children: list[Child] = []
        client = sync_client(urls.redis_url)
        monitor: Monitor | None = None
        steam: dict[str, object] | None = None  # the simulator, for commands beside this one
        code = 0
        try:
            if "STEAMWATCH_STEAM_BASE_URL" not in os.environ:
                simulator, sim_url, proxies = start_simulator(settings.home, env)
                children.append(simulator)
                every_proxy = ["direct", *proxies]
                steam = {"steam_base_url": sim_url, "proxies": every_proxy}
                env["STEAMWATCH_STEAM_BASE_URL"] = sim_url
                env["STEAMWATCH_PROXIES"] = ",".join(every_proxy)
                receiver, receiver_url = start_receiver(settings.home, env)
                children.append(receiver)
                steam["receiver_url"] = receiver_url
                # The demo's destination is the local receiver: this run allows loopback.
                env["STEAMWATCH_NOTIFY_ALLOW_PRIVATE"] = "true"
                if demo:
                    added = asyncio.run(
                        seed_demo(database_url=urls.database_url, simulator_url=sim_url)
                    )
                    if added:
                        log.info("demo watches added", count=added)
                    hook = f"json://{receiver_url.removeprefix('http://')}/demo"
                    if asyncio.run(
                        seed_demo_subscription(
                            database_url=urls.database_url,
                            url=hook,
                            box=SecretBox(parse_keys(key)),
                        )
                    ):
                        log.info("demo subscription added", destination=hook)
            token_file = settings.home / API_TOKEN_FILE
            if demo:
                keep_demo_token(urls.database_url, token_file)
            ports = service_ports(settings, os.environ)
            bases = {s: f"http://127.0.0.1:{p}" for s, p in zip(SERVICES, ports, strict=True)}
            write_stores(
                settings.home,
                database_url=urls.database_url,
                redis_url=urls.redis_url,
                services=bases,
                steam=steam,
            )
            for service, port in zip(SERVICES, ports, strict=True):
                children.append(
                    spawn(
                        service,
                        {
                            **env,
                            "STEAMWATCH_METRICS_HOST": "127.0.0.1",
                            "STEAMWATCH_METRICS_PORT": str(port),
                            # The API serves its health and metrics with the API itself.
                            "STEAMWATCH_API_HOST": "127.0.0.1",
                            "STEAMWATCH_API_PORT": str(port),
                        },
                    )
                )
            problem = wait_ready(children, client, timeout=ready_timeout, stop=stop)
            if problem and not stop.is_set():
                log.error("steamwatch did not start", reason=problem)
                code = 1
            elif not stop.is_set():
                receiving = None if steam is None else str(steam["receiver_url"])
                token = token_file if demo and token_file.exists() else None
                print(
                    banner(urls.database_url, urls.redis_url, bases, receiving, token),
                    flush=True,
                )
                monitor = Monitor(
                    database_url=urls.database_url,
                    redis_url=urls.redis_url,
                    emit=lambda line: print(line, flush=True),
                )
                monitor.start()
                code = supervise(
                    children,
                    stop,
                    say=lambda line: print(line, flush=True),
                    beats=lambda: read_beats(client),
                )
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


def banner(
    database_url: str,
    redis_url: str,
    services: dict[str, str],
    receiver: str | None = None,
    token_file: Path | None = None,
) -> str:
    """What ``make run`` prints once ready: where everything is, passwords masked."""
    width = max(len(s) for s in services)
    lines = [
        "steamwatch ready: " + ", ".join(services) + " (Ctrl-C stops)",
        f"  PostgreSQL  {SecretURL(database_url).masked}",
        f"  Redis       {SecretURL(redis_url).masked}",
        *(
            f"  {service:<{width}}  {base}/metrics  {base}/healthz  {base}/readyz"
            for service, base in services.items()
        ),
        *(
            [
                f"  notifications  the demo's alerts go to the local webhook receiver {receiver}"
                "/demo (`steamwatch notify list`; add yours with `steamwatch notify add`)"
            ]
            if receiver
            else []
        ),
        *(
            [
                f"  HTTP API  {services['api']}/docs; the demo owner's token is in {token_file}:",
                f'    curl -H "Authorization: Bearer $(cat {token_file})" '
                f"{services['api']}/v1/watches",
            ]
            if token_file is not None and "api" in services
            else []
        ),
        '  in another terminal: eval "$(.venv/bin/steamwatch env)", then `steamwatch tail`,',
        '  `steamwatch status` or `redis-cli -u "$STEAMWATCH_REDIS_URL"`; events also below',
    ]
    return "\n".join(lines)


def supervise(
    children: list[Child],
    stop: threading.Event,
    *,
    policy: RestartPolicy = RestartPolicy(),
    restart: Callable[[Child], Child] = respawn,
    say: Callable[[str], None] = print,
    beats: Callable[[], list[Beat]] = list,
) -> int:
    """Wait for a stop signal, restarting a service that dies meanwhile (with back-off).

    ``children`` is updated in place (the caller stops whatever is in it at the end). A child
    that cannot be restarted (the simulator: its port and proxies are the services' settings),
    or a service that keeps crashing, stops the whole system: 1. ``beats`` (the heartbeats)
    tells when a restarted service is ready again.
    """
    crashes: dict[str, list[float]] = {}
    due: dict[int, float] = {}  # child index -> when to restart it
    restarted: dict[str, float] = {}  # service -> wall time of its restart, until ready again
    while not stop.wait(0.2):
        now = time.monotonic()
        if restarted:
            try:
                ready = [b for b in beats() if b.state == "ready"]
            except redis.RedisError:
                ready = []
            for service, at in list(restarted.items()):
                if any(b.service == service and b.started_at >= at for b in ready):
                    del restarted[service]
                    say(f"service  {service} ready again")
        for i, child in enumerate(children):
            if i in due:
                if now >= due[i]:
                    del due[i]
                    restarted[child.service] = time.time()
                    children[i] = restart(child)
                    say(f"service  {child.service} restarted (pid {children[i].pid})")
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.kill_group()  # the worker processes of a dramatiq main that died
            if child.env is None:
                log.error(
                    "a process the services need exited; stopping everything",
                    service=child.service,
                    code=code,
                )
                return 1
            recent = [t for t in crashes.get(child.service, []) if now - t < policy.window]
            recent.append(now)
            crashes[child.service] = recent
            if len(recent) > policy.max_crashes:
                log.error(
                    "service keeps crashing; stopping everything",
                    service=child.service,
                    code=code,
                    crashes=len(recent),
                    within_seconds=policy.window,
                )
                say(
                    f"service  {child.service} exited with code {code}, crash {len(recent)} "
                    f"in {policy.window:.0f}s: giving up, stopping everything"
                )
                return 1
            delay = policy.delay(len(recent))
            log.warning(
                "service exited unexpectedly; restarting it",
                service=child.service,
                code=code,
                crash=len(recent),
                restart_in_seconds=delay,
            )
            say(
                f"service  {child.service} exited with code {code}; restarting in {delay:g}s "
                f"(crash {len(recent)} of {policy.max_crashes} allowed in {policy.window:.0f}s)"
            )
            due[i] = now + delay
    return 0
