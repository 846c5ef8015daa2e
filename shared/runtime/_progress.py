"""Whether a dramatiq service's worker processes make progress: the liveness of its health fork.

The fork that answers ``/healthz`` is a process of its own: a worker frozen (SIGSTOP), with
its event loop blocked, or with every thread stuck would leave it answering 200 for ever.
So each worker process proves progress in a file of the folder the fork reads
(``progress-<pid>``, beside the metric files), rewritten on every heartbeat only while:

- the process runs at all (a frozen one writes nothing);
- its event loop answers within :data:`LOOP_TIMEOUT` (every actor runs on it);
- it took a message within :data:`STALE_AFTER`, or none waited in its queues meanwhile (an
  idle worker is alive; one that takes nothing while messages wait is not).

The fork reports the service dead once a live worker's file is older than
:data:`STALE_AFTER` (``STEAMWATCH_WORKER_STALE_AFTER``): under a minute after the hang, and
exports the oldest file's age as ``steamwatch_worker_progress_age_seconds`` for the alert.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
from prometheus_client import Gauge

from shared.observability import process_alive

log = structlog.get_logger(__name__)

STALE_AFTER = 45.0  # seconds without proof of progress after which a worker counts as hung
LOOP_TIMEOUT = 5.0  # seconds the worker's event loop has to run a no-op
PREFIX = "progress-"

# Set by the health fork only (every other process holds 0): "max" across the folder's files.
PROGRESS_AGE = Gauge(
    "steamwatch_worker_progress_age_seconds",
    "Seconds since the least recent proof of progress of this service's worker processes",
    multiprocess_mode="max",
)


def progress_path(folder: str | Path, pid: int) -> Path:
    return Path(folder) / f"{PREFIX}{pid}"


class Progress:
    """One worker process's proof of progress: what it took when, and whether messages wait.

    ``waiting`` says whether any of the worker's queues holds a ready message (it may raise:
    Redis down is not a hang, so an error counts as nothing waiting); ``loop_answers`` whether
    the worker's event loop ran a no-op in time.
    """

    def __init__(
        self,
        *,
        folder: str | Path,
        waiting: Callable[[], bool],
        loop_answers: Callable[[], bool],
        stale_after: float = STALE_AFTER,
        clock: Callable[[], float] = time.time,
        pid: int | None = None,
    ) -> None:
        self.path = progress_path(folder, pid or os.getpid())
        self.waiting = waiting
        self.loop_answers = loop_answers
        self.stale_after = stale_after
        self.clock = clock
        self.taken_at = clock()  # boot counts as progress
        self.idle_since: float | None = None  # when messages were last seen waiting, unbroken
        self._stuck = False  # said so already

    def took_message(self) -> None:
        """A worker thread started a message (dramatiq's ``before_process_message``)."""
        self.taken_at = self.clock()

    def why_stuck(self) -> str | None:
        """None when the process makes progress, else why not (logged, and no file written)."""
        now = self.clock()
        if not self.loop_answers():
            return f"its event loop did not answer in {LOOP_TIMEOUT:g}s"
        try:
            waiting = self.waiting()
        except Exception:
            waiting = False
        if not waiting:
            self.idle_since = None
            return None
        if self.idle_since is None:
            self.idle_since = now
        since = max(self.taken_at, self.idle_since)
        if now - since > self.stale_after:
            return f"messages waited {now - since:.0f}s and it took none"
        return None

    def beat(self) -> None:
        """Rewrite the file if the process makes progress; say why not when it stops."""
        why = self.why_stuck()
        if why is not None:
            if not self._stuck:
                log.error("worker makes no progress", pid=os.getpid(), why=why)
            self._stuck = True
            return
        self._stuck = False
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.clock():.3f}")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def progress_ages(
    folder: str | Path, *, now: float | None = None, alive: Callable[[int], bool] = process_alive
) -> dict[int, float]:
    """Seconds since each live worker with a file in ``folder`` last proved progress.

    A file whose process is gone is removed (the dramatiq main process restarts or stops
    the service when a worker dies; that is its own signal, not a hang).
    """
    now = time.time() if now is None else now
    ages = {}
    for path in _files(folder):
        pid = int(path.name.removeprefix(PREFIX))
        if not alive(pid):
            path.unlink(missing_ok=True)
            continue
        try:
            proved = float(path.read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile: the next probe sees
        ages[pid] = max(0.0, now - proved)
    return ages


def hung_workers(
    folder: str | Path,
    *,
    stale_after: float = STALE_AFTER,
    now: float | None = None,
    alive: Callable[[int], bool] = process_alive,
) -> list[str]:
    """Why each live worker in ``folder`` counts as hung (empty: all make progress).

    Also sets :data:`PROGRESS_AGE` to the oldest proof, for the alert.
    """
    ages = progress_ages(folder, now=now, alive=alive)
    PROGRESS_AGE.set(max(ages.values(), default=0.0))
    return [
        f"worker {pid} made no progress for {age:.0f}s"
        for pid, age in sorted(ages.items())
        if age > stale_after
    ]


def _files(folder: str | Path) -> Iterable[Path]:
    try:
        entries = list(Path(folder).iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()]
