"""One check, in this process, against real PostgreSQL, Redis and the simulator over HTTP.

Given a leased task, when `check_task` runs, I expect the task's row moved on, the answer stored,
the watch judged and its events on the stream, the outbox empty: rows and events, not log lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from prometheus_client import REGISTRY
from sqlalchemy import event, select, text

from services.fetcher.check import Fetcher, check_message, check_task
from shared.alerts import Event, read_events
from shared.bus import CheckMessage
from shared.db import Database, PriceSnapshot
from shared.observability import SecretURL
from shared.steam import Budget, ProxyPool, SteamClient, create_http_session
from simulator.config import LimitsConfig, SimulatorConfig
from simulator.proxy import LocalProxy
from simulator.server import run_simulator
from tests.fixtures.tasks import add_tasks, lease_task, read_task

BUDGETS = {e: Budget(limit=1000, window=60) for e in ("priceoverview", "listings", "orderbook")}


@dataclass
class Rig:
    fetcher: Fetcher
    redis: redis.asyncio.Redis
    item: str  # an item the simulator sells
    sim: str
    admin: aiohttp.ClientSession  # for the simulator's own endpoints

    async def events(self, task_id: int) -> list[Event]:
        """The task's events on the stream, oldest first."""
        found = await read_events(self.redis, count=10_000)
        return [e.event for e in found if e.event.task_id == task_id]

    async def outbox(self) -> int:
        async with self.fetcher.db.session_scope() as s:
            return int(await s.scalar(text("SELECT count(*) FROM event_outbox")) or 0)

    async def fault(self, **spec: object) -> None:
        async with self.admin.post(
            f"{self.sim}/__sim/faults", json={"faults": [spec], "replace": True}
        ) as r:
            assert r.status == 200, await r.text()

    async def seen(self, client: str) -> dict[str, int]:
        """What the simulator did for ``client`` (a proxy's source address): served, rate_limited."""
        async with self.admin.get(f"{self.sim}/__sim/stats") as r:
            endpoints = (await r.json())["clients"].get(client, {}).get("endpoints", {})
        return {
            what: sum(int(e[what]) for e in endpoints.values())
            for what in ("served", "rate_limited")
        }


@asynccontextmanager
async def _rig(db: Database, redis_url: str, proxies: list[str]) -> AsyncIterator[Rig]:
    config = SimulatorConfig(limits=LimitsConfig(enabled=False))
    async with run_simulator(config=config) as sim, aiohttp.ClientSession() as admin:
        client = redis.asyncio.Redis.from_url(redis_url)
        http = create_http_session(timeout=5.0)
        async with admin.get(f"{sim}/__sim/catalogue", params={"appid": "730"}) as r:
            items = (await r.json())["items"]
        name = next(i["market_hash_name"] for i in items if i["daily_volume"] > 0)
        urls = [SecretURL(url) for url in proxies]
        pool = ProxyPool.from_urls(client, urls, budgets=BUDGETS, slack=0)
        steam = SteamClient(http=http, pool=pool, base_url=sim)
        try:
            yield Rig(Fetcher(db=db, redis=client, steam=steam), client, name, sim, admin)
        finally:
            await http.close()
            await client.aclose()


@pytest.fixture
async def rig(db: Database, redis_url: str) -> AsyncIterator[Rig]:
    async with _rig(db, redis_url, ["direct"]) as rig:
        yield rig


@pytest.fixture
async def proxied(db: Database, redis_url: str) -> AsyncIterator[Rig]:
    """Two proxies, seen by the simulator as 127.0.0.2 (asked first: configured first) and
    127.0.0.3."""
    async with (
        LocalProxy(source_address="127.0.0.2") as first,
        LocalProxy(source_address="127.0.0.3") as second,
        _rig(db, redis_url, [first.url, second.url]) as rig,
    ):
        yield rig


async def _leased(
    db: Database, name: str, max_price: int = 1, owner: str = "alice"
) -> CheckMessage:
    [task_id] = await add_tasks(
        db,
        [
            {
                "owner": owner,
                "market_hash_name": name,
                "kind": "lowest_price",
                "conditions": {"max_price": max_price},
                "check_interval": 60,
            }
        ],
    )
    token = await lease_task(db, task_id, expired=False)
    return CheckMessage(task_id=task_id, lease_token=token)


