"""The watchdog with real processes: nothing stalls silently.

Real PostgreSQL, Redis, dramatiq workers as processes, the simulator over HTTP through local
proxies. Every wait polls an observable state with a deadline.
"""

from __future__ import annotations

import os
import signal
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
import redis as sync_redis
from sqlalchemy import select, text, update

from shared.db import Database, PriceSnapshot, Task
from shared.runtime import read_beats
from testbed.system import SESSION_STATE_ERRORS, System
from tests.fixtures.pipeline import FAST, all_events, catalogue, history, sim_admin
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until


async def _logged(system: System, needle: str) -> bool:
    return needle in system.logs()


async def test_a_fetcher_worker_killed_mid_check_loses_no_task_and_duplicates_no_event(
    db: Database, system: System, redis_url: str
) -> None:
    lease_seconds, tick, latency = 6, 1.0, 3.0
    system.start_simulator("--no-limits", "--latency-ms", str(int(latency * 1000)))
    names = await catalogue(system, 40)
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": {"max_price": 10**9},
            }
            for n in names
        ],
    )
    env = {
        **FAST,
        "STEAMWATCH_LEASE_SECONDS": str(lease_seconds),
        "STEAMWATCH_WATCHDOG_TICK": str(tick),
        "STEAMWATCH_FETCHER_THREADS": "64",
    }
    fetcher = system.start("fetcher", **env)
    system.start("publisher", **env)
    system.start("watchdog", **env)
    assert await until(lambda: _logged(system, "worker ready"), within=60)
    system.start("scheduler", **env)

    async def all_in_flight() -> bool:
        async with db.session_scope() as s:
            leased = await s.scalar(
                text("SELECT count(*) FROM tasks WHERE lease_token IS NOT NULL")
            )
            done = await s.scalar(text("SELECT count(*) FROM price_history"))
        return leased == len(ids) and done == 0

    assert await until(all_in_flight, within=30, every=0.05)

    async def steam_asked() -> bool:  # every check is now waiting on the simulator's answer
        stats = await sim_admin(system, "GET", "/__sim/stats?timestamps=0")
        return int(stats["totals"]["priceoverview"]["seen"]) == len(ids)

    assert await until(steam_asked, within=latency, every=0.05)
    assert await all_in_flight()
    # The worker process (not the fork serving /metrics): the one that heart-beats as a fetcher.
    with sync_redis.Redis.from_url(redis_url) as client:
        beats = read_beats(client)
    [worker_pid] = [int(b.instance.rsplit(":", 1)[1]) for b in beats if b.service == "fetcher"]
    assert worker_pid in {p.pid for p in psutil.Process(fetcher.process.pid).children()}
    async with db.session_scope() as s:
        held = {r.id: r.lease_token for r in await s.execute(select(Task.id, Task.lease_token))}
    fetcher.stopped_on_purpose = True
    os.kill(worker_pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    # Its main process notices and exits, as a pod would; the replacement comes up at once.
    assert await until(lambda: _truthy(fetcher.process.poll() is not None), within=30)
    system.start("fetcher", **env)

    async def every_task_checked() -> bool:
        return len(await history(db)) == len(ids)

    assert await until(every_task_checked, within=lease_seconds + tick + latency + 30)
    runs = await history(db)
    took = {}
    for task_id, token in held.items():
        [check] = runs[task_id]
        assert check.lease_token != token  # the killed worker's check never completed
        # Re-sent within the lease timeout plus one watchdog tick, then answered.
        took[task_id] = (check.checked_at - killed_at).total_seconds()
    bound = lease_seconds + tick + latency + 2.5
    print(
        f"kill -9 mid-check: {len(held)} held tasks checked again {min(took.values()):.1f}-"
        f"{max(took.values()):.1f} s after the kill (lease {lease_seconds} s, tick {tick} s, "
        f"Steam latency {latency} s; bound {bound} s)"
    )
    assert max(took.values()) <= bound, took

    async def every_event_out() -> bool:
        return len(await all_events(redis_url)) >= len(ids)

    assert await until(every_event_out, within=30)
    events = await all_events(redis_url)
    assert sorted(e.task_id for e in events) == sorted(ids)  # one each: none lost, none twice
    assert len({e.id for e in events}) == len(events)
    async with db.session_scope() as s:
        tasks = (await s.scalars(select(Task))).all()
    assert all(t.lease_token is None and t.next_check > datetime.now(UTC) for t in tasks)
    assert all(t.status == "active" for t in tasks)
    assert "check re-sent" in system.logs("watchdog")
    assert not SESSION_STATE_ERRORS.search(system.logs())
    assert system.unexpected_exits() == []


async def test_with_the_scheduler_stopped_due_tasks_are_checked_through_the_watchdog(
    db: Database, system: System, redis_url: str
) -> None:
    interval, grace, tick = 2, 1.0, 0.5
    system.start_simulator("--no-limits")
    names = await catalogue(system, 10)
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": interval,
                "conditions": {"max_price": 1},
            }
            for n in names
        ],
    )
    env = {**FAST, "STEAMWATCH_WATCHDOG_GRACE": str(grace), "STEAMWATCH_WATCHDOG_TICK": str(tick)}
    for service in ("fetcher", "publisher", "watchdog"):
        system.start(service, **env)
    scheduler = system.start("scheduler", **env)

    async def checked(times: int, since: datetime | None = None) -> bool:
        runs = await history(db)
        return all(
            sum(1 for r in runs[t] if since is None or r.checked_at > since) >= times for t in ids
        )

    assert await until(lambda: checked(2), within=60)
    assert system.stop(scheduler) == 0
    stopped_at = datetime.now(UTC)
    assert await until(lambda: checked(4, since=stopped_at), within=60)

    runs = await history(db)
    all_gaps = []
    for task_id in ids:
        times = [r.checked_at for r in runs[task_id]]
        after = [i for i, t in enumerate(times) if t > stopped_at]
        gaps = [(times[i] - times[i - 1]).total_seconds() for i in after]
        # Each check waits out the interval and the grace, then at most one tick (plus the
        # check itself): the watchdog, not a scheduler, is sending them.
        assert all(
            interval + grace - 0.2 <= gap <= interval + grace + tick + 1.5 for gap in gaps
        ), (
            task_id,
            gaps,
        )
        all_gaps += gaps
    print(
        f"scheduler stopped: {len(all_gaps)} checks sent by the watchdog, gaps "
        f"{min(all_gaps):.2f}-{max(all_gaps):.2f} s (interval {interval} + grace {grace} "
        f"+ tick {tick} s)"
    )
    assert "overdue tasks sent" in system.logs("watchdog")
    assert not SESSION_STATE_ERRORS.search(system.logs())
    assert system.unexpected_exits() == []


