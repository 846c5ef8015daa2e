"""Redis clients for the services: ones that ride out a restart of the server.

redis-py's ``from_url`` builds connections that never retry. After Redis restarts, each pooled
connection is dead, and the first command sent on it fails with "Connection closed by server".
In a fetcher that was every check right after the restart, each one counted as failed and
backed off (``tests/system/faults/test_restarts.py`` caught it under load). The clients here retry a
connection error or a timeout a few times, reconnecting in between, so a stale connection is
replaced instead of failing the work that used it. ``BusyLoadingError`` (Redis still loading
its data) is a connection error too.

A retried command may run twice if the server died after running it but before answering.
Every command the services send is safe to repeat or is already repeated whole by dramatiq
when it fails, so this adds no new case.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

RETRIES = 3  # after the first try: a restarted server answers the first reconnect
BACKOFF_BASE = 0.05  # seconds before the first retry, doubling, with jitter
BACKOFF_CAP = 1.0


#: Connections an asyncio client opens at most; a command beyond them waits for one.
MAX_CONNECTIONS = 100
#: Seconds a command waits for a connection before it fails.
CONNECTION_WAIT = 10.0


def async_client(url: str, **kwargs: Any) -> redis.asyncio.Redis:
    """An asyncio client for ``url`` whose commands retry connection errors.

    Its pool blocks instead of raising when all its connections are busy: a fetcher's burst of
    checks (each asking the proxy budget, and publishing its events) waits a moment for a
    connection rather than failing the checks with "Too many connections".
    """
    retry = AsyncRetry(ExponentialWithJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP), RETRIES)
    kwargs.setdefault("max_connections", MAX_CONNECTIONS)
    kwargs.setdefault("timeout", CONNECTION_WAIT)
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, retry=retry, **kwargs)
    return redis.asyncio.Redis.from_pool(pool)


def sync_client(url: str, **kwargs: Any) -> redis.Redis:
    """A blocking client for ``url`` whose commands retry connection errors."""
    retry = Retry(ExponentialWithJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP), RETRIES)
    return redis.Redis.from_url(url, retry=retry, **kwargs)
