"""The notifier as a real process: events from the stream to a real HTTP receiver, once each.

Given subscriptions in PostgreSQL and events on the Redis stream, I expect every event to
reach every matching subscription exactly once through the webhook receiver stand-in, which
fails on demand: retried on a 5xx or a timeout, held back by a 429's Retry-After, paused on
an "unauthorised", dead-lettered after the last attempt, and refused when it reaches inside.
"""

from __future__ import annotations

import json
from collections import Counter

import aiohttp
import redis.asyncio
from sqlalchemy import select, text

from shared.alerts import EVENTS_STREAM, Event
from shared.db import Database, Subscription
from simulator.receiver import ReceiverControl, read_records
from steamwatch.embedded import free_port
from testbed.system import System
from tests.fixtures.notify import (
    FAST_NOTIFIER,
    deliveries,
    event,
    notify_cli,
    publish_events,
    received,
    subscribe,
)
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until


async def test_every_event_reaches_every_matching_subscription_once(
    db: Database, system: System, redis_url: str
) -> None:
    _, url, record = system.start_receiver()
    [watched] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AK-47 | Redline (Field-Tested)",
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": {"max_price": 1},
            }
        ],
    )
    await subscribe(db, "alice", f"json://{url[7:]}/alice-all")
    await subscribe(db, "alice", f"json://{url[7:]}/alice-listings", kinds=("new_listing",))
    await subscribe(db, "alice", f"json://{url[7:]}/alice-one", task_id=watched)
    await subscribe(db, "bob", f"json://{url[7:]}/bob")
    paused = await subscribe(db, "alice", f"json://{url[7:]}/alice-paused")
    async with db.session_scope() as s:
        await s.execute(
            text("UPDATE subscriptions SET status = 'paused' WHERE id = :id"), {"id": paused}
        )
    events = [
        *(event(n, kind="price_at_or_below") for n in range(10)),
        *(event(n, kind="new_listing") for n in range(5)),
        *(event(n, task_id=watched) for n in range(100, 103)),
        *(event(n, owner="bob") for n in range(200, 204)),
        event(300, kind="stalled"),  # nobody asked for it
    ]
    system.start("notifier", **FAST_NOTIFIER)
    await publish_events(redis_url, events)
    ids = {e.id: e for e in events}
    alice = {i for i, e in ids.items() if e.owner == "alice" and e.kind != "stalled"}
    expected = {
        "/alice-all": alice,
        "/alice-listings": {i for i in alice if ids[i].kind == "new_listing"},
        "/alice-one": {i for i in alice if ids[i].task_id == watched},
        "/bob": {i for i, e in ids.items() if e.owner == "bob"},
        "/alice-paused": set(),
    }

    async def all_arrived() -> bool:
        return all(set(received(record, path)) == want for path, want in expected.items())

    assert await until(all_arrived, within=30), system.logs("notifier")[-3000:]
    for path in expected:
        counts = received(record, path)
        assert set(counts.values()) <= {1}, (path, counts)  # each once

    # A message arrives before its sender marks it sent: wait for the marks.
    async def all_marked() -> bool:
        return {r["status"] for r in await deliveries(db)} == {"sent"}

    assert await until(all_marked, within=30), await deliveries(db)
    rows = await deliveries(db)
    assert len(rows) == sum(len(v) for v in expected.values())


async def test_a_failing_destination_is_retried_until_it_answers(
    db: Database, system: System, redis_url: str
) -> None:
    _, url, record = system.start_receiver()
    control = ReceiverControl(url)
    control.set_mode(mode="status", status=503, count=3)
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    system.start("notifier", **FAST_NOTIFIER)
    [one] = [event(1)]
    await publish_events(redis_url, [one])

    async def sent() -> bool:
        return received(record)[one.id] == 1

    assert await until(sent, within=30), system.logs("notifier")[-3000:]
    answers = [r["status"] for r in read_records(record)]
    assert answers == [503, 503, 503, 200]
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("sent", 4)
    retried = [e for e in system.events("notifier") if e.get("event") == "send failed; will retry"]
    assert [e["error"] for e in retried] == ["503 Service Unavailable"] * 3
    assert all(e["delivery_id"] == row["id"] for e in retried)


async def test_a_destination_that_does_not_answer_in_time_is_retried(
    db: Database, system: System, redis_url: str
) -> None:
    _, url, record = system.start_receiver()
    ReceiverControl(url).set_mode(mode="timeout", hold=30, count=1)
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    system.start("notifier", **{**FAST_NOTIFIER, "STEAMWATCH_NOTIFY_TIMEOUT": "1"})
    one = event(1)
    await publish_events(redis_url, [one])

    async def sent() -> bool:
        return received(record)[one.id] == 1

    assert await until(sent, within=30), system.logs("notifier")[-3000:]
    retried = [e for e in system.events("notifier") if e.get("event") == "send failed; will retry"]
    assert [e["error"] for e in retried] == ["the service did not answer in time"]


