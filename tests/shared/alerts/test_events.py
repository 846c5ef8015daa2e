"""Events against real Redis: one stream entry and one message per channel per event id."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.client import PubSub

from shared.alerts import (
    EVENTS_STREAM,
    SCHEMA_VERSION,
    SEEN_PREFIX,
    Event,
    EventError,
    OrderBookCondition,
    Signal,
    evaluate,
    owner_channel,
    publish,
    read_events,
    task_channel,
)
from shared.steam import Item, OrderBook

ITEM = Item(appid=730, market_hash_name="AK-47 | Redline (Field-Tested)", currency=3)
AT = datetime(2024, 5, 1, 4, 0, 12, 345678, tzinfo=UTC)
LEASE = uuid.UUID("5f0c6d3e-8a4b-4c1e-9d7a-0b1c2d3e4f50")


def price_event(task_id: int = 7, owner: str = "alice", key: str = "price") -> Event:
    signal = Signal("price_at_or_below", key, {"price": 1166, "price_text": "11,66€"})
    return Event.from_signal(
        signal, task_id=task_id, owner=owner, item=ITEM, lease_token=LEASE, at=AT
    )


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    c = redis.asyncio.Redis.from_url(redis_url)
    yield c
    await c.aclose()


async def subscribed(client: redis.asyncio.Redis, *channels: str) -> PubSub:
    """A PubSub whose subscriptions the server has confirmed, so nothing published is missed."""
    pubsub = client.pubsub()
    await pubsub.subscribe(*channels)
    confirmed = 0
    while confirmed < len(channels):
        message = await pubsub.get_message(timeout=5)
        assert message is not None, "no subscribe confirmation within 5 s"
        confirmed += message["type"] == "subscribe"
    return pubsub


async def messages_until(pubsub: PubSub, last: Event, channels: int) -> dict[str, list[str]]:
    """Every message per channel up to `last` arriving on all `channels` (order is per channel)."""
    received: dict[str, list[str]] = {}
    finished = 0
    while finished < channels:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None, "a published message did not arrive within 5 s"
        event = Event.from_json(message["data"])
        received.setdefault(message["channel"].decode(), []).append(event.id)
        finished += event.id == last.id
    return received


# --- the contract ------------------------------------------------------------------------------


def test_json_round_trip_keeps_every_field() -> None:
    event = price_event()
    assert Event.from_json(event.to_json()) == event
    assert Event.from_json(event.to_json().encode()) == event


def test_json_leads_with_the_schema_version() -> None:
    data = json.loads(price_event().to_json())
    assert next(iter(data)) == "schema" and data["schema"] == SCHEMA_VERSION == 1
    assert data == {
        "schema": 1,
        "id": f"7:{LEASE}:price",
        "kind": "price_at_or_below",
        "task_id": 7,
        "owner": "alice",
        "item": {"appid": 730, "market_hash_name": ITEM.market_hash_name, "currency": 3},
        "at": "2024-05-01T04:00:12.345678Z",
        "data": {"price": 1166, "price_text": "11,66€"},
    }


def test_an_order_book_event_names_the_sides_that_matched_and_how_they_combine() -> None:
    condition = OrderBookCondition(max_lowest_sell=150, min_highest_buy=80, match="all")
    book = OrderBook(currency=3, highest_buy=85, lowest_sell=140, buy_count=2, sell_count=5)
    (signal,) = evaluate(condition, book, None).signals
    event = Event.from_signal(signal, task_id=7, owner="bob", item=ITEM, lease_token=LEASE, at=AT)
    data = json.loads(event.to_json())["data"]
    assert (data["reasons"], data["match"]) == (["lowest_sell", "highest_buy"], "all")
    assert Event.from_json(event.to_json()) == event


def test_an_order_book_event_stored_before_reasons_and_match_still_reads() -> None:
    older = json.loads(price_event(key="book").to_json()) | {
        "kind": "order_book",
        "data": {"lowest_sell": 140, "highest_buy": 85, "max_lowest_sell": 150, "currency": 3},
    }
    event = Event.from_json(json.dumps(older))
    assert (event.kind, event.data["lowest_sell"]) == ("order_book", 140)
    assert "reasons" not in event.data and "match" not in event.data


def test_ids_are_deterministic_per_check_and_key() -> None:
    assert price_event().id == price_event().id
    other_check = Event.from_signal(
        Signal("price_at_or_below", "price", {}),
        task_id=7,
        owner="alice",
        item=ITEM,
        lease_token=uuid.uuid4(),
        at=AT,
    )
    assert other_check.id != price_event().id
    assert price_event(key="listing:1").id != price_event(key="listing:2").id


def test_task_events_take_their_occasion_into_the_id() -> None:
    stalled = Event.about_task(
        "stalled", task_id=3, owner="bob", item=ITEM, occasion=LEASE, at=AT, data={"errors": 5}
    )
    assert (stalled.id, stalled.kind, stalled.data) == (
        f"3:{LEASE}:stalled",
        "stalled",
        {"errors": 5},
    )


def test_times_are_kept_in_utc() -> None:
    local = AT.astimezone(timezone(timedelta(hours=3)))
    event = Event.from_signal(
        Signal("order_book", "book", {}), task_id=1, owner="o", item=ITEM, lease_token="t", at=local
    )
    assert event.at == AT and event.at.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone"):
        Event.about_task(
            "failed", task_id=1, owner="o", item=ITEM, occasion="x", at=datetime(2024, 1, 1)
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"schema": 2}, "schema"),
        ({"schema": None}, "schema"),
        ({"kind": "exploded"}, "kind"),
        ({"task_id": "7"}, "task_id"),
        ({"task_id": True}, "task_id"),
        ({"item": {"appid": 730}}, "item.market_hash_name"),
        ({"at": "yesterday"}, "at"),
        ({"at": "2024-05-01T04:00:12"}, "at: .*timezone"),
        ({"data": []}, "data"),
        ({"id": None}, "id"),
    ],
    ids=[
        "newer-schema",
        "no-schema",
        "unknown-kind",
        "task-id-string",
        "task-id-bool",
        "item-incomplete",
        "time-unreadable",
        "time-naive",
        "data-not-object",
        "id-missing",
    ],
)
def test_malformed_events_are_refused(change: dict[str, object], reason: str) -> None:
    data = json.loads(price_event().to_json()) | change
    with pytest.raises(EventError, match=reason):
        Event.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["", "[1]", "{"], ids=["empty", "array", "truncated"])
def test_non_objects_are_refused(text: str) -> None:
    with pytest.raises(EventError):
        Event.from_json(text)


# --- publishing --------------------------------------------------------------------------------


async def test_publishing_twice_yields_one_entry_and_one_message_per_channel(
    client: redis.asyncio.Redis,
) -> None:
    event, sentinel = price_event(), price_event(key="sentinel")
    pubsub = await subscribed(client, task_channel(7), owner_channel("alice"))
    try:
        # Given a message delivered twice, when both deliveries publish the same event,
        assert await publish(client, [event]) == [event]
        assert await publish(client, [event]) == []
        await publish(client, [sentinel])
        # I expect it once on each channel (the sentinel shows nothing else is still coming)
        received = await messages_until(pubsub, sentinel, channels=2)
    finally:
        await pubsub.aclose()
    assert received == {
        "steamwatch:task:7": [event.id, sentinel.id],
        "steamwatch:owner:alice": [event.id, sentinel.id],
    }
    # and once in the stream.
    assert [stored.event for stored in await read_events(client)] == [event, sentinel]


async def test_a_batch_publishes_each_id_once_and_says_which(client: redis.asyncio.Redis) -> None:
    first, second = price_event(key="listing:1"), price_event(key="listing:2")
    await publish(client, [first])
    published = await publish(client, [first, second, second])
    assert published == [second]
    assert await client.xlen(EVENTS_STREAM) == 2


async def test_concurrent_publishers_publish_once(redis_url: str) -> None:
    clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(8)]
    try:
        results = await asyncio.gather(*(publish(c, [price_event()]) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert sorted(len(r) for r in results) == [0] * 7 + [1]
    check = redis.asyncio.Redis.from_url(redis_url)
    assert await check.xlen(EVENTS_STREAM) == 1
    await check.aclose()


async def test_the_dedupe_marker_expires(client: redis.asyncio.Redis) -> None:
    event = price_event()
    await publish(client, [event], dedupe_ttl=3600)
    ttl = await client.ttl(SEEN_PREFIX + event.id)
    assert 0 < ttl <= 3600


async def test_the_stream_stays_capped(client: redis.asyncio.Redis) -> None:
    maxlen = 50
    # "MAXLEN ~" trims whole stream nodes only, so the length may exceed maxlen by one node.
    config: Any = await client.config_get("stream-node-max-entries")
    node = int(config["stream-node-max-entries"])
    events = [price_event(key=f"listing:{n}") for n in range(maxlen * 2 + node * 4)]
    for start in range(0, len(events), 50):
        await publish(client, events[start : start + 50], maxlen=maxlen)
    length = await client.xlen(EVENTS_STREAM)
    assert maxlen <= length <= maxlen + node
    newest: Any = await client.xrevrange(EVENTS_STREAM, count=1)
    assert Event.from_json(newest[0][1][b"event"]) == events[-1]


async def test_a_failed_append_leaves_the_event_publishable(client: redis.asyncio.Redis) -> None:
    event = price_event()
    await client.set(EVENTS_STREAM, "not a stream")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await publish(client, [event])
    assert not await client.exists(SEEN_PREFIX + event.id)
    await client.delete(EVENTS_STREAM)
    assert await publish(client, [event]) == [event]


# --- reading -----------------------------------------------------------------------------------


async def test_reading_resumes_after_the_last_stream_id(client: redis.asyncio.Redis) -> None:
    events = [price_event(key=f"k{n}") for n in range(3)]
    await publish(client, events)
    head = await read_events(client, count=2)
    assert [stored.event for stored in head] == events[:2]
    rest = await read_events(client, since=head[-1].stream_id)
    assert [stored.event for stored in rest] == events[2:]
    assert await read_events(client, since=rest[-1].stream_id) == []


async def test_a_blocking_read_returns_an_event_published_meanwhile(
    client: redis.asyncio.Redis,
) -> None:
    first, later = price_event(key="first"), price_event(key="later")
    await publish(client, [first])
    (stored,) = await read_events(client)
    waiting = asyncio.create_task(read_events(client, since=stored.stream_id, block=5))
    await publish(client, [later])
    assert [s.event for s in await asyncio.wait_for(waiting, 10)] == [later]


async def test_reading_works_with_decoded_responses(redis_url: str) -> None:
    decoding = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        await publish(decoding, [price_event()])
        (stored,) = await read_events(decoding)
    finally:
        await decoding.aclose()
    assert stored.event == price_event() and "-" in stored.stream_id
