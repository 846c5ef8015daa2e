"""The dramatiq broker: Redis-backed, with the AsyncIO middleware for async actors.

Queue and actor names live here because services never import each other: the scheduler
sends to the fetcher's actor by name, the fetcher to the publisher's.

The consumer is dramatiq's own, through its ``consumer_class`` hook, with two repairs that keep
a running worker from stranding messages in its acknowledgement set (where nothing but the
worker's own death would ever hand them back):

- **Undecodable data** on a queue (garbage bytes, an envelope without its Redis id) is moved to
  the queue's dead letters with a log line and a metric, and the consumer goes on. dramatiq
  would raise, drop its consumer and, with it, every message it had prefetched.
- **After a lost connection** (Redis restarted), the new consumer hands back whatever this
  worker holds in its acknowledgement set but is not processing: a fetch whose reply was lost,
  or the delayed messages (retries) dramatiq drops from memory on a connection error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import redis
import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.middleware import AsyncIO, Middleware
from prometheus_client import Counter

from shared.bus._keys import NAMESPACE, acks_key, messages_key
from shared.runtime import sync_client

CHECKS_QUEUE = "checks"
CHECK_ACTOR = "check_task"
# Results rode this queue to the publisher until events went through the outbox (migration
# 0010). Nothing sends to it now; the queue tools still show it, so messages an upgrade left
# there are seen and purged (the watchdog drops its dead letters: the next check supersedes).
RESULTS_QUEUE = "results"
RESULT_ACTOR = "publish_result"


def create_broker(
    *,
    redis_url: str,
    namespace: str = NAMESPACE,
    middleware: Iterable[Middleware] = (),
    heartbeat_timeout_ms: int = 60_000,
) -> Broker:
    """A Redis broker with AsyncIO first, then the given middleware in order.

    Middleware that needs the worker's event loop (database, Redis, HTTP pools) must come
    after AsyncIO, so that its ``after_worker_boot`` runs once that loop exists.
    """
    broker = Broker(
        client=sync_client(redis_url),
        namespace=namespace,
        # Messages of a worker that stopped heart-beating go back to the queue after this.
        heartbeat_timeout=heartbeat_timeout_ms,
    )
    broker.add_middleware(AsyncIO())
    for m in middleware:
        broker.add_middleware(m)
    return broker


UNDECODABLE = Counter(
    "steamwatch_messages_undecodable",
    "Messages whose data could not be decoded, moved to their queue's dead letters",
    ["queue"],
)
HANDED_BACK = Counter(
    "steamwatch_messages_handed_back",
    "Messages a worker held but was not processing, handed back to their queue",
    ["queue", "why"],
)
log = structlog.get_logger(__name__)
#: The longest a consumer waits between fetches while its queue is empty. dramatiq backs off up
#: to its worker timeout (1 s): a thread that finished then waited for that, and a default
#: fetcher did 44 checks/s of 80 at 200 ms Steam latency (`make bench SCENARIO=throughput`).
#: Setting the worker timeout itself to 100 ms also woke every idle worker thread 10 times a
#: second: 320 wake-ups a second in a fetcher of 32 threads (`make bench SCENARIO=floor`).
CONSUMER_BACKOFF_MS = 100


class Broker(RedisBroker):
    """dramatiq's Redis broker, consuming with :class:`Consumer`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._handed_out: dict[str, dict[str, str]] = {}  # queue -> {message id: Redis id}
        self._reconcile: set[str] = set()  # queues whose consumer lost its connection

    @property
    def consumer_class(self) -> type[Consumer]:
        return Consumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """A consumer whose idle back-off stops at ``CONSUMER_BACKOFF_MS``, whatever the worker
        timeout (which dramatiq also gives every idle worker thread as its wake-up period)."""
        return self.consumer_class(self, queue_name, prefetch, min(timeout, CONSUMER_BACKOFF_MS))

    def declare_queue(self, queue_name: str) -> None:
        super().declare_queue(queue_name)
        UNDECODABLE.labels(queue=queue_name)  # every series from the start, at 0
        for why in ("reconnect", "consumer_closed", "shutdown"):
            HANDED_BACK.labels(queue=queue_name, why=why)

    def acks_key(self, queue: str) -> str:
        """This worker's acknowledgement set for ``queue`` (dramatiq's layout)."""
        return acks_key(self.broker_id, queue, namespace=self.namespace)

    def handed_out(self, queue: str, message: Message[Any], redis_id: str) -> None:
        with self._lock:
            self._handed_out.setdefault(queue, {})[message.message_id] = redis_id

    def finished(self, queue: str, message_ids: Iterable[str]) -> None:
        with self._lock:
            held = self._handed_out.get(queue, {})
            for message_id in message_ids:
                held.pop(message_id, None)

    def lost_connection(self, queue: str) -> None:
        """A consumer of ``queue`` lost Redis; its successor reconciles the acknowledgement set."""
        with self._lock:
            self._reconcile.add(queue)
            if queue.endswith(".DQ"):
                # dramatiq drops its in-memory delay queue on a connection error: every delayed
                # message handed out so far is now held by nobody.
                self._handed_out.pop(queue, None)

    def lost(self, queue: str) -> bool:
        """Whether a consumer of ``queue`` lost Redis and its successor has not reconciled yet."""
        with self._lock:
            return queue in self._reconcile

    def reconcile(self, queue: str) -> None:
        """Hand back what this worker holds in Redis for ``queue`` but is not processing."""
        with self._lock:
            if queue not in self._reconcile:
                return
            processing = set(self._handed_out.get(queue, {}).values())
        held = {
            m.decode() if isinstance(m, bytes) else m
            for m in self.client.smembers(self.acks_key(queue))
        }
        stranded = sorted(held - processing)
        if stranded:
            self.do_requeue(queue, *stranded)
            HANDED_BACK.labels(queue=queue, why="reconnect").inc(len(stranded))
            log.warning(
                "messages held across a lost connection handed back",
                queue=queue,
                count=len(stranded),
                redis_message_ids=stranded[:20],
            )
        with self._lock:
            self._reconcile.discard(queue)

    def bury(self, queue: str, matches: Callable[[bytes], bool], problem: str, data: str) -> None:
        """Move the data this worker fetched from ``queue`` and ``matches`` to its dead letters."""
        ids = list(self.client.smembers(self.acks_key(queue)))
        stored = (
            self.client.hmget(messages_key(queue, namespace=self.namespace), ids) if ids else []
        )
        found = [_text(i) for i, d in zip(ids, stored, strict=True) if d is not None and matches(d)]
        for redis_id in found:
            self.do_nack(queue, redis_id)
        UNDECODABLE.labels(queue=queue).inc()
        what = "moved to the dead letters" if found else "not found in the acknowledgement set"
        log.error(
            f"undecodable message {what}",
            queue=queue,
            problem=problem[:300],
            data=data,
            redis_message_ids=found,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _same(data: bytes) -> Callable[[bytes], bool]:
    return lambda stored: stored == data


def _with_id(message_id: str) -> Callable[[bytes], bool]:
    def matches(stored: bytes) -> bool:
        try:
            return Message.decode(stored).message_id == message_id
        except DecodeError:
            return False

    return matches


class Consumer(_RedisConsumer):
    """dramatiq's Redis consumer; skips undecodable data and reconciles after a lost connection."""

    broker: Broker

    def __next__(self) -> Any:
        try:
            self.broker.reconcile(self.queue_name)
            while True:
                try:
                    message = super().__next__()
                except DecodeError as e:
                    problem = f"{type(e.error).__name__}: {e.error}"
                    self.broker.bury(self.queue_name, _same(e.data), problem, repr(e.data[:80]))
                    continue
                if message is None:
                    return None
                redis_id = message.options.get("redis_message_id")
                if not isinstance(redis_id, str):
                    self.queued_message_ids.discard(message.message_id)
                    problem = "no redis_message_id in its options"
                    matches = _with_id(message.message_id)
                    self.broker.bury(self.queue_name, matches, problem, message.message_id)
                    continue
                self.broker.handed_out(self.queue_name, message, redis_id)
                return message
        except redis.ConnectionError as e:
            self.broker.lost_connection(self.queue_name)
            raise ConnectionClosed(e) from None
        except ConnectionClosed:
            self.broker.lost_connection(self.queue_name)
            raise

    def close(self) -> None:
        """Hand back what this consumer prefetched and never handed out (after an error)."""
        cached, self.message_cache = self.message_cache, []
        ids = []
        for data in cached:
            try:
                ids.append(Message.decode(data).options["redis_message_id"])
            except (DecodeError, KeyError):
                continue  # what cannot be named stays for the dead-worker sweep
        if ids:
            try:
                self.broker.do_requeue(self.queue_name, *ids)
            except redis.ConnectionError:
                self.broker.lost_connection(self.queue_name)  # the successor hands them back
            else:
                HANDED_BACK.labels(queue=self.queue_name, why="consumer_closed").inc(len(ids))
                log.warning(
                    "prefetched messages handed back by a closing consumer",
                    queue=self.queue_name,
                    count=len(ids),
                )
        super().close()

    def ack(self, message: Any) -> None:
        try:
            super().ack(message)
        finally:
            self.broker.finished(self.queue_name, [message.message_id])

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)
        finally:
            self.broker.finished(self.queue_name, [message.message_id])

    def requeue(self, messages: Iterable[Any]) -> None:
        messages = list(messages)
        super().requeue(messages)
        self.broker.finished(self.queue_name, [m.message_id for m in messages])
