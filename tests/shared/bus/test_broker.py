"""The broker's consumer never strands a message in a running worker's acknowledgement set.

A real dramatiq ``Worker`` (in this process, so the test knows its broker id) on a real Redis.
With dramatiq's own consumer, both tests below leave messages held by the worker and never
processed (checked by running them against ``RedisBroker``: they time out).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
import pytest
import redis
from dramatiq import Worker

from shared.bus import NAMESPACE, UNDECODABLE, Broker, create_broker
from steamwatch.embedded import EmbeddedRedis
from tests.fixtures.waiting import until_sync

QUEUE = "broker_test"


def _record(broker: Broker) -> list[int]:
    seen: list[int] = []
    lock = threading.Lock()

    def record(n: int) -> None:
        with lock:
            seen.append(n)

    dramatiq.actor(record, actor_name="record", queue_name=QUEUE, broker=broker, max_retries=0)
    return seen


@contextmanager
def _worker(broker: Broker) -> Iterator[Worker]:
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        broker.close()


def _push_raw(client: redis.Redis, data: bytes) -> str:
    """Put ``data`` on the queue exactly as dramatiq's enqueue would, whatever it is."""
    redis_id = str(uuid.uuid4())
    client.hset(f"{NAMESPACE}:{QUEUE}.msgs", redis_id, data)
    client.rpush(f"{NAMESPACE}:{QUEUE}", redis_id)
    return redis_id


def test_undecodable_data_is_dead_lettered_and_the_messages_behind_it_run(
    redis_url: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = create_broker(redis_url=redis_url)
    seen = _record(broker)
    client = redis.Redis.from_url(redis_url)
    envelope = json.loads(broker.actors["record"].message(0).encode())
    envelope["options"] = {}  # a well-formed envelope that dramatiq's Redis layer cannot name
    bad = [
        _push_raw(client, b"\x00\xff garbage, not JSON"),
        _push_raw(client, b'{"hello": "a JSON object, not a message"}'),
        _push_raw(client, json.dumps(envelope).encode()),
    ]
    for n in range(1, 9):  # prefetched together with the bad data
        broker.actors["record"].send(n)

    before = UNDECODABLE.labels(queue=QUEUE)._value.get()
    with caplog.at_level(logging.INFO), _worker(broker):
        assert until_sync(lambda: len(seen) == 8, within=20), seen
        assert until_sync(lambda: client.zcard(f"{NAMESPACE}:{QUEUE}.XQ") == 3, within=5)
        dead = {m.decode() for m in client.zrange(f"{NAMESPACE}:{QUEUE}.XQ", 0, -1)}
        assert dead == set(bad)
        assert client.scard(broker.acks_key(QUEUE)) == 0  # nothing left held by the worker
        assert client.llen(f"{NAMESPACE}:{QUEUE}") == 0

    assert sorted(seen) == list(range(1, 9))
    assert "Consumer encountered an unexpected error" not in caplog.text
    assert UNDECODABLE.labels(queue=QUEUE)._value.get() - before == 3
    # structlog prints, or goes through logging once a test configured it: either way, a line
    # per message moved.
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert logged.count("undecodable message moved to the dead letters") == 3, logged
    assert "no redis_message_id in its options" in logged


def test_messages_held_across_a_lost_connection_are_handed_back(
    own_redis: EmbeddedRedis,
) -> None:
    url = own_redis.start()
    broker = create_broker(redis_url=url)
    seen = _record(broker)
    client = redis.Redis.from_url(url)
    with _worker(broker):
        broker.actors["record"].send(1)
        assert until_sync(lambda: seen == [1], within=10)
        # A fetch whose reply the connection lost: in this worker's acknowledgement set, in
        # nobody's memory. dramatiq alone hands it back only once the worker is dead.
        lost = broker.actors["record"].message(2)
        redis_id = str(uuid.uuid4())
        lost = lost.copy(options={"redis_message_id": redis_id})
        client.hset(f"{NAMESPACE}:{QUEUE}.msgs", redis_id, lost.encode())
        client.sadd(broker.acks_key(QUEUE), redis_id)
        client.close()
        own_redis.stop()
        # Down until the worker's consumer has seen it (a restart quicker than its next fetch
        # goes unnoticed: redis-py reconnects on its own).
        assert until_sync(lambda: broker.lost(QUEUE), within=20)
        own_redis.start()
        assert until_sync(lambda: seen == [1, 2], within=20), seen
        client = redis.Redis.from_url(url)
        assert client.scard(broker.acks_key(QUEUE)) == 0
        client.close()
