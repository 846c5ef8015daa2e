"""``make run``'s supervisor on real child processes: a dead service is restarted with back-off,
one that keeps crashing stops everything, a dead simulator stops everything."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from shared.config import load_settings
from steamwatch.dev import Child, RestartPolicy, service_ports, supervise
from tests.fixtures.waiting import until_sync

FAST = RestartPolicy(base=0.1, cap=0.4, max_crashes=3, window=60)
CRASH = "import sys; sys.exit(3)"
RUN = "import time; time.sleep(120)"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def _child(started: list[subprocess.Popen[bytes]], code: str, *, restartable: bool) -> Child:
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    started.append(process)
    return Child(service="publisher", process=process, env={} if restartable else None)


def test_a_service_that_dies_is_restarted_and_said_so(
    started: list[subprocess.Popen[bytes]],
) -> None:
    first = _child(started, CRASH, restartable=True)
    children = [first]
    stop = threading.Event()
    said: list[str] = []
    result: list[int] = []

    def restart(child: Child) -> Child:
        return _child(started, RUN, restartable=True)

    thread = threading.Thread(
        target=lambda: result.append(
            supervise(children, stop, policy=FAST, restart=restart, say=said.append)
        )
    )
    thread.start()
    try:
        assert until_sync(lambda: children[0] is not first, within=10)
        assert children[0].process.poll() is None  # the new one runs
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]  # stopped by the signal, not by the crash
    assert said[0] == (
        "service  publisher exited with code 3; restarting in 0.1s (crash 1 of 3 allowed in 60s)"
    )
    assert said[1] == f"service  publisher restarted (pid {children[0].pid})"


def test_a_service_that_keeps_crashing_stops_everything_after_its_allowance(
    started: list[subprocess.Popen[bytes]],
) -> None:
    children = [_child(started, CRASH, restartable=True)]
    stop = threading.Event()
    restarts: list[Child] = []

    def restart(child: Child) -> Child:
        restarts.append(_child(started, CRASH, restartable=True))
        return restarts[-1]

    said: list[str] = []
    code = supervise(children, stop, policy=FAST, restart=restart, say=said.append)
    assert code == 1
    assert len(restarts) == 3  # crashes 1-3 restarted, the 4th gives up
    assert [line.split(";")[1].strip() for line in said if "restarting in" in line] == [
        "restarting in 0.1s (crash 1 of 3 allowed in 60s)",
        "restarting in 0.2s (crash 2 of 3 allowed in 60s)",
        "restarting in 0.4s (crash 3 of 3 allowed in 60s)",
    ]
    assert said[-1] == (
        "service  publisher exited with code 3, crash 4 in 60s: giving up, stopping everything"
    )


def test_a_dead_simulator_is_not_restarted_it_stops_everything(
    started: list[subprocess.Popen[bytes]],
) -> None:
    children = [_child(started, CRASH, restartable=False)]
    restarted: list[Child] = []

    def restart(child: Child) -> Child:
        restarted.append(child)
        return child

    code = supervise(children, threading.Event(), policy=FAST, restart=restart, say=print)
    assert code == 1
    assert restarted == []


def test_make_run_takes_fixed_metrics_ports_from_the_setting_else_free_ones() -> None:
    fixed = {"STEAMWATCH_METRICS_PORT": "19100"}
    # One per service, in order: scheduler, fetcher, publisher, watchdog, notifier, api.
    assert service_ports(load_settings(fixed), fixed) == [19100, 19101, 19102, 19103, 19104, 19105]
    free = service_ports(load_settings({}), {})
    assert len(set(free)) == 6 and 9100 not in free  # the kernel's picks, not the default