async def test_a_check_stores_the_price_moves_the_task_on_and_tells_the_owner(
    rig: Rig, db: Database
) -> None:
    message = await _leased(db, rig.item, max_price=10_000_000)  # any price is under it
    before = datetime.now(UTC)

    reply = await check_task(rig.fetcher, message)

    assert reply is not None and reply.outcome == "ok"
    task = await read_task(db, message.task_id)
    assert task.lease_token is None  # released
    assert task.next_check > before  # the next check is ahead
    assert task.consecutive_errors == 0
    async with db.session_scope() as s:
        stored = (
            await s.scalars(select(PriceSnapshot).where(PriceSnapshot.task_id == task.id))
        ).all()
    assert len(stored) == 1
    assert stored[0].source == "priceoverview"
    assert stored[0].lowest_price is not None and stored[0].lowest_price > 0
    # Judged in the same transaction: the state moved, the alert is out, the outbox empty.
    assert task.condition_state is not None and task.condition_state["met"] is True
    [event] = await rig.events(task.id)
    assert event.kind == "price_at_or_below" and reply.events == (event,)
    assert event.id == f"{task.id}:{message.lease_token}:price"
    assert event.data["price"] == stored[0].lowest_price
    assert await rig.outbox() == 0 and reply.sent.published == 1


async def test_a_failed_check_counts_the_error_and_still_moves_the_task_on(
    rig: Rig, db: Database
) -> None:
    message = await _leased(db, "AK-47 | No Such Skin (Field-Tested)")
    before = datetime.now(UTC)

    reply = await check_task(rig.fetcher, message)

    assert reply is not None and reply.outcome == "error"
    task = await read_task(db, message.task_id)
    assert task.consecutive_errors == 1
    assert task.last_error is not None and "ItemNotFound" in task.last_error
    assert task.lease_token is None and task.next_check > before
    async with db.session_scope() as s:
        assert (
            await s.scalars(select(PriceSnapshot).where(PriceSnapshot.task_id == task.id))
        ).all() == []
    # Steam does not know the item (the market search confirms it): the owner hears it gave up.
    [event] = await rig.events(task.id)
    assert event.kind == "failed" and task.status == "failed"


async def test_an_item_steam_confirms_it_does_not_know_fails_the_watch_at_once(
    proxied: Rig, db: Database
) -> None:
    """Issue 19, 5: "no such item" is permanent once confirmed: a second proxy says so too,
    and Steam's market search, asked for the name, does not list it."""
    message = await _leased(db, "AK47 | Redline (Field Tested)")
    reply = await check_task(proxied.fetcher, message)
    assert reply is not None and reply.became_failed and reply.outcome == "error"
    task = await read_task(db, message.task_id)
    assert (task.status, task.consecutive_errors) == ("failed", 1)
    assert task.last_error is not None
    assert "market search does not list it" in task.last_error
    assert "AK47 | Redline (Field Tested)" in task.last_error
    [event] = await proxied.events(task.id)
    assert event.kind == "failed" and "market search does not list it" in event.data["error"]


async def test_steam_saying_no_such_item_of_an_item_it_lists_is_a_passing_failure(
    rig: Rig, db: Database
) -> None:
    """A glitch that answers {"success":false} for every item must never fail watches for
    good: the search still lists the item, so the check is an ordinary failure."""
    await rig.fault(mode="success_false", endpoints=["priceoverview"], duration_s=30)
    message = await _leased(db, rig.item)
    reply = await check_task(rig.fetcher, message)
    assert reply is not None and reply.outcome == "error" and not reply.became_failed
    task = await read_task(db, message.task_id)
    assert (task.status, task.consecutive_errors) == ("active", 1)
    assert "ItemNotFound" in (task.last_error or "") and "confirmed" not in (task.last_error or "")


async def test_a_check_under_a_superseded_lease_changes_nothing(rig: Rig, db: Database) -> None:
    message = await _leased(db, rig.item)
    await lease_task(db, message.task_id, expired=False)  # the watchdog re-leased it meanwhile
    task_before = await read_task(db, message.task_id)

    reply = await check_task(rig.fetcher, message)

    assert reply is None
    task = await read_task(db, message.task_id)
    assert task.lease_token == task_before.lease_token
    assert task.next_check == task_before.next_check
    assert task.condition_state is None  # its judgment vanished with it
    assert await rig.events(task.id) == [] and await rig.outbox() == 0


