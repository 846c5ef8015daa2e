"""Prometheus metrics across processes: where dramatiq workers write them, and how they are read.

A dramatiq service is one main process with several worker processes; each counts in its own
memory, so prometheus_client's multiprocess mode is used: every process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` and the health server reads them all
(:func:`render_metrics`). prometheus_client decides this when it is first imported, so
:func:`prepare_multiprocess_dir` runs before the dramatiq CLI is exec'd, with a fresh folder
per service process. Asyncio services (scheduler, watchdog) are one process and use the
default registry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DRAMATIQ_DB_ENV = "dramatiq_prom_db"  # where dramatiq's own middleware writes its files


def prepare_multiprocess_dir(service: str, *, pid: int, root: Path | None = None) -> Path:
    """A fresh, empty folder for one service process's metric files; stale siblings removed.

    ``pid`` is the process the folder belongs to; a folder whose process is gone is left over
    from a crash and is deleted, so restarts never resurrect old counts.
    """
    root = root or Path(tempfile.gettempdir()) / "steamwatch-metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(f"{service}-*"):
        owner = old.name.rsplit("-", 1)[-1]
        if owner.isdigit() and (int(owner) == pid or not process_alive(int(owner))):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"{service}-{pid}"
    folder.mkdir()
    return folder


def multiprocess_env(folder: Path) -> dict[str, str]:
    """The variables that put prometheus_client and dramatiq's middleware in ``folder``."""
    return {MULTIPROC_ENV: str(folder), _DRAMATIQ_DB_ENV: str(folder)}


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a zombie (exited, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # gone meanwhile, or no /proc (macOS): kill(0) said alive
    return stat.rpartition(")")[2].split()[0] == "Z"


def render_metrics(*, multiprocess_dir: str | None = None) -> bytes:
    """The exposition text: every process's files in ``multiprocess_dir``, else this process's."""
    folder = multiprocess_dir
    if folder:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry)
    return generate_latest(prometheus_client.REGISTRY)
