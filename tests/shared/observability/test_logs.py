"""One format per destination, library noise at WARNING unless DEBUG is asked for."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from shared.observability import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    configure_logging(level="INFO", fmt="console")


@pytest.mark.usefixtures("restore_logging")
def test_library_chatter_is_quiet_at_info_and_their_warnings_still_show() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", service="test", stream=stream)
    logging.getLogger("apscheduler.scheduler").info('Added job "tick" to job store "default"')
    logging.getLogger("pgserver").info("Running commandline: initdb ...")
    logging.getLogger("dramatiq.WorkerProcess(0)").info("Worker process is ready for action.")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate.schemas")
    logging.getLogger("dramatiq.worker").warning("a worker thread is stuck")
    logging.getLogger("steamwatch.anything").info("our own line")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e["event"]) for e in lines] == [
        ("dramatiq.worker", "a worker thread is stuck"),
        ("steamwatch.anything", "our own line"),
    ]


@pytest.mark.usefixtures("restore_logging")
def test_debug_lets_the_libraries_speak() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    logging.getLogger("apscheduler.scheduler").info("Added job")
    assert json.loads(stream.getvalue())["event"] == "Added job"


def test_a_dramatiq_service_on_a_terminal_prints_console_lines_like_the_others(
    database_url: str, redis_url: str
) -> None:
    """dramatiq pipes its workers' output, so they must be told the terminal's format."""
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    env.update(
        STEAMWATCH_DATABASE_URL=database_url,
        STEAMWATCH_REDIS_URL=redis_url,
        STEAMWATCH_METRICS_PORT="0",
        STEAMWATCH_METRICS_HOST="127.0.0.1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "steamwatch", "run", "fetcher"],
        env=env,
        stdout=child,
        stderr=child,
        start_new_session=True,
    )
    os.close(child)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"worker ready" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                try:
                    seen += os.read(main, 65536)
                except OSError:
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        os.close(main)
    text = seen.decode(errors="replace")
    [line] = [x for x in text.splitlines() if "worker ready" in x]
    assert not line.lstrip().startswith("{"), line  # console, not JSON
    assert "worker_threads=" in line
    assert "Worker process is ready" not in text  # dramatiq's boot chatter stays quiet
