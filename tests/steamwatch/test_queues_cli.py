"""`steamwatch queues` as a real process, over queues filled by dramatiq's own Redis broker.

Given known numbers of ready, delayed, in-progress and dead messages, I expect the command to
report exactly those; given dead letters, I expect to see why each died, to send them back
with fresh retries, or to drop them, and an id that is not there to change nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from shared.bus import (
    CHECK_ACTOR,
    CHECKS_QUEUE,
    RESULT_ACTOR,
    RESULTS_QUEUE,
    CheckMessage,
    create_broker,
)
from shared.bus.deadletters import DeadLetter
from steamwatch.queues import _entry, _letter_lines

ROOT = Path(__file__).resolve().parents[2]


async def steamwatch(
    redis_url: str, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process with only this Redis configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    env.update(STEAMWATCH_REDIS_URL=redis_url, COLUMNS="200")
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "steamwatch", *args],
        env=env,
        cwd=ROOT,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    broker = create_broker(redis_url=redis_url)
    for queue in (CHECKS_QUEUE, RESULTS_QUEUE):
        broker.declare_queue(queue)
    yield broker
    broker.client.connection_pool.disconnect()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def message(
    queue: str, task_id: int, *, sent_ms: int | None = None, **options: Any
) -> dramatiq.Message[Any]:
    actor = CHECK_ACTOR if queue == CHECKS_QUEUE else RESULT_ACTOR
    fields: dict[str, Any] = {"message_timestamp": sent_ms} if sent_ms is not None else {}
    return dramatiq.Message(
        queue_name=queue,
        actor_name=actor,
        args=(),
        kwargs={"task_id": task_id, "lease_token": str(uuid.uuid4())},
        options=dict(options),
        **fields,
    )


def take(consumer: dramatiq.Consumer, n: int, timeout: float = 10) -> list[dramatiq.MessageProxy]:
    """``n`` messages from ``consumer``, unacknowledged (a consumer yields None while it polls)."""
    taken: list[dramatiq.MessageProxy] = []
    deadline = time.monotonic() + timeout
    while len(taken) < n:
        assert time.monotonic() < deadline, f"got {len(taken)} of {n} messages"
        proxy = next(consumer)
        if proxy is not None:
            taken.append(proxy)
    return taken


def dead_letters(broker: RedisBroker, queue: str, *messages: dramatiq.Message[Any]) -> list[str]:
    """Enqueue these and nack them as a worker does when retries run out; their entry ids."""
    sent = [broker.enqueue(m) for m in messages]
    consumer = broker.consume(queue, prefetch=len(sent), timeout=100)
    try:
        for proxy in take(consumer, len(sent)):
            consumer.nack(proxy)
    finally:
        consumer.close()
    return [m.options["redis_message_id"] for m in sent]


def fill(
    broker: RedisBroker,
    queue: str,
    *,
    ready: int,
    delayed: int,
    in_progress: int,
    dead: int,
    first_ready_sent_ms: int | None = None,
) -> dramatiq.Consumer:
    """Put exactly these numbers in ``queue``; the returned consumer holds the in-progress ones."""
    held = in_progress + dead
    for i in range(held):
        broker.enqueue(message(queue, 100 + i))
    consumer = broker.consume(queue, prefetch=held, timeout=100)
    for proxy in take(consumer, held)[:dead]:
        consumer.nack(proxy)
    for i in range(delayed):
        broker.enqueue(message(queue, 200 + i), delay=60_000)
    for i in range(ready):
        broker.enqueue(message(queue, 300 + i, sent_ms=first_ready_sent_ms if i == 0 else None))
    return consumer


def row(table: str, first_cell: str) -> list[str]:
    """The cells of the rich table row that starts with ``first_cell``."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{table}")


