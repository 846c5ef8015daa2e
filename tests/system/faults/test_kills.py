"""Services killed outright (SIGKILL) or stopped (SIGTERM) mid-run: nothing lost, nothing twice.

Every service, the simulator and its proxies are real processes (`steamwatch run …`), as each
Kubernetes pod runs them; the test kills them as the kernel or the kubelet would and starts
replacements as a Deployment would. Where the fetcher runs as two replicas, what a killed
worker held is taken over by a warm survivor and each bound is the settings' alone, not a cold
start on a busy machine.

Stores: unlike ``test_restarts`` no store is faulted here, so, as there for the store it does
not restart, they are the session's: a test database truncated and a Redis database flushed
for each test and used by nothing else meanwhile. A server of its own per test would add its
start-up to every test and prove nothing more, since these faults never touch the stores.

A dramatiq worker is killed while it holds messages: it is frozen (SIGSTOP) the moment its
acknowledgement set in Redis shows what the test waits for, so what it held is read exactly,
then killed where it stands. Every wait polls an observable state with a deadline derived from
the settings; the only fixed sleep is the fault's own duration (how long the killed scheduler
stays down). Each test ends with the shared :func:`~tests.fixtures.invariants.verdict`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psutil
import redis.asyncio
from sqlalchemy import select, text

from shared.db import Database, Task
from testbed.system import Proc, System
from tests.fixtures.invariants import verdict
from tests.fixtures.pipeline import FAST, all_events, catalogue, history, sim_admin
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until

SERVICES = ("fetcher", "publisher", "watchdog", "scheduler")
SLACK = 5.0  # seconds on top of each bound from the settings: polls, passes, a busy 2-core box
BASE = {**FAST, "STEAMWATCH_WORKER_SHUTDOWN_TIMEOUT": "3"}
ALWAYS = {"max_price": 10**9}  # met at every check: exactly one alert per task, at its first
ACKS = "steamwatch:__acks__."

Held = list[dict[str, Any]]  # the claims (task id, lease token) of the messages a worker held


# ----------------------------------------------------------------------------- helpers


def _pids(proc: Proc) -> set[int]:
    """The service's main process and, for a dramatiq service, its worker processes."""
    try:
        return {proc.process.pid} | {c.pid for c in psutil.Process(proc.process.pid).children()}
    except psutil.NoSuchProcess:
        return set()