async def test_a_message_of_several_claims_checks_each_and_a_redelivery_redoes_only_held_leases(
    rig: Rig, db: Database
) -> None:
    claims = [await _leased(db, rig.item, 10_000_000, owner=f"owner{i}") for i in range(3)]
    [first, second, third] = claims
    await lease_task(db, third.task_id, expired=False)  # re-leased meanwhile: not this message's
    message = CheckMessage.batch([(c.task_id, c.lease_token) for c in claims])
    assert [c.task_id for c in message.claims()] == [c.task_id for c in claims]

    replies = await check_message(rig.fetcher, message)

    assert [r is not None and r.outcome for r in replies] == ["ok", "ok", False]
    for claim in (first, second):
        task = await read_task(db, claim.task_id)
        assert task.lease_token is None and task.condition_state is not None
        [event] = await rig.events(claim.task_id)
        assert event.id == f"{claim.task_id}:{claim.lease_token}:price"
    assert (await read_task(db, third.task_id)).condition_state is None
    async with db.session_scope() as s:
        rows = (await s.scalars(select(PriceSnapshot.task_id))).all()
    assert sorted(rows) == sorted([first.task_id, second.task_id])

    # dramatiq delivers it again (a worker died before its acknowledgement): every lease it
    # carried has moved on, so nothing is checked, stored or announced twice.
    again = await check_message(rig.fetcher, message)

    assert again == [None, None, None]
    async with db.session_scope() as s:
        assert len((await s.scalars(select(PriceSnapshot.task_id))).all()) == 2
    assert [len(await rig.events(c.task_id)) for c in claims] == [1, 1, 0]


def _retries() -> float:
    value = REGISTRY.get_sample_value(
        "steamwatch_steam_retries_total", {"endpoint": "priceoverview", "reason": "429"}
    )
    return value or 0.0


async def _stalled(db: Database, name: str) -> CheckMessage:
    """A stalled task on its fourth recovery attempt, leased by the watchdog."""
    [task_id] = await add_tasks(
        db,
        [
            {
                "market_hash_name": name,
                "kind": "lowest_price",
                "check_interval": 60,
                "status": "stalled",
                "consecutive_errors": 5,
                "recovery_attempts": 4,
            }
        ],
    )
    token = await lease_task(db, task_id, expired=False)
    return CheckMessage(task_id=task_id, lease_token=token, reason="recovery")


async def test_a_429_moves_the_check_to_another_proxy_and_spends_no_recovery_attempt(
    proxied: Rig, db: Database
) -> None:
    """Issue 19, 4: given a recovery check whose first proxy answers 429 while the other has
    budget, I expect the check answered through the other, the task recovered, the first proxy
    cooling down and one retry counted."""
    await proxied.fault(mode="rate_limit_storm", client="127.0.0.2", duration_s=60)
    message = await _stalled(db, proxied.item)
    retries = _retries()

    reply = await check_task(proxied.fetcher, message)

    assert reply is not None and reply.outcome == "ok" and reply.recovered
    task = await read_task(db, message.task_id)
    assert (task.status, task.consecutive_errors, task.recovery_attempts) == ("active", 0, 0)
    assert task.last_error is None
    assert await proxied.seen("127.0.0.2") == {"served": 0, "rate_limited": 1}
    assert await proxied.seen("127.0.0.3") == {"served": 1, "rate_limited": 0}
    pool = proxied.fetcher.steam.pool
    cooling = {row["proxy"]: row["cooldown_ms"] for row in await pool.state("priceoverview")}
    assert int(cooling[pool.proxies[0].label]) > 0  # type: ignore[call-overload]
    assert int(cooling[pool.proxies[1].label]) == 0  # type: ignore[call-overload]
    assert _retries() == retries + 1
    [event] = await proxied.events(task.id)
    assert event.kind == "recovered" and event.id == f"{task.id}:{message.lease_token}:recovered"


async def test_a_check_every_proxy_answers_429_fails_rate_limited_each_asked_once(
    proxied: Rig, db: Database
) -> None:
    await proxied.fault(mode="rate_limit_storm", duration_s=60)
    message = await _leased(db, proxied.item)
    retries = _retries()

    reply = await check_task(proxied.fetcher, message)

    assert reply is not None and reply.outcome == "error"
    task = await read_task(db, message.task_id)
    assert task.consecutive_errors == 1 and task.lease_token is None
    assert task.last_error is not None and task.last_error.startswith("RateLimited: ")
    for client in ("127.0.0.2", "127.0.0.3"):
        assert await proxied.seen(client) == {"served": 0, "rate_limited": 1}
    assert _retries() == retries + 1  # moved once, from the first proxy to the second


