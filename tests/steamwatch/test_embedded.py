"""Embedded stores: start, write, stop, start again, and the data is still there."""

from __future__ import annotations

import asyncio

import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from steamwatch.embedded import EmbeddedPostgres, EmbeddedRedis


async def _sql(url: str, *statements: str) -> object:
    engine = create_async_engine(url, poolclass=NullPool)
    result = None
    try:
        async with engine.begin() as conn:
            for statement in statements:
                rows = await conn.execute(text(statement))
                result = rows.scalar() if rows.returns_rows else None
        return result
    finally:
        await engine.dispose()


def test_embedded_postgres_keeps_data_across_a_restart(own_postgres: EmbeddedPostgres) -> None:
    url = own_postgres.start()
    asyncio.run(_sql(url, "CREATE TABLE kept (v text)", "INSERT INTO kept VALUES ('still here')"))
    pid_file = own_postgres.data_dir / "postmaster.pid"
    assert pid_file.exists()
    own_postgres.stop()
    assert not pid_file.exists()  # really stopped, not just detached

    url = own_postgres.start()
    assert asyncio.run(_sql(url, "SELECT v FROM kept")) == "still here"


def test_embedded_redis_keeps_data_across_a_restart(own_redis: EmbeddedRedis) -> None:
    url = own_redis.start()
    client = redis.Redis.from_url(url)
    client.rpush("steamwatch:kept", "a", "b")
    client.close()
    own_redis.stop()
    stopped = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        stopped.ping()
        raise AssertionError("the embedded Redis is still answering after stop()")
    except redis.ConnectionError:
        pass

    url = own_redis.start()
    client = redis.Redis.from_url(url)
    assert client.lrange("steamwatch:kept", 0, -1) == [b"a", b"b"]
    client.close()