@dataclass(frozen=True)
class Seen:
    """One state of a task's row after a check, as the test saw it."""

    checked_at: datetime
    next_check: datetime
    status: str
    recovery_attempts: int
    consecutive_errors: int

    @property
    def delay(self) -> float:
        return (self.next_check - self.checked_at).total_seconds()


async def test_recovery_follows_the_schedule_ends_failed_or_recovered_and_never_revives_a_paused_task(
    db: Database, system: System, redis_url: str
) -> None:
    base, cap, tick = 0.5, 5.0, 0.1  # the seed's 60 s, x2, 600 s scaled by 1/120
    expected = [base, 1, 2, 4, 5, 5, 5, 5, 5, 5]  # after the stall, then after attempts 1..9
    system.start_simulator("--no-limits")
    [book_item, listings_item, broken_item] = await catalogue(system, 3)
    # The order book fails 7 times (5 to stall, 2 recovery attempts), then answers; the
    # listings never answer; the broken item is a 500 every time (an item Steam sells: one it
    # confirms it does not know would be failed at once, without a recovery).
    await sim_admin(
        system,
        "POST",
        "/__sim/faults",
        [
            {"mode": "http_5xx", "endpoints": ["histogram"], "times": 7},
            {"mode": "http_5xx", "endpoints": ["listings_render"]},
            {"mode": "http_5xx", "status": 500, "item": broken_item},
        ],
    )
    failing, recovering, paused = await add_tasks(
        db,
        [
            {
                "market_hash_name": broken_item,
                "kind": "lowest_price",
                "check_interval": 1,
                "conditions": {"max_price": 1},
            },
            {
                "market_hash_name": book_item,
                "kind": "order_book",
                "check_interval": 1,
                "conditions": {"max_lowest_sell": 10**9},
            },
            {
                "market_hash_name": listings_item,
                "kind": "new_listings",
                "check_interval": 1,
                "conditions": {"max_price": 10**9},
            },
        ],
    )
    env = {
        **FAST,
        "STEAMWATCH_SCHEDULER_TICK": "0.1",
        "STEAMWATCH_WATCHDOG_TICK": str(tick),
        "STEAMWATCH_BACKOFF_FLOOR": "0.1",
        "STEAMWATCH_BACKOFF_CAP": "0.3",
        "STEAMWATCH_RECOVERY_BASE": str(base),
        "STEAMWATCH_RECOVERY_FACTOR": "2",
        "STEAMWATCH_RECOVERY_CAP": str(cap),
    }
    for service in ("fetcher", "publisher", "watchdog", "scheduler"):
        system.start(service, **env)

    seen: dict[int, list[Seen]] = defaultdict(list)
    paused_at: dict[str, Any] = {}

    async def watch() -> bool:
        async with db.session_scope() as s:
            rows = (await s.scalars(select(Task).where(Task.lease_token.is_(None)))).all()
        for t in rows:
            if t.last_checked_at and (
                not seen[t.id] or seen[t.id][-1].checked_at != t.last_checked_at
            ):
                seen[t.id].append(
                    Seen(
                        t.last_checked_at,
                        t.next_check,
                        t.status,
                        t.recovery_attempts,
                        t.consecutive_errors,
                    )
                )
            if (
                t.id == paused
                and not paused_at
                and t.status == "stalled"
                and t.recovery_attempts == 1
            ):
                # Paused by its owner between two recovery attempts.
                async with db.session_scope() as s:
                    await s.execute(update(Task).where(Task.id == paused).values(status="paused"))
                stats = await sim_admin(system, "GET", "/__sim/stats?timestamps=0")
                paused_at.update(
                    at=datetime.now(UTC), requests=stats["totals"]["listings_render"]["seen"]
                )
        return any(t.id == failing and t.status == "failed" for t in rows)

    assert await until(watch, within=120, every=0.05), system.logs("fetcher")[-3000:]
    async with db.session_scope() as s:
        tasks = {t.id: t for t in (await s.scalars(select(Task))).all()}

    # The failing task: stalled after five failures, then ten recovery attempts on schedule.
    trail = [x for x in seen[failing] if x.status in ("stalled", "failed")]
    assert [x.recovery_attempts for x in trail] == list(range(11))
    assert [round(x.delay, 2) for x in trail[:-1]] == expected
    lateness = [
        (b.checked_at - a.next_check).total_seconds()
        for a, b in zip(trail, trail[1:], strict=False)
    ]
    print(
        f"recovery: delays {[round(x.delay, 2) for x in trail[:-1]]} s; each attempt "
        f"{min(lateness):.2f}-{max(lateness):.2f} s after it was due (tick {tick} s)"
    )
    assert all(0 <= late <= tick + 1.0 for late in lateness), lateness  # due, then one tick
    assert (tasks[failing].status, tasks[failing].recovery_attempts) == ("failed", 10)

    # The one that started answering during recovery: active again, counters reset.
    ok = [x for x in seen[recovering] if x.status == "active" and x.consecutive_errors == 0]
    assert ok, seen[recovering]
    last_failure = [x for x in seen[recovering] if x.status == "stalled"][-1]
    assert last_failure.recovery_attempts == 2 and last_failure.checked_at < ok[0].checked_at
    assert (tasks[recovering].status, tasks[recovering].recovery_attempts) == ("active", 0)

    # The paused one: not one more request for it reached Steam, and its row did not move.
    assert paused_at, "the paused task never reached its first recovery attempt"
    stats = await sim_admin(system, "GET", "/__sim/stats?timestamps=0")
    assert stats["totals"]["listings_render"]["seen"] == paused_at["requests"]
    assert tasks[paused].status == "paused" and tasks[paused].recovery_attempts == 1
    assert tasks[paused].last_checked_at is not None
    assert tasks[paused].last_checked_at < paused_at["at"]
    # ... while the failing task's recovery ran on for many more of its would-be attempts.
    assert (datetime.now(UTC) - paused_at["at"]).total_seconds() > 20

    async def alerted() -> bool:
        return any(e.kind == "failed" for e in await all_events(redis_url))

    assert await until(alerted, within=30)
    assert await until(lambda: _recovered_event(redis_url), within=30)
    kinds: dict[int, list[str]] = defaultdict(list)
    for event in await all_events(redis_url):
        if event.kind in ("stalled", "recovered", "failed"):
            kinds[event.task_id].append(event.kind)
    assert kinds == {
        failing: ["stalled", "failed"],
        recovering: ["stalled", "recovered"],
        paused: ["stalled"],
    }
    [alert] = [e for e in await all_events(redis_url) if e.kind == "failed"]
    assert alert.data["recovery_attempts"] == 10 and "HTTP 500" in alert.data["error"]
    async with db.session_scope() as s:
        snapshots = Counter((await s.scalars(select(PriceSnapshot.task_id))).all())
    assert snapshots[recovering] >= 1 and snapshots[failing] == 0 and snapshots[paused] == 0
    assert not SESSION_STATE_ERRORS.search(system.logs())
    assert system.unexpected_exits() == []


async def _recovered_event(redis_url: str) -> bool:
    return any(e.kind == "recovered" for e in await all_events(redis_url))


async def _truthy(value: bool) -> bool:
    return value