async def test_counts_are_exactly_what_the_broker_holds(
    broker: RedisBroker, redis_url: str
) -> None:
    # Given both queues filled with different numbers; the first ready check sent 90 s ago.
    before = time.time()
    backdated_ms = int(before * 1000) - 90_000
    held = [
        fill(
            broker,
            CHECKS_QUEUE,
            ready=5,
            delayed=3,
            in_progress=2,
            dead=4,
            first_ready_sent_ms=backdated_ms,
        ),
        fill(broker, RESULTS_QUEUE, ready=2, delayed=1, in_progress=3, dead=1),
    ]
    filled = time.time()
    try:
        # When I ask for the counts as JSON, then as a table.
        started = time.time()
        as_json = await steamwatch(redis_url, "queues", "--json")
        as_table = await steamwatch(redis_url, "queues")
        finished = time.time()
    finally:
        for consumer in held:
            consumer.close()

    # I expect exactly those numbers, and ages no younger than the messages are.
    assert as_json.returncode == 0, as_json.stderr
    stats = {s["queue"]: s for s in json.loads(as_json.stdout)}
    checks, results = stats[CHECKS_QUEUE], stats[RESULTS_QUEUE]
    assert {k: checks[k] for k in ("ready", "delayed", "in_progress", "dead")} == {
        "ready": 5,
        "delayed": 3,
        "in_progress": 2,
        "dead": 4,
    }
    assert {k: results[k] for k in ("ready", "delayed", "in_progress", "dead")} == {
        "ready": 2,
        "delayed": 1,
        "in_progress": 3,
        "dead": 1,
    }
    assert (
        started - backdated_ms / 1000
        <= checks["oldest_ready_age"]
        <= finished - backdated_ms / 1000
    )
    # dramatiq stamps whole milliseconds, rounded down: up to 1 ms before `before`.
    assert started - filled <= results["oldest_ready_age"] <= finished - before + 0.001

    assert as_table.returncode == 0, as_table.stderr
    checks_row, results_row = row(as_table.stdout, "checks"), row(as_table.stdout, "results")
    assert checks_row[1:5] == ["5", "3", "2", "4"]
    assert results_row[1:5] == ["2", "1", "3", "1"]
    assert re.fullmatch(r"1m\d{1,2}s", checks_row[5]), checks_row  # 90 s and the test's time
    assert re.fullmatch(r"\d+\.\ds", results_row[5]), results_row


async def test_empty_queues_show_zero_and_no_age(broker: RedisBroker, redis_url: str) -> None:
    as_json = await steamwatch(redis_url, "queues", "--json")
    as_table = await steamwatch(redis_url, "queues")

    assert [
        (s["queue"], s["ready"], s["dead"], s["oldest_ready_age"])
        for s in json.loads(as_json.stdout)
    ] == [("checks", 0, 0, None), ("results", 0, 0, None)]
    assert row(as_table.stdout, "checks")[1:] == ["0", "0", "0", "0", "-"]


async def test_dlq_list_shows_why_each_message_died(
    broker: RedisBroker, raw: redis.Redis, redis_url: str
) -> None:
    # Given a check whose actor kept failing until a real worker dead-lettered it ...
    @dramatiq.actor(
        broker=broker,
        actor_name=CHECK_ACTOR,
        queue_name=CHECKS_QUEUE,
        max_retries=1,
        min_backoff=10,
        max_backoff=20,
    )
    def check_task(**kwargs: Any) -> None:
        raise RuntimeError("steam said 500 via http://bob:hunter2@proxy:3128")

    check_task.send_with_options(kwargs={"task_id": 7, "lease_token": "t"})
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while raw.zcard("steamwatch:checks.XQ") < 1:
            assert time.monotonic() < deadline, "the worker never dead-lettered the check"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
    (died,) = [e.decode() for e in raw.zrange("steamwatch:checks.XQ", 0, -1)]
    # ... a result nacked without retries, and an entry that is not dramatiq's at all.
    (result,) = dead_letters(broker, RESULTS_QUEUE, message(RESULTS_QUEUE, 8))
    raw.zadd("steamwatch:checks.XQ", {"garbage": time.time() * 1000 + 1})
    raw.hset("steamwatch:checks.XQ.msgs", "garbage", b"\xff not json")

    # When I list them.
    listed = await steamwatch(redis_url, "queues", "dlq", "list", "--json")
    table = await steamwatch(redis_url, "queues", "dlq", "list")
    only_results = await steamwatch(
        redis_url, "queues", "dlq", "list", "--queue", "results", "--json"
    )
    limited = await steamwatch(
        redis_url, "queues", "dlq", "list", "--queue", "checks", "--limit", "1"
    )

    # I expect each with its actor, task, retries and the last line of its traceback.
    assert listed.returncode == 0, listed.stderr
    entries = {e["entry_id"]: e for e in json.loads(listed.stdout)}
    assert list(entries) == [died, "garbage", result]
    check = entries[died]
    assert (check["queue"], check["actor"], check["task_id"], check["retries"]) == (
        "checks",
        CHECK_ACTOR,
        7,
        1,
    )
    assert check["error"] == "RuntimeError: steam said 500 via http://bob:***@proxy:3128"
    assert "Traceback" in check["traceback"]
    assert 0 <= check["dead_for"] < 60
    assert entries["garbage"]["problem"].startswith("undecodable")
    assert entries["garbage"]["actor"] is None
    assert (
        entries[result]["actor"],
        entries[result]["task_id"],
        entries[result]["retries"],
        entries[result]["error"],
    ) == (RESULT_ACTOR, 8, 0, None)

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "3 dead letters, the longest dead first:"
    at = next(i for i, line in enumerate(lines) if died in line)
    head = lines[at].split()
    assert head[:3] == ["checks", died, "dead"] and re.fullmatch(r"\d+\.\ds", head[3])
    assert head[4:] == [CHECK_ACTOR, "task", "7", "retries", "1"]
    assert lines[at + 1].strip() == "RuntimeError: steam said 500 via http://bob:***@proxy:3128"
    assert "hunter2" not in listed.stdout + table.stdout  # a proxy password never shows
    at = next(i for i, line in enumerate(lines) if "garbage" in line)
    assert lines[at + 1].strip() == "unreadable: undecodable (DecodeError)"
    assert [e["entry_id"] for e in json.loads(only_results.stdout)] == [result]
    assert died in limited.stdout and "garbage" not in limited.stdout
    assert "checks: showing 1 of 2" in limited.stdout