async def _beats(redis_url: str, service: str) -> dict[int, str]:
    """pid -> heartbeat state of every live instance of ``service``."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"steamwatch:heartbeat:{service}:*")]
        raws = await client.mget(keys) if keys else []
    finally:
        await client.aclose()
    beats = [json.loads(r) for r in raws if r is not None]
    return {int(b["instance"].rsplit(":", 1)[1]): b["state"] for b in beats}


async def _ready(redis_url: str, *procs: Proc) -> bool:
    """Each service has said "ready" (a dramatiq service: from its worker process)."""
    for proc in procs:
        beats = await _beats(redis_url, proc.name)
        if not any(beats.get(pid) == "ready" for pid in _pids(proc)):
            return False
    return True


async def _start(
    system: System,
    redis_url: str,
    services: tuple[str, ...],
    env: dict[str, str],
    within: float = 90,
) -> tuple[list[Proc], float]:
    """Start ``services`` at once; returns them and the seconds until every one said ready."""
    started = time.monotonic()
    procs = [system.start(s, **env) for s in services]
    ready = await until(lambda: _ready(redis_url, *procs), within=within, every=0.1)
    assert ready, system.logs()[-3000:]
    return procs, time.monotonic() - started


async def _worker_pid(redis_url: str, proc: Proc) -> int:
    """The dramatiq worker process of ``proc``: the child that heart-beats as the service."""
    beats = await _beats(redis_url, proc.name)
    [pid] = [p for p in beats if p in _pids(proc) and p != proc.process.pid]
    return pid


async def _holders(redis_url: str, queue: str) -> dict[str, Held]:
    """Per dramatiq worker (its broker id): the messages of ``queue`` it fetched and has not
    acknowledged yet (dramatiq's ``<ns>:__acks__.<worker>.<queue>`` sets)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        out: dict[str, Held] = {}
        async for key in client.scan_iter(match=f"{ACKS}*.{queue}"):
            ids = list(await client.smembers(key))
            raws = await client.hmget(f"steamwatch:{queue}.msgs", ids) if ids else []
            # A check message may carry several claims: each is held alike.
            out[key.decode()[len(ACKS) : -len(queue) - 1]] = [
                claim
                for r in raws
                if r is not None
                for kwargs in [json.loads(r)["kwargs"]]
                for claim in [kwargs, *kwargs.get("also", [])]
            ]
        return out
    finally:
        await client.aclose()


async def _broker_of(redis_url: str, queue: str) -> str:
    """The broker id of the one worker consuming ``queue``, seen as soon as it holds a message."""
    seen: list[str] = []

    async def holding() -> bool:
        seen[:] = list(await _holders(redis_url, queue))
        return len(seen) == 1

    assert await until(holding, within=30, every=0.002)
    return seen[0]


async def _kill_holding(
    redis_url: str,
    queue: str,
    broker: str,
    pid: int,
    wanted: Callable[[Held], Awaitable[bool]],
    within: float = 30,
) -> Held | None:
    """SIGKILL worker ``pid`` (broker id ``broker``) at a moment it holds what ``wanted`` waits
    for; returns what it held (None: no such moment ``within`` seconds).

    Whenever it holds messages it is frozen (SIGSTOP) for ``wanted`` to look at it standing
    still: killed where it stands if that is the moment, let go on otherwise.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await _holders(redis_url, queue)).get(broker):
            os.kill(pid, signal.SIGSTOP)
            then = signal.SIGCONT  # let go on, unless this is the moment
            try:
                held = (await _holders(redis_url, queue)).get(broker, [])
                if held and await wanted(held):
                    then = signal.SIGKILL
                    return held
            finally:
                os.kill(pid, then)
        await asyncio.sleep(0.002)
    return None


async def _in_flight(system: System) -> int:
    """Requests the simulator holds now: checks waiting on Steam's answer."""
    return (await _at_steam(system))[0]


async def _at_steam(system: System) -> tuple[int, float]:
    """How many checks wait on Steam's answer now, and how long the longest has waited."""
    stats = await sim_admin(system, "GET", "/__sim/stats")
    t = stats["totals"]["priceoverview"]
    done = t["served"] + t["not_modified"] + t["rate_limited"] + t["faults"] + t["other"]
    waiting = int(t["seen"]) - int(done)
    seen = sorted(
        at
        for client in stats["clients"].values()
        for at in client["endpoints"].get("priceoverview", {}).get("seen_at", [])
    )
    # Every request takes the same latency, so the ones still waiting are the latest seen.
    return waiting, (stats["now"] - seen[-waiting]) if waiting > 0 else 0.0


async def _leases(db: Database) -> dict[int, Any]:
    async with db.session_scope() as s:
        rows = await s.execute(
            select(Task.id, Task.lease_token).where(Task.lease_token.is_not(None))
        )
        return {r.id: r.lease_token for r in rows}


async def _checked(db: Database, ids: Any, times: int = 1, since: datetime | None = None) -> bool:
    runs = await history(db)
    return all(
        sum(1 for r in runs[t] if since is None or r.checked_at > since) >= times for t in ids
    )


async def _unchecked(db: Database, ids: Any, since: datetime) -> list[int]:
    runs = await history(db)
    return sorted(t for t in ids if not any(r.checked_at > since for r in runs[t]))


def _alerts(events: list[Any]) -> Counter[int]:
    return Counter(e.task_id for e in events if e.kind == "price_at_or_below")


async def _all_alerted(redis_url: str, ids: Any) -> bool:
    return set(_alerts(await all_events(redis_url))) >= set(ids)


def _min_gap(runs: dict[int, list[Any]], ids: Any) -> float:
    """The shortest time between two checks of one task: under its interval, claimed twice."""
    gaps = [
        (b.checked_at - a.checked_at).total_seconds()
        for t in ids
        for a, b in zip(runs[t], runs[t][1:], strict=False)
    ]
    return min(gaps, default=float("inf"))


async def _checks_sent(redis_url: str) -> set[str]:
    """Lease tokens of every claim of every check message sent and not acknowledged yet."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        raws = await client.hvals("steamwatch:checks.msgs")
    finally:
        await client.aclose()
    messages = [json.loads(m)["kwargs"] for m in raws]
    return {str(c["lease_token"]) for m in messages for c in [m, *m.get("also", [])]}


def _logged_at(system: System, service: str, event: str) -> list[datetime]:
    """When ``service`` logged ``event`` (JSON lines)."""
    return [
        datetime.fromisoformat(json.loads(raw)["timestamp"])
        for raw in system.logs(service).splitlines()
        if f'"event": "{event}"' in raw
    ]


async def _exited(proc: Proc) -> bool:
    return proc.process.poll() is not None


# ----------------------------------------------------------------------------- kill -9


async def test_fetcher_worker_killed_mid_check_every_held_task_is_checked_again_once(
    db: Database, system: System, redis_url: str
) -> None:
    """Given one of two fetchers holding checks that wait on Steam, when its worker is
    SIGKILLed, I expect each check it held done again under a new lease once the old one
    expires (the watchdog re-sends it), every task alerted exactly once, and every task going
    on at its interval."""
    # Each fetcher prefetches 2 x threads checks: with two of them, each round is shared.
    tasks, threads, interval, latency, lease, tick = 24, 8, 4, 1.0, 5, 0.5
    env = {
        **BASE,
        "STEAMWATCH_LEASE_SECONDS": str(lease),
        "STEAMWATCH_WATCHDOG_TICK": str(tick),
        "STEAMWATCH_FETCHER_THREADS": str(threads),
    }
    system.start_simulator("--no-limits", "--latency-ms", str(int(latency * 1000)))
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": interval,
                "conditions": ALWAYS,
            }
            for n in await catalogue(system, tasks)
        ],
    )
    [fetcher, *_], _ = await _start(system, redis_url, SERVICES, env)
    broker = await _broker_of(redis_url, "checks")  # the first round: this fetcher alone
    await _start(system, redis_url, ("fetcher",), env)  # the Deployment's second replica
    assert await until(lambda: _checked(db, ids), within=30)
    worker = await _worker_pid(redis_url, fetcher)
    at_steam = 0

    async def mid_check(held: Held) -> bool:
        nonlocal at_steam
        if len(held) < 3:
            return False
        at_steam = await _in_flight(system)
        return at_steam >= 1

    fetcher.stopped_on_purpose = True
    held = await _kill_holding(redis_url, "checks", broker, worker, mid_check)
    assert held, "the fetcher never held checks at Steam"
    killed, killed_at = time.monotonic(), datetime.now(UTC)
    tokens = {h["task_id"]: h["lease_token"] for h in held}
    # Its main process sees a worker gone and exits, as the pod would; a replacement starts.
    assert await until(lambda: _exited(fetcher), within=30)
    system.start("fetcher", **env)

    # Each lease runs out (it was taken before the kill), the next watchdog pass re-sends the
    # check, the surviving replica asks Steam: its threads, after the round they find running.
    waves = -(-len(held) // threads) + 1
    bound = lease + tick + waves * latency + SLACK
    assert await until(
        lambda: _checked(db, tokens, since=killed_at), within=bound + 10, every=0.1
    ), f"held by the killed worker, never checked again: {await _unchecked(db, tokens, killed_at)}"
    took = time.monotonic() - killed
    runs = await history(db)
    again = {t: next(r for r in runs[t] if r.checked_at > killed_at) for t in tokens}
    assert await until(lambda: _checked(db, ids, since=killed_at), within=interval + 10)
    assert await until(lambda: _all_alerted(redis_url, ids), within=15)
    events = await all_events(redis_url)
    runs = await history(db)
    result = await verdict(db, redis_url, system, window=bound + 1)
    print(
        f"\nkill -9 of a fetcher worker holding {len(held)} checks ({at_steam} checks waiting "
        f"on Steam): each checked again under a new lease {took:.1f} s after the kill (bound "
        f"{bound:g} s = lease {lease} + tick {tick} + {waves} x latency {latency:g} + "
        f"{SLACK:g}); {sum(_alerts(events).values())} alerts for {tasks} tasks; closest two "
        f"checks of a task {_min_gap(runs, ids):.2f} s apart (interval {interval}); {result}"
    )
    assert took <= bound, (took, bound)
    assert all(str(again[t].lease_token) != tokens[t] for t in tokens)  # the killed ones died
    assert _alerts(events) == Counter({t: 1 for t in ids})  # none lost, none twice
    assert _min_gap(runs, ids) >= interval - 0.5  # no task checked twice for one due time
    assert "lease_expired" in system.logs("watchdog")
    assert result.problems == [], result


async def _outboxed(db: Database, ids: Any) -> set[int]:
    """Of tasks ``ids``, those with events in the outbox: committed with their check, not yet
    published and deleted by it."""
    async with db.session_scope() as s:
        rows = await s.scalars(
            text("SELECT DISTINCT task_id FROM event_outbox WHERE task_id = ANY(:ids)"),
            {"ids": list(ids)},
        )
        return set(rows)


async def test_fetcher_worker_killed_between_commit_and_publish_every_alert_out_exactly_once(
    db: Database, system: System, redis_url: str
) -> None:
    """Given bursts of first checks (each due one alert), when the fetcher's worker is SIGKILLed
    at a moment checks it holds are committed with their events in the outbox but not yet
    published by it, I expect the publisher to send what it left, the checks it had not
    committed done again, every alert published exactly once, and each alert's id naming the
    one check that made it."""
    burst, waves, latency, lease, tick = 30, 8, 0.5, 4, 0.5
    env = {
        **BASE,
        "STEAMWATCH_LEASE_SECONDS": str(lease),
        "STEAMWATCH_WATCHDOG_TICK": str(tick),
        "STEAMWATCH_FETCHER_THREADS": "64",
        "STEAMWATCH_PUBLISHER_TICK": "0.5",
    }
    system.start_simulator("--no-limits", "--latency-ms", str(int(latency * 1000)))
    names = await catalogue(system, burst * waves)
    [fetcher, *_], _ = await _start(system, redis_url, SERVICES, env)
    worker = await _worker_pid(redis_url, fetcher)
    ids: list[int] = []
    broker: str | None = None

    async def committed_not_published(held: Held) -> bool:
        return bool(await _outboxed(db, {h["task_id"] for h in held}))

    fetcher.stopped_on_purpose = True
    held: Held | None = None
    for wave in range(waves):
        # An owner imports a watch list: each first check is due one alert, all in a burst.
        ids += await add_tasks(
            db,
            [
                {
                    "market_hash_name": n,
                    "kind": "lowest_price",
                    "check_interval": 3600,
                    "conditions": ALWAYS,
                }
                for n in names[wave * burst : (wave + 1) * burst]
            ],
        )
        broker = broker or await _broker_of(redis_url, "checks")
        held = await _kill_holding(
            redis_url, "checks", broker, worker, committed_not_published, within=latency + 3
        )
        if held:
            break
    assert held, f"in {waves} bursts the fetcher was never caught between commit and publish"
    killed = time.monotonic()
    left = await _outboxed(db, ids)  # committed with the check; the worker died before sending
    assert await until(lambda: _exited(fetcher), within=30)
    system.start("fetcher", **env)

    # What was committed goes out through the publisher (a tick, once older than the fast
    # path's moment); what was held uncommitted waits for its lease, and is checked again.
    bound = lease + tick + latency + SLACK
    assert await until(lambda: _all_alerted(redis_url, ids), within=bound + 10, every=0.1), (
        f"no alert for {sorted(set(ids) - set(_alerts(await all_events(redis_url))))}; "
        f"held {sorted(h['task_id'] for h in held)}"
    )
    took = time.monotonic() - killed
    events = await all_events(redis_url)
    runs = await history(db)
    result = await verdict(db, redis_url, system, window=bound)
    print(
        f"\nkill -9 of a fetcher worker holding {len(held)} checks, {len(left)} of them "
        f"committed with their events unpublished (burst {wave + 1}, {burst} tasks each): every alert "
        f"out {took:.1f} s after the kill (bound {bound:g} s); "
        f"{sum(_alerts(events).values())} alerts for {len(ids)} tasks; {result}"
    )
    assert left and took <= bound, (left, took, bound)
    assert _alerts(events) == Counter({t: 1 for t in ids})  # none lost, none twice
    for event in (e for e in events if e.kind == "price_at_or_below"):
        [check] = runs[event.task_id]  # one check each: its lease token names the alert
        assert event.id == f"{event.task_id}:{check.lease_token}:price", event.id
    assert '"outbox drained"' in system.logs("publisher")
    assert result.problems == [], result


async def test_scheduler_killed_mid_send_leaves_no_lease_behind_and_claims_nothing_twice(
    db: Database, system: System, redis_url: str
) -> None:
    """Given a burst of due tasks being sent, when the scheduler's process group is SIGKILLed
    between its claim and its last send, and a new scheduler starts a moment later, I expect
    each lease it never sent re-sent by the watchdog once expired, every task checked exactly
    once per due time, and no lease held past its expiry by more than a watchdog pass."""
    background, burst, interval, down, lease, tick, grace = 20, 60, 3, 2.0, 6, 0.5, 1.0
    env = {
        **BASE,
        "STEAMWATCH_LEASE_SECONDS": str(lease),
        "STEAMWATCH_WATCHDOG_TICK": str(tick),
        "STEAMWATCH_WATCHDOG_GRACE": str(grace),
        "STEAMWATCH_FETCHER_THREADS": "32",
        # Batches of two: 30 messages for the burst, a send long enough to be killed in.
        "STEAMWATCH_SCHEDULER_CHECKS_PER_MESSAGE": "2",
    }
    system.start_simulator("--no-limits")
    names = await catalogue(system, background + burst)
    steady = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": interval,
                "conditions": ALWAYS,
            }
            for n in names[:background]
        ],
    )
    [*_, scheduler], _ = await _start(system, redis_url, SERVICES, env)
    assert await until(lambda: _checked(db, steady), within=30)
    # An owner imports a watch list; the scheduler claims it in one tick and sends it message
    # by message. Killed the moment the claim is committed: mid-send.
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": ALWAYS,
            }
            for n in names[background:]
        ],
    )

    async def burst_claimed() -> bool:
        return bool(set(await _leases(db)) & set(ids))

    assert await until(burst_claimed, within=10, every=0.002)
    scheduler.stopped_on_purpose = True
    os.killpg(scheduler.process.pid, signal.SIGKILL)
    killed, killed_at = time.monotonic(), datetime.now(UTC)
    held = await _leases(db)
    sent = await _checks_sent(redis_url)  # then the checks done: a message is acked after
    sent |= {str(r.lease_token) for runs in (await history(db)).values() for r in runs}
    orphans = {t: token for t, token in held.items() if str(token) not in sent}
    assert await until(lambda: _exited(scheduler), within=10)
    # Every lease, first and last seen from the kill on: none may outlive its expiry by a pass.
    seen: dict[Any, list[float]] = {token: [killed, killed] for token in held.values()}

    async def watch_leases() -> None:
        while True:
            now = time.monotonic()
            for token in (await _leases(db)).values():
                seen.setdefault(token, [now, now])[1] = now
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch_leases())
    bound = lease + tick + SLACK  # an orphan's lease was taken just before the kill
    try:
        await asyncio.sleep(down)  # the fault: no scheduler at all for a while
        _, boot = await _start(system, redis_url, ("scheduler",), env)
        assert await until(
            lambda: _checked(db, orphans, since=killed_at), within=bound + 10, every=0.1
        ), f"leased, never sent, never checked: {await _unchecked(db, orphans, killed_at)}"
        took = time.monotonic() - killed
        assert await until(lambda: _checked(db, ids), within=30, every=0.1)
        now = datetime.now(UTC)  # and the steady ones go on at their interval
        assert await until(lambda: _checked(db, steady, since=now), within=15)
        assert await until(lambda: _all_alerted(redis_url, ids + steady), within=15)
    finally:
        watcher.cancel()
    async with db.session_scope() as s:
        expired = await s.scalar(text("SELECT count(*) FROM tasks WHERE lease_expires_at < now()"))
    longest = max(last - first for first, last in seen.values())
    runs = await history(db)
    events = await all_events(redis_url)
    result = await verdict(db, redis_url, system, window=bound)
    print(
        f"\nkill -9 of the scheduler mid-send: {len(held)} leases at the kill, "
        f"{len(held) - len(orphans)} sent, {len(orphans)} never sent; those checked "
        f"{took:.1f} s after the kill (bound {bound:g} s = lease {lease} + tick {tick} + "
        f"{SLACK:g}); longest a lease was held {longest:.1f} s; a new scheduler up "
        f"{boot:.1f} s after {down:g} s down; the burst of {burst} checked "
        f"{dict(Counter(len(runs[t]) for t in ids))} (times: tasks); closest two checks "
        f"{_min_gap(runs, steady):.2f} s apart (interval {interval}); {result}"
    )
    assert orphans, "the kill came after the last send: nothing was left unsent"
    assert took <= bound, (took, bound)
    assert longest <= bound, longest  # held at most until it expired and a pass re-sent it
    assert expired == 0  # none left behind
    assert all(len(runs[t]) == 1 for t in ids)  # claimed once each, however it got sent
    assert _min_gap(runs, steady) >= interval - 0.5
    assert _alerts(events) == Counter({t: 1 for t in ids + steady})
    assert result.problems == [], result


# ----------------------------------------------------------------------------- SIGTERM


async def test_sigterm_to_every_service_mid_check_exits_cleanly_and_a_restart_loses_nothing(
    db: Database, system: System, redis_url: str
) -> None:
    """Given checks waiting on a slow Steam, when every service gets SIGTERM at once (a
    rollout, a node drain), I expect each to exit 0 within its shutdown timeout, each check in
    flight either finished or handed back under its lease, and, once all are started again,
    the handed-back checks done under those leases, every alert published exactly once."""
    tasks, interval, latency, shutdown, lease, tick = 24, 4, 4.0, 1.5, 30, 0.5
    env = {
        **BASE,
        "STEAMWATCH_LEASE_SECONDS": str(lease),
        "STEAMWATCH_WATCHDOG_TICK": str(tick),
        "STEAMWATCH_FETCHER_THREADS": "32",
        "STEAMWATCH_WORKER_SHUTDOWN_TIMEOUT": str(shutdown),
    }
    system.start_simulator("--no-limits", "--latency-ms", str(int(latency * 1000)))
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": interval,
                "conditions": ALWAYS,
            }
            for n in await catalogue(system, tasks)
        ],
    )
    procs, _ = await _start(system, redis_url, SERVICES, env)
    assert await until(lambda: _checked(db, ids), within=30)
    assert await until(lambda: _all_alerted(redis_url, ids), within=15)

    async def round_at_steam() -> bool:
        # Mid-run: most tasks' next check has just reached Steam, so none can finish within
        # the worker shutdown timeout.
        waiting, longest = await _at_steam(system)
        return waiting >= tasks * 2 // 3 and longest <= latency - shutdown - 1.5

    assert await until(round_at_steam, within=2 * (interval + latency) + 10, every=0.05)
    held = await _leases(db)
    signalled, stopped_at = time.monotonic(), datetime.now(UTC)
    for proc in procs:
        proc.stopped_on_purpose = True
        proc.process.send_signal(signal.SIGTERM)  # to the main process, as the kubelet does

    async def exit_of(proc: Proc) -> tuple[int, float]:
        code = await asyncio.to_thread(proc.process.wait, 60)
        return code, round(time.monotonic() - signalled, 1)

    exits = dict(zip(SERVICES, await asyncio.gather(*(exit_of(p) for p in procs)), strict=True))
    runs = await history(db)
    finished = {t for t, token in held.items() if any(r.lease_token == token for r in runs[t])}
    handed_back = {t: token for t, token in (await _leases(db)).items() if held.get(t) == token}
    async with db.session_scope() as s:  # cut short by a shutdown is no failure
        errors = await s.scalar(text("SELECT max(consecutive_errors) FROM tasks"))
    _, boot = await _start(system, redis_url, SERVICES, env)
    restarted = time.monotonic()
    bound = latency + SLACK  # the handed-back messages wait in the queue for the new fetcher
    assert await until(
        lambda: _checked(db, handed_back, since=stopped_at), within=bound + 10, every=0.1
    ), f"handed back, never checked again: {await _unchecked(db, handed_back, stopped_at)}"
    redone = time.monotonic() - restarted
    assert await until(lambda: _checked(db, ids, since=stopped_at), within=interval + 10)
    events = await all_events(redis_url)
    runs = await history(db)
    again = {t: next(r for r in runs[t] if r.checked_at > stopped_at) for t in handed_back}
    result = await verdict(db, redis_url, system, window=restarted - signalled + bound)
    print(
        f"\nSIGTERM to every service with {len(held)} checks leased at a {latency:g} s Steam: "
        f"exits (code, s) {exits} (worker shutdown timeout {shutdown:g} s); {len(finished)} "
        f"checks finished in the drain, {len(handed_back)} handed back; all up again "
        f"{boot:.1f} s after the restart, the handed-back ones done {redone:.1f} s after it "
        f"(bound {bound:g} s = latency {latency:g} + {SLACK:g}); {sum(_alerts(events).values())} "
        f"alerts for {tasks} tasks; {result}"
    )
    assert all(code == 0 for code, _ in exits.values()), exits
    assert all(took <= shutdown + SLACK for _, took in exits.values()), exits
    assert finished | set(handed_back) == set(held)  # none dropped with its lease
    assert handed_back, "every check finished before its worker stopped: none was cut short"
    assert errors == 0
    assert redone <= bound, (redone, bound)
    assert all(str(again[t].lease_token) == str(handed_back[t]) for t in handed_back)  # as handed
    assert _min_gap(runs, ids) >= interval - 0.5  # none checked twice
    assert _alerts(events) == Counter({t: 1 for t in ids})
    assert '"unfinished messages handed back to the queue"' in system.logs("fetcher")
    assert result.problems == [], result