async def test_a_429_storm_is_waited_out_and_the_rate_per_destination_never_exceeded(
    db: Database, system: System, redis_url: str
) -> None:
    _, url, record = system.start_receiver()
    control = ReceiverControl(url)
    # The service lets 2 a second through and says "Retry-After: 1" to the rest, for 6 s.
    control.set_mode(mode="rate_limit", limit=2, per=1, retry_after=1, seconds=6)
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    events = [event(n) for n in range(30)]
    # Two notifiers share the destination's rate (5 a second) through Redis.
    env = {**FAST_NOTIFIER, "STEAMWATCH_NOTIFY_RATES": "json=5/1"}
    system.start("notifier", **env, STEAMWATCH_NOTIFIER_CONSUMER="one")
    system.start("notifier", **env, STEAMWATCH_NOTIFIER_CONSUMER="two")
    await publish_events(redis_url, events)

    async def all_sent() -> bool:
        return set(received(record)) == {e.id for e in events}

    assert await until(all_sent, within=60), system.logs("notifier")[-3000:]
    assert set(received(record).values()) == {1}
    stats = control.stats(window=1.0)
    assert stats["max_in_window"] <= 5, stats  # every request, 429s included
    statuses = Counter(r["status"] for r in read_records(record))
    assert statuses[429] >= 1 and statuses[200] == 30, statuses
    waited = [
        e for e in system.events("notifier") if e.get("event") == "destination rate-limited us"
    ]
    assert waited and all(e["retry_after"] == 1.0 for e in waited)
    rows = await deliveries(db)
    assert max(r["attempts"] for r in rows) == 1  # a 429 is not a failed attempt


async def test_unauthorised_pauses_the_subscription_and_tells_its_owner(
    db: Database, system: System, redis_url: str, database_url: str
) -> None:
    _, url, record = system.start_receiver()
    control = ReceiverControl(url)
    control.set_mode(mode="status", status=401, paths=["/revoked"])
    revoked = await subscribe(db, "alice", f"json://{url[7:]}/revoked")
    await subscribe(db, "alice", f"json://{url[7:]}/ops", kinds=("subscription_paused",))
    system.start("notifier", **FAST_NOTIFIER)
    first, second = event(1), event(2)
    await publish_events(redis_url, [first])

    async def paused() -> bool:
        async with db.session_scope() as s:
            sub = await s.get(Subscription, revoked)
            return sub is not None and sub.status == "paused"

    assert await until(paused, within=30), system.logs("notifier")[-3000:]
    async with db.session_scope() as s:
        sub = await s.get(Subscription, revoked)
        assert sub is not None and sub.paused_reason == "the service answered 401 Unauthorized"
    client = redis.asyncio.Redis.from_url(redis_url)
    stream = await client.xrange(EVENTS_STREAM)
    await client.aclose()
    notices = [Event.from_json(f[b"event"]) for _, f in stream]
    [notice] = [e for e in notices if e.kind == "subscription_paused"]
    assert notice.data["subscription_id"] == revoked
    assert "401" in notice.data["reason"]

    async def owner_told() -> bool:
        return received(record, "/ops")[notice.id] == 1

    assert await until(owner_told, within=30)
    # Paused: a later event is not sent there; once fixed and resumed, the dead letter is.
    await publish_events(redis_url, [second])
    control.set_mode(mode="ok")
    listed = await notify_cli(database_url, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [dead] = json.loads(listed.stdout)
    assert (dead["event_id"], dead["last_error"]) == (
        first.id,
        "the service answered 401 Unauthorized",
    )
    assert url[7:] in dead["destination"]
    resumed = await notify_cli(database_url, "resume", str(revoked))
    assert resumed.returncode == 0, resumed.stderr
    retried = await notify_cli(database_url, "dlq", "retry", "--subscription", str(revoked))
    assert (retried.returncode, retried.stdout.strip()) == (0, "1 dead letter(s) queued again")

    async def resent() -> bool:
        return received(record, "/revoked")[first.id] == 1

    assert await until(resent, within=30)
    assert received(record, "/revoked")[second.id] == 0


async def test_after_the_last_attempt_a_delivery_is_dead_lettered_with_its_error(
    db: Database, system: System, redis_url: str, database_url: str
) -> None:
    _, url, record = system.start_receiver()
    control = ReceiverControl(url)
    control.set_mode(mode="status", status=500)
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    system.start("notifier", **FAST_NOTIFIER, STEAMWATCH_NOTIFY_MAX_ATTEMPTS="3")
    one = event(1)
    await publish_events(redis_url, [one])

    async def dead() -> bool:
        return [r["status"] for r in await deliveries(db)] == ["dead"]

    assert await until(dead, within=30), system.logs("notifier")[-3000:]
    [row] = await deliveries(db)
    assert row["attempts"] == 3
    assert row["last_error"] == "gave up after 3 attempts: 500 Internal Server Error"
    assert [r["status"] for r in read_records(record)] == [500, 500, 500]
    control.set_mode(mode="ok")
    retried = await notify_cli(database_url, "dlq", "retry", str(row["id"]))
    assert retried.returncode == 0, retried.stderr

    async def sent() -> bool:
        return received(record)[one.id] == 1

    assert await until(sent, within=30)
    missing = await notify_cli(database_url, "dlq", "retry", "999")
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "steamwatch: no such dead letter: 999",
    )