async def test_requeue_sends_a_dead_letter_back_with_fresh_retries(
    broker: RedisBroker, raw: redis.Redis, redis_url: str
) -> None:
    # Given two dead checks that had used up their retries.
    sent = message(
        CHECKS_QUEUE, 7, retries=5, traceback="Traceback...\nRuntimeError: boom\n", max_retries=5
    )
    chosen, other = dead_letters(broker, CHECKS_QUEUE, sent, message(CHECKS_QUEUE, 8))

    # When I requeue one of them by its entry id.
    done = await steamwatch(redis_url, "queues", "dlq", "requeue", chosen)

    # I expect it alone back in the ready list: same message, no retries spent, no traceback.
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "requeued 1 dead letter (checks 1)"
    assert [e.decode() for e in raw.zrange("steamwatch:checks.XQ", 0, -1)] == [other]
    (ready_id,) = raw.lrange("steamwatch:checks", 0, -1)
    back = dramatiq.Message.decode(raw.hget("steamwatch:checks.msgs", ready_id))
    assert (back.message_id, back.kwargs) == (sent.message_id, sent.kwargs)
    assert "retries" not in back.options and "traceback" not in back.options
    assert back.options["max_retries"] == 5  # what the sender chose stays
    counts = {
        s["queue"]: s for s in json.loads((await steamwatch(redis_url, "queues", "--json")).stdout)
    }
    assert (counts["checks"]["ready"], counts["checks"]["dead"]) == (1, 1)


async def test_requeue_refuses_unknown_entry_ids_and_changes_nothing(
    broker: RedisBroker, raw: redis.Redis, redis_url: str
) -> None:
    # Given one dead check and one dead result.
    (check,) = dead_letters(broker, CHECKS_QUEUE, message(CHECKS_QUEUE, 7))
    (result,) = dead_letters(broker, RESULTS_QUEUE, message(RESULTS_QUEUE, 7))

    # When I name a real entry with one that does not exist, or one in another queue.
    unknown = await steamwatch(redis_url, "queues", "dlq", "requeue", check, "no-such-entry")
    elsewhere = await steamwatch(redis_url, "queues", "dlq", "requeue", "--queue", "checks", result)
    neither = await steamwatch(redis_url, "queues", "dlq", "requeue")

    # I expect errors naming them, and every dead letter still where it was.
    assert unknown.returncode == 1
    assert "no-such-entry" in unknown.stderr and "nothing requeued" in unknown.stderr
    assert check not in unknown.stderr
    assert elsewhere.returncode == 1 and result in elsewhere.stderr
    assert neither.returncode == 2 and "--all" in neither.stderr
    assert raw.zcard("steamwatch:checks.XQ") == 1 and raw.zcard("steamwatch:results.XQ") == 1
    assert raw.llen("steamwatch:checks") == 0 and raw.llen("steamwatch:results") == 0


