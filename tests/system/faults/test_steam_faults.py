"""Steam misbehaves while checks flow: tasks back off, nothing spins, checks resume when it heals.

The services, the simulator and its proxies are real processes, started once for the module;
each test adds its own tasks and injects its fault into the simulator at run time
(``POST /__sim/faults``). Time is scaled so each scenario is short: the issue's minute-long
429 storm lasts 15 s here (1/4), the other faults 6 s, and every retry delay, cool-down and
recovery step is a few seconds (see ``ENV``). Every bound is derived from those settings.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text, update

from shared.db import Base, Database, Task
from steamwatch.dev import free_ports
from testbed.system import System
from tests.fixtures.invariants import verdict
from tests.fixtures.pipeline import FAST, catalogue, history
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until

INTERVAL = 2  # seconds between checks of a healthy task
FLOOR, CAP = 1.0, 4.0  # STEAMWATCH_BACKOFF_FLOOR / _CAP
RECOVERY_BASE, RECOVERY_FACTOR, RECOVERY_CAP = 2.0, 2.0, 4.0
COOLDOWNS = (2.0, 4.0, 8.0)  # a proxy's rest after its 1st, 2nd, 3rd and later 429s
HTTP_TIMEOUT = 1.0
PROXIES = 2
THREADS = 4  # one fetcher process, one check a message: at most 4 requests in flight at once
SCHEDULER_TICK, WATCHDOG_TICK = float(FAST["STEAMWATCH_SCHEDULER_TICK"]), 0.5
SLACK = 3.0  # claims, checks and commits on a busy two-core machine
ENV = {
    **FAST,
    "STEAMWATCH_WATCHDOG_TICK": str(WATCHDOG_TICK),
    "STEAMWATCH_WATCHDOG_GRACE": "3",
    "STEAMWATCH_LEASE_SECONDS": "10",
    "STEAMWATCH_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
    "STEAMWATCH_FETCHER_PROCESSES": "1",
    "STEAMWATCH_FETCHER_THREADS": str(THREADS),
    # One check a message: a thread then has one request out, and the storm's bound (requests
    # in flight per proxy opening) stays tighter than what a spinning fetcher would send.
    "STEAMWATCH_SCHEDULER_CHECKS_PER_MESSAGE": "1",
    "STEAMWATCH_BACKOFF_FLOOR": str(FLOOR),
    "STEAMWATCH_BACKOFF_CAP": str(CAP),
    "STEAMWATCH_RECOVERY_BASE": str(RECOVERY_BASE),
    "STEAMWATCH_RECOVERY_FACTOR": str(RECOVERY_FACTOR),
    "STEAMWATCH_RECOVERY_CAP": str(RECOVERY_CAP),
    "STEAMWATCH_RECOVERY_ATTEMPTS": "50",  # no task may give up for good within a test
    "STEAMWATCH_COOLDOWNS": ",".join(f"{c:g}" for c in COOLDOWNS),
}


# ---- the schedule the settings promise -----------------------------------------------------


def retry_delays() -> list[float]:
    """Seconds before each retry of a task that keeps failing: backoff, then recovery steps."""
    base = max(INTERVAL, FLOOR)
    delays = [min(base * 2 ** (k - 1), CAP) for k in range(1, 5)]  # failures 1-4: backoff
    delays.append(RECOVERY_BASE)  # the 5th stalls it; the watchdog's first attempt
    delays += [min(RECOVERY_BASE * RECOVERY_FACTOR**r, RECOVERY_CAP) for r in range(1, 50)]
    return delays


def delay_after(errors: int, status: str, recovery_attempts: int) -> float:
    """The retry delay the row's state after a failure asks for."""
    if status == "active":
        return min(max(INTERVAL, FLOOR) * 2 ** (errors - 1), CAP)
    if recovery_attempts == 0:
        return RECOVERY_BASE
    return min(RECOVERY_BASE * RECOVERY_FACTOR**recovery_attempts, RECOVERY_CAP)


def most_attempts(seconds: float) -> int:
    """The most failed attempts one task can make in ``seconds`` if it honours its backoff."""
    attempts, spent = 1, 0.0
    for delay in retry_delays():
        spent += delay
        if spent > seconds:
            break
        attempts += 1
    return attempts


LONGEST_DELAY = max(retry_delays())
# After Steam heals, a task is due again within its longest retry delay, is claimed within a
# tick (the scheduler's, or the watchdog's for a stalled one), and may wait out a proxy's
# cool-down (drawn at the fault's last moment) before it is sent.
RESUME = max(LONGEST_DELAY, max(COOLDOWNS)) + WATCHDOG_TICK + SCHEDULER_TICK + SLACK