async def test_a_destination_inside_the_network_is_refused_at_send_time(
    db: Database, system: System, redis_url: str
) -> None:
    _, url, record = system.start_receiver()
    # Written while allowed (or resolving outside then); the notifier is not allowed now.
    sub = await subscribe(db, "alice", f"json://{url[7:]}/hook")
    env = {k: v for k, v in FAST_NOTIFIER.items() if k != "STEAMWATCH_NOTIFY_ALLOW_PRIVATE"}
    system.start("notifier", **env)
    await publish_events(redis_url, [event(1)])

    async def refused() -> bool:
        async with db.session_scope() as s:
            return (
                await s.scalar(select(Subscription.status).where(Subscription.id == sub))
            ) == "paused"

    assert await until(refused, within=30), system.logs("notifier")[-3000:]
    assert read_records(record) == []
    [row] = await deliveries(db)
    assert row["status"] == "dead" and "loopback" in row["last_error"]


async def test_a_malformed_stream_entry_is_acknowledged_logged_and_the_next_delivered(
    db: Database, system: System, redis_url: str
) -> None:
    _, url, record = system.start_receiver()
    await subscribe(db, "alice", f"json://{url[7:]}/hook")
    system.start("notifier", **FAST_NOTIFIER)
    client = redis.asyncio.Redis.from_url(redis_url)

    async def group_made() -> bool:
        return bool(await client.exists(EVENTS_STREAM))

    assert await until(group_made, within=30)
    await client.xadd(EVENTS_STREAM, {"event": b"{not json"})
    await client.xadd(EVENTS_STREAM, {"other": b"x"})
    good = event(1)
    await publish_events(redis_url, [good])

    async def sent() -> bool:
        return received(record)[good.id] == 1

    assert await until(sent, within=30), system.logs("notifier")[-3000:]
    pending = await client.xpending(EVENTS_STREAM, "steamwatch-notifier")
    await client.aclose()
    assert pending["pending"] == 0
    logged = [
        e for e in system.events("notifier") if e.get("event") == "stream entry is not an event"
    ]
    assert len(logged) == 2
    assert system.unexpected_exits() == []


async def test_a_destination_token_appears_in_no_log_line_cli_output_error_metric_or_row(
    db: Database, system: System, redis_url: str, database_url: str
) -> None:
    token = "S3cr3t-T0ken-4f9a"
    _, url, record = system.start_receiver()
    control = ReceiverControl(url)
    control.set_mode(mode="status", status=503, count=2)
    secret_url = f"json://bot:{token}@{url[7:]}/hook"
    env = {"STEAMWATCH_NOTIFY_ALLOW_PRIVATE": "true"}
    outputs = []
    added = await notify_cli(
        database_url,
        "add",
        "--owner",
        "alice",
        secret_url,
        "--kinds",
        "all",
        "--template",
        "{event_id}",
        **env,
    )
    outputs.append(added)
    assert added.returncode == 0, added.stderr
    again = await notify_cli(database_url, "add", "--owner", "alice", secret_url, **env)
    assert again.returncode == 2 and "already sends to" in again.stderr  # an error, masked
    outputs.append(again)
    refused = await notify_cli(database_url, "add", "--owner", "alice", secret_url)
    assert refused.returncode == 2 and "loopback" in refused.stderr
    outputs.append(refused)
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    system.start(
        "notifier",
        **{**FAST_NOTIFIER, "STEAMWATCH_METRICS_PORT": str(port), "STEAMWATCH_LOG_LEVEL": "DEBUG"},
    )
    one = event(1)
    await publish_events(redis_url, [one])

    async def sent() -> bool:
        return received(record)[one.id] == 1

    assert await until(sent, within=30), system.logs("notifier")[-3000:]
    [row] = read_records(record)[-1:]
    assert row["status"] == 200  # the token did reach the destination, as it must
    control.set_mode(mode="status", status=401)
    await publish_events(redis_url, [event(2)])

    async def paused() -> bool:
        return "subscription paused" in system.logs("notifier")

    assert await until(paused, within=30)
    for args in (
        ("list",),
        ("list", "--json"),
        ("dlq", "list"),
        ("dlq", "list", "--json"),
        ("test", "1"),
    ):
        outputs.append(await notify_cli(database_url, *args, **env))
    async with aiohttp.ClientSession() as http, http.get(metrics) as response:
        served = await response.text()
    async with db.session_scope() as s:
        stored = [tuple(r) for r in await s.execute(text("SELECT * FROM subscriptions"))]
        stored += [tuple(r) for r in await s.execute(text("SELECT * FROM deliveries"))]
    seen = {
        "notifier log": system.logs("notifier"),
        "cli": "\n".join(o.stdout + o.stderr for o in outputs),
        "metrics": served,
        "rows": repr(stored),
    }
    assert "subscription 1 added" in seen["cli"] and "json://bot:" in seen["cli"]
    assert "DEBUG" in seen["notifier log"].upper()
    assert {where: token in text_ for where, text_ in seen.items()} == dict.fromkeys(seen, False)