async def test_requeue_all_leaves_undecodable_entries(
    broker: RedisBroker, raw: redis.Redis, redis_url: str
) -> None:
    # Given two dead checks, a dead result and a check entry nobody can decode.
    dead_letters(broker, CHECKS_QUEUE, message(CHECKS_QUEUE, 1), message(CHECKS_QUEUE, 2))
    dead_letters(broker, RESULTS_QUEUE, message(RESULTS_QUEUE, 3))
    raw.zadd("steamwatch:checks.XQ", {"garbage": time.time() * 1000})
    raw.hset("steamwatch:checks.XQ.msgs", "garbage", b"\xff not json")

    # When I requeue every check, then everything.
    checks = await steamwatch(redis_url, "queues", "dlq", "requeue", "--queue", "checks", "--all")
    assert raw.zcard("steamwatch:results.XQ") == 1
    everything = await steamwatch(redis_url, "queues", "dlq", "requeue", "--all")

    # I expect the readable ones back in their queues and the garbage left for purge.
    assert checks.returncode == 0, checks.stderr
    assert checks.stdout.splitlines()[0] == "requeued 2 dead letters (checks 2)"
    assert "left 1 undecodable" in checks.stdout
    assert everything.stdout.splitlines()[0] == "requeued 1 dead letter (results 1)"
    assert raw.llen("steamwatch:checks") == 2 and raw.llen("steamwatch:results") == 1
    assert raw.zrange("steamwatch:checks.XQ", 0, -1) == [b"garbage"]
    assert raw.zcard("steamwatch:results.XQ") == 0
    left = await steamwatch(redis_url, "queues", "dlq", "list")
    assert left.returncode == 0, left.stderr
    lines = left.stdout.splitlines()
    assert lines[0] == "1 dead letter, the longest dead first:"
    assert re.fullmatch(r"checks  garbage  dead \d+\.\ds", lines[1]), lines
    assert lines[2:] == ["    unreadable: undecodable (DecodeError)"]
    named = await steamwatch(redis_url, "queues", "dlq", "requeue", "garbage")
    assert named.returncode == 1 and "garbage (undecodable (DecodeError))" in named.stderr
    assert raw.zrange("steamwatch:checks.XQ", 0, -1) == [b"garbage"]


async def test_purge_asks_first_and_drops_what_it_says(
    broker: RedisBroker, raw: redis.Redis, redis_url: str
) -> None:
    # Given three dead checks and two dead results.
    dead_letters(broker, CHECKS_QUEUE, *(message(CHECKS_QUEUE, i) for i in range(3)))
    dead_letters(broker, RESULTS_QUEUE, *(message(RESULTS_QUEUE, i) for i in range(2)))

    # When I decline, then purge one queue without a question, then confirm the rest.
    declined = await steamwatch(redis_url, "queues", "dlq", "purge", input="n\n")
    assert (raw.zcard("steamwatch:checks.XQ"), raw.zcard("steamwatch:results.XQ")) == (3, 2)
    results = await steamwatch(redis_url, "queues", "dlq", "purge", "--queue", "results", "--yes")
    assert (raw.zcard("steamwatch:checks.XQ"), raw.zcard("steamwatch:results.XQ")) == (3, 0)
    confirmed = await steamwatch(redis_url, "queues", "dlq", "purge", input="y\n")
    again = await steamwatch(redis_url, "queues", "dlq", "purge", "--yes")

    # I expect nothing dropped when I said no, and each purge to say how many it dropped.
    assert (
        declined.returncode == 1 and "drop 5 dead letters (checks 3, results 2)" in declined.stdout
    )
    assert results.returncode == 0 and results.stdout.strip() == "purged 2 dead letters (results 2)"
    assert confirmed.returncode == 0
    assert "drop 3 dead letters (checks 3) for good?" in confirmed.stdout
    assert confirmed.stdout.endswith("purged 3 dead letters (checks 3)\n")
    assert not raw.exists("steamwatch:checks.XQ", "steamwatch:checks.XQ.msgs")
    assert again.stdout.strip() == "no dead letters"


async def test_unreachable_redis_is_a_clear_error() -> None:
    # Given a Redis URL where nothing listens (port 1 is never Redis).
    result = await steamwatch("redis://127.0.0.1:1/0", "queues")

    # I expect exit code 1 and one line saying so, not a traceback.
    assert result.returncode == 1
    assert result.stderr.startswith("steamwatch: cannot read Redis")
    assert "Traceback" not in result.stderr


def test_a_dead_check_batch_lists_its_first_task_and_how_many_more() -> None:
    batch = CheckMessage.batch([(7, uuid.uuid4()), (8, uuid.uuid4()), (9, uuid.uuid4())])
    letter = dramatiq.Message(
        queue_name=CHECKS_QUEUE,
        actor_name=CHECK_ACTOR,
        args=(),
        kwargs=batch.model_dump(mode="json", exclude_defaults=True),
        options={},
    )
    dead = DeadLetter(CHECKS_QUEUE, "1-0", time.time(), letter.encode(), letter)

    entry = _entry(dead, time.time())

    assert (entry["task_id"], entry["more_task_ids"]) == (7, [8, 9])
    assert "task 7 +2" in _letter_lines([entry])[0]
