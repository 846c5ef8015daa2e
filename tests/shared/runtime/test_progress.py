"""A worker's proof of progress, and the health fork's reading of it (plain files, a fake clock)."""

from __future__ import annotations

import os
from pathlib import Path

from shared.runtime import Progress, hung_workers


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _progress(
    folder: Path, clock: Clock, *, waiting: bool = False, loop: bool = True, pid: int = 4242
) -> Progress:
    return Progress(
        folder=folder,
        waiting=lambda: waiting,
        loop_answers=lambda: loop,
        stale_after=45,
        clock=clock,
        pid=pid,
    )


def _ages(folder: Path, clock: Clock) -> list[str]:
    return hung_workers(folder, stale_after=45, now=clock.now, alive=lambda pid: True)


def test_an_idle_worker_proves_progress_on_every_beat(tmp_path: Path) -> None:
    clock = Clock()
    progress = _progress(tmp_path, clock)
    for _ in range(30):  # five minutes of beats with nothing to do
        clock.now += 10
        progress.beat()
    assert _ages(tmp_path, clock) == []


def test_a_worker_that_stops_beating_is_reported_with_its_pid_and_how_long(tmp_path: Path) -> None:
    clock = Clock()
    _progress(tmp_path, clock).beat()
    clock.now += 44
    assert _ages(tmp_path, clock) == []
    clock.now += 6  # frozen: no beat for 50 s
    assert _ages(tmp_path, clock) == ["worker 4242 made no progress for 50s"]


def test_a_worker_whose_event_loop_is_blocked_stops_proving_progress(tmp_path: Path) -> None:
    clock = Clock()
    progress = _progress(tmp_path, clock)
    progress.beat()
    progress.loop_answers = lambda: False
    for _ in range(5):
        clock.now += 10
        progress.beat()
    assert _ages(tmp_path, clock) == ["worker 4242 made no progress for 50s"]


def test_messages_waiting_while_the_worker_takes_none_count_as_no_progress(
    tmp_path: Path,
) -> None:
    clock = Clock()
    progress = _progress(tmp_path, clock, waiting=True)
    beats_written = []
    for _ in range(10):
        clock.now += 10
        progress.beat()
        beats_written.append(float((tmp_path / "progress-4242").read_text()))
    # The wait starts at the first beat that sees it (+10 s): written while it was at most
    # 45 s old (up to +50 s), then no more, so the file ages from there.
    assert beats_written[3] < beats_written[4] == beats_written[-1] == 1_000_050.0
    assert _ages(tmp_path, clock) == ["worker 4242 made no progress for 50s"]
    # Taking a message is progress again.
    progress.took_message()
    progress.beat()
    assert _ages(tmp_path, clock) == []


def test_a_busy_worker_taking_messages_while_more_wait_is_alive(tmp_path: Path) -> None:
    clock = Clock()
    progress = _progress(tmp_path, clock, waiting=True)
    for _ in range(30):
        clock.now += 10
        progress.took_message()
        progress.beat()
    assert _ages(tmp_path, clock) == []


def test_a_wait_that_started_after_the_last_message_counts_from_its_start(tmp_path: Path) -> None:
    clock = Clock()
    waiting = [False]
    progress = Progress(
        folder=tmp_path,
        waiting=lambda: waiting[0],
        loop_answers=lambda: True,
        stale_after=45,
        clock=clock,
        pid=4242,
    )
    clock.now += 600  # idle for ten minutes: alive
    progress.beat()
    waiting[0] = True  # then messages arrive; the first beat that sees them starts the wait
    clock.now += 10
    progress.beat()
    assert _ages(tmp_path, clock) == []


def test_redis_unreachable_is_not_a_hang(tmp_path: Path) -> None:
    def waiting() -> bool:
        raise ConnectionError("redis is restarting")

    clock = Clock()
    progress = Progress(
        folder=tmp_path, waiting=waiting, loop_answers=lambda: True, clock=clock, pid=4242
    )
    for _ in range(10):
        clock.now += 10
        progress.beat()
    assert _ages(tmp_path, clock) == []


def test_the_file_of_a_process_that_is_gone_is_removed_not_reported(tmp_path: Path) -> None:
    clock = Clock()
    _progress(tmp_path, clock, pid=4242).beat()
    _progress(tmp_path, clock, pid=4343).beat()
    clock.now += 100
    reasons = hung_workers(tmp_path, stale_after=45, now=clock.now, alive=lambda pid: pid == 4343)
    assert reasons == ["worker 4343 made no progress for 100s"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress-4343"]


def test_other_files_in_the_metrics_folder_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"\0" * 8)
    (tmp_path / "progress-99.tmp").write_text("1")
    assert hung_workers(tmp_path, stale_after=45, now=2e9) == []


def test_a_live_process_is_checked_for_real(tmp_path: Path) -> None:
    clock = Clock()
    _progress(tmp_path, clock, pid=os.getpid()).beat()
    assert hung_workers(tmp_path, stale_after=45, now=clock.now + 100) == [
        f"worker {os.getpid()} made no progress for 100s"
    ]