# ---- what the test reads: the simulator, the fetcher's metrics and logs, the rows ----------


async def sim_totals(system: System) -> Counter[str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{system.sim_url}/__sim/stats", params={"timestamps": "0"}) as r:
            body = await r.json()
    out: Counter[str] = Counter()
    for counts in body["totals"].values():
        out.update(counts)
    return out


async def inject(system: System, **spec: Any) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{system.sim_url}/__sim/faults", json=spec) as r:
            assert r.status == 200, await r.text()


async def clear_faults(system: System) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{system.sim_url}/__sim/faults") as r:
            assert r.status == 200


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def metrics(port: int) -> Samples:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s series whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@dataclass(frozen=True)
class Failure:
    task_id: int
    at: datetime
    error: str


def failures(system: System, ids: list[int], since: datetime, until_: datetime) -> list[Failure]:
    """The fetcher's "check failed" log lines about ``ids`` between two moments."""
    out = []
    for entry in system.events("fetcher"):
        if entry.get("event") != "check failed":
            continue
        at = datetime.fromisoformat(entry["timestamp"])
        if entry["task_id"] in ids and since <= at <= until_:
            out.append(Failure(entry["task_id"], at, entry["error"]))
    return out


@dataclass
class Watch:
    """Each task's row as sampled after each failed check released it.

    Per task: (last_checked_at, next_check, consecutive_errors, status, recovery_attempts).
    """

    seen: dict[int, list[tuple[datetime, datetime, int, str, int]]]

    async def sample(self, db: Database, ids: list[int]) -> None:
        async with db.session_scope() as s:
            tasks = (await s.scalars(select(Task).where(Task.id.in_(ids)))).all()
        for t in tasks:
            if t.lease_token is not None or t.consecutive_errors == 0 or t.last_checked_at is None:
                continue
            rows = self.seen[t.id]
            if not rows or rows[-1][0] != t.last_checked_at:
                rows.append(
                    (
                        t.last_checked_at,
                        t.next_check,
                        t.consecutive_errors,
                        t.status,
                        t.recovery_attempts,
                    )
                )

    def short_retries(self) -> list[str]:
        """Failures whose next check came sooner than the backoff schedule says."""
        bad = []
        for task_id, rows in self.seen.items():
            for checked, next_check, errors, status, attempts in rows:
                wanted = delay_after(errors, status, attempts)
                got = (next_check - checked).total_seconds()
                # A deferral (no proxy free) may only push a retry later, never earlier.
                if got < wanted - 0.05:
                    bad.append(
                        f"task {task_id}: retry after {got:.2f}s, not {wanted:g}s "
                        f"(errors {errors}, {status})"
                    )
        return bad


@dataclass
class Rig:
    """One running system for the whole module: its services outlive each test's tasks."""

    system: System
    redis_url: str
    metrics_port: int  # the fetcher's /metrics


@pytest.fixture(scope="module")
def rig(
    database_url: str, server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    """The simulator without limits of its own, its proxies and the four services.

    Started once (each start costs seconds on a small machine); every test adds fresh tasks
    and retires the ones before it, and the invariants hold over the whole run.
    """
    redis_url = server_urls[1]
    asyncio.run(_empty_stores(database_url, redis_url))
    system = System(
        database_url=database_url,
        redis_url=redis_url,
        folder=tmp_path_factory.mktemp("steam-faults"),
    )
    try:
        system.start_simulator("--no-limits", proxies=PROXIES)
        [port] = free_ports(1)
        for service in ("fetcher", "publisher", "watchdog", "scheduler"):
            extra = {"STEAMWATCH_METRICS_PORT": str(port)} if service == "fetcher" else {}
            system.start(service, **ENV, **extra)
        yield Rig(system, redis_url, port)
    finally:
        system.stop_all()


async def _empty_stores(database_url: str, redis_url: str) -> None:
    db = Database.create(url=database_url, pool_size=1, max_overflow=0, pool_timeout=30)
    try:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.fixture
async def store(rig: Rig, database_url: str) -> AsyncIterator[Database]:
    """The database the rig's services use (not emptied: they are running on it)."""
    db = Database.create(url=database_url, pool_size=2, max_overflow=2, pool_timeout=30)
    try:
        yield db
    finally:
        await db.dispose()


async def fresh_tasks(db: Database, rig: Rig, count: int, owner: str) -> list[int]:
    """Retire every task so far, give ``owner`` ``count`` healthy ones, wait for two checks each."""
    async with db.session_scope() as s:
        await s.execute(update(Task).values(is_active=False))
    system = rig.system
    names = await catalogue(system, count)
    # Always met: each task's first check makes one event, so duplicates would show.
    ids = await add_tasks(
        db,
        [
            {
                "owner": owner,
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": INTERVAL,
                "conditions": {"max_price": 10**9},
            }
            for n in names
        ],
    )

    async def checked_twice() -> bool:
        runs = await history(db)
        return all(len(runs[t]) >= 2 for t in ids)

    async def serving() -> bool:
        try:
            return bool(await metrics(rig.metrics_port))
        except aiohttp.ClientError:
            return False

    assert await until(checked_twice, within=60), system.logs()[-3000:]
    assert await until(serving, within=30), system.logs("fetcher")[-3000:]
    return ids


async def resumed_after(db: Database, ids: list[int], healed: datetime) -> dict[int, float]:
    """Seconds from ``healed`` to each task's first successful check after it (absent: none)."""
    runs = await history(db)
    return {
        t: min((r.checked_at - healed).total_seconds() for r in runs[t] if r.checked_at > healed)
        for t in ids
        if any(r.checked_at > healed for r in runs[t])
    }


async def rows(db: Database, ids: list[int]) -> list[Task]:
    async with db.session_scope() as s:
        return list((await s.scalars(select(Task).where(Task.id.in_(ids)))).all())


# ---- the scenarios -----------------------------------------------------------------------------

STORM = 15.0  # the minute of 429s, scaled by 1/4
STORM_TASKS = 16


def storm_request_bound(seconds: float) -> int:
    """The most requests that can reach Steam in a storm of ``seconds`` if 429s cool proxies.

    A proxy opens again only after a cool-down at least as long as the ladder's next step, and
    every request it admits while open was in flight when its first 429 came back, so at most
    ``THREADS`` per opening.
    """
    openings, spent = 1, 0.0
    for step in range(1, 1000):
        spent += COOLDOWNS[min(step, len(COOLDOWNS)) - 1]
        if spent > seconds:
            break
        openings += 1
    return PROXIES * openings * THREADS


async def fault_window(db: Database, ids: list[int], seconds: float) -> Watch:
    """Sit out the fault's own duration, sampling the rows as each failure releases them."""
    watch = Watch(defaultdict(list))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await watch.sample(db, ids)
        await asyncio.sleep(0.1)
    return watch


async def wait_resumed(
    db: Database, rig: Rig, ids: list[int], watch: Watch, healed: datetime
) -> dict[int, float]:
    async def all_resumed() -> bool:
        await watch.sample(db, ids)
        return len(await resumed_after(db, ids, healed)) == len(ids)

    assert await until(all_resumed, within=RESUME + 10, every=0.2), rig.system.logs()[-3000:]
    return await resumed_after(db, ids, healed)


async def test_429_storm_cools_proxies_backs_tasks_off_and_checks_resume(
    store: Database, rig: Rig
) -> None:
    """Every client is refused with bare 429s for 15 s (the issue's minute, scaled by 1/4)."""
    ids = await fresh_tasks(store, rig, STORM_TASKS, owner="storm")
    before, metrics_before = await sim_totals(rig.system), await metrics(rig.metrics_port)
    began = datetime.now(UTC)
    await inject(rig.system, mode="rate_limit_storm", duration_s=STORM)  # ends by itself
    watch = await fault_window(store, ids, STORM)
    healed = datetime.now(UTC)
    during = await sim_totals(rig.system)
    resumed = await wait_resumed(store, rig, ids, watch, healed)

    refused = during["rate_limited"] - before["rate_limited"]  # no limits but the storm's
    bound, spin = storm_request_bound(STORM), STORM_TASKS * most_attempts(STORM)
    m = await metrics(rig.metrics_port)
    cooled = delta(m, metrics_before, "steamwatch_proxy_cooldowns_total")
    deferred = delta(m, metrics_before, "steamwatch_checks_total", outcome="deferred")
    tries = Counter(
        f.task_id for f in failures(rig.system, ids, began, healed + timedelta(seconds=1))
    )
    stalled = {t for t, seen in watch.seen.items() if any(r[3] == "stalled" for r in seen)}
    result = await verdict(store, rig.redis_url, rig.system, window=STORM + RESUME)
    print(
        f"\n429 storm {STORM:g}s on every client, {STORM_TASKS} tasks: {refused} requests reached "
        f"the simulator ({refused / STORM:.1f}/s; bound {bound} from the cool-downs, {spin} had "
        f"only the backoff held); {cooled:g} proxy cool-downs, {deferred:g} checks deferred, "
        f"{len(stalled)} tasks stalled; attempts per task at most {max(tries.values())} (bound "
        f"{most_attempts(STORM + 1)}); every task checked again within "
        f"{max(resumed.values()):.1f}s of the storm's end (bound {RESUME:.1f}s); {result}"
    )
    assert refused > 0
    assert refused <= bound, f"{refused} requests reached Steam in the storm: proxies kept sending"
    assert cooled > 0 and deferred > 0
    assert max(tries.values()) <= most_attempts(STORM + 1), tries
    assert watch.short_retries() == []
    assert max(resumed.values()) <= RESUME, resumed
    assert all(t.status == "active" and t.consecutive_errors == 0 for t in await rows(store, ids))
    assert result.problems == [], result


FAULT = 6.0  # seconds each fault lasts
FAULT_TASKS = 4


# html_error last: an HTML answer sets the legacy endpoints aside for ten minutes (by design),
# and the faults before it name the legacy endpoint's errors.
@pytest.mark.parametrize(
    ("spec", "error", "responses"),
    [
        pytest.param(
            {"mode": "http_5xx"},
            "Unavailable: steam priceoverview: unavailable (HTTP 5",
            "5xx",
            id="http_5xx",
        ),
        pytest.param(
            {"mode": "timeout", "delay_ms": HTTP_TIMEOUT * 3000},
            "Unavailable: steam priceoverview: unavailable: timed out",
            "timeout",
            id="timeout",
        ),
        pytest.param(
            {"mode": "malformed_json"},
            "BadResponse: steam priceoverview",
            "2xx",
            id="malformed_json",
        ),
        pytest.param({"mode": "null"}, "BadResponse: steam priceoverview", "2xx", id="null"),
        # Steam's {"success":false} on priceoverview means "no such item".
        pytest.param(
            {"mode": "success_false"},
            "ItemNotFound: steam priceoverview",
            "2xx",
            id="success_false",
        ),
        pytest.param({"mode": "html_error"}, "BadResponse: steam", "2xx", id="html_error"),
    ],
)
async def test_steam_fault_backs_off_without_spinning_and_checks_resume(
    store: Database, rig: Rig, spec: dict[str, Any], error: str, responses: str
) -> None:
    """Every request fails this way for 6 s; each task retries on its backoff schedule only."""
    ids = await fresh_tasks(store, rig, FAULT_TASKS, owner=spec["mode"])
    before = await metrics(rig.metrics_port)
    began = datetime.now(UTC)
    await inject(rig.system, **spec)
    watch = await fault_window(store, ids, FAULT)
    await clear_faults(rig.system)
    healed = datetime.now(UTC)
    resumed = await wait_resumed(store, rig, ids, watch, healed)

    # A request in flight when the fault is cleared may still fail up to a timeout later.
    window = FAULT + HTTP_TIMEOUT + 1
    failed = failures(rig.system, ids, began, began + timedelta(seconds=window))
    tries = Counter(f.task_id for f in failed)
    m = await metrics(rig.metrics_port)
    errors = delta(m, before, "steamwatch_checks_total", outcome="error")
    answered = delta(m, before, "steamwatch_steam_responses_total", status_class=responses)
    result = await verdict(store, rig.redis_url, rig.system, window=FAULT + RESUME)
    print(
        f"\n{spec['mode']} {FAULT:g}s, {FAULT_TASKS} tasks: {len(failed)} failed checks, per task "
        f"{sorted(tries.values())} (bound {most_attempts(window)}); checks{{outcome=error}} "
        f"+{errors:g}, steam_responses{{status_class={responses}}} +{answered:g}; every task "
        f"checked again within {max(resumed.values()):.1f}s of the fault's end (bound "
        f"{RESUME:.1f}s); {result}"
    )
    assert set(tries) == set(ids), f"not every task failed: {tries}"
    assert all(error in f.error for f in failed), [f.error for f in failed if error not in f.error]
    assert max(tries.values()) <= most_attempts(window), tries
    assert watch.short_retries() == []
    assert all(watch.seen[t] for t in ids)  # each failure left a next_check ahead (sampled)
    assert errors >= len(failed) and answered > 0
    assert max(resumed.values()) <= RESUME, resumed
    assert all(t.status == "active" and t.consecutive_errors == 0 for t in await rows(store, ids))
    assert result.problems == [], result