@pytest.mark.parametrize("family", ["legacy", "new"])
@pytest.mark.parametrize(
    ("kind", "conditions"),
    [
        ("lowest_price", {"max_price": 100_000}),
        ("new_listings", {"max_price": 100_000, "float_min": "0.15", "float_max": "0.3"}),
        ("order_book", {"sell_depth_count": 2, "sell_depth_price": 100_000}),
    ],
)
async def test_each_watch_kind_checks_on_each_family_in_steams_real_formats(
    db: Database, redis_url: str, family: str, kind: str, conditions: dict[str, object]
) -> None:
    """Issue 15: the simulator speaks the real shapes of both families; every kind works on
    each, the new market's listings filtered by Steam, the order book stored with its depth."""
    async with _rig(db, redis_url, ["direct"]) as rig:
        steam = rig.fetcher.steam
        steam.family = family  # type: ignore[assignment]
        steam.fallback = False
        item = "AK-47 | Redline (Field-Tested)"  # a grouped skin: the new market wants its group
        [task_id] = await add_tasks(
            db,
            [
                {
                    "market_hash_name": item,
                    "kind": kind,
                    "currency": 1,
                    "conditions": conditions,
                    "check_interval": 60,
                }
            ],
        )
        token = await lease_task(db, task_id, expired=False)
        reply = await check_task(rig.fetcher, CheckMessage(task_id=task_id, lease_token=token))
        assert reply is not None and reply.outcome == "ok", (
            await read_task(db, task_id)
        ).last_error
        async with db.session_scope() as s:
            (stored,) = (
                await s.scalars(select(PriceSnapshot).where(PriceSnapshot.task_id == task_id))
            ).all()
        assert stored.lowest_price is not None and stored.lowest_price > 0
        if kind == "new_listings":
            floats = [Decimal(entry["float_value"]) for entry in stored.listings or []]
            inside = [f for f in floats if Decimal("0.15") <= f <= Decimal("0.3")]
            # The legacy render has no filters (the publisher checks each row); the new market
            # is asked for the wear range, so it answers only rows inside it.
            assert inside and (inside == floats or family == "legacy")
        if kind == "order_book":
            assert stored.book is not None and stored.book["sells"][0][0] == stored.lowest_sell
            assert sum(q for _, q in stored.book["sells"]) <= (stored.sell_count or 0)


async def test_a_quiet_check_is_two_statements_and_no_transaction_around_them(
    rig: Rig, db: Database
) -> None:
    """Issue 16, the lean path: a check that raises nothing is its load and one statement that
    releases the lease and stores the row, each its own transaction (no BEGIN and COMMIT round
    trips), on a pooled connection that is not pinged."""
    warm = await _leased(db, rig.item)  # a first check opens the pool's connections
    assert await check_task(rig.fetcher, warm) is not None
    # Its next check (max_price 1: no price is under it, nothing to announce).
    message = CheckMessage(
        task_id=warm.task_id, lease_token=await lease_task(db, warm.task_id, expired=False)
    )
    statements: list[tuple[str, bool]] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        driver = conn.connection.dbapi_connection.driver_connection
        statements.append((statement.split()[0], driver.is_in_transaction()))

    engine = rig.fetcher.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", seen)
    try:
        reply = await check_task(rig.fetcher, message)
    finally:
        event.remove(engine, "after_cursor_execute", seen)

    assert reply is not None and reply.outcome == "ok" and reply.events == ()
    assert statements == [("SELECT", False), ("WITH", False)], statements
    task = await read_task(db, message.task_id)
    assert task.lease_token is None and task.condition_state == {
        "met": False,
        "checked_at": task.condition_state["checked_at"],  # type: ignore[index]
    }
    async with db.session_scope() as s:
        stored = (
            await s.scalars(
                select(PriceSnapshot)
                .where(PriceSnapshot.task_id == task.id)
                .order_by(PriceSnapshot.id)
            )
        ).all()
    assert [row.lease_token for row in stored] == [warm.lease_token, message.lease_token]
