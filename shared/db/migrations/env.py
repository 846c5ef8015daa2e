"""Alembic environment: runs migrations on a connection the caller hands over, or on a URL.

Callers set ``config.attributes["connection"]`` (a sync connection, from ``run_sync``) or
``config.attributes["url"]``; the URL never goes through alembic.ini, so it never lands in
a file or a log. An advisory lock makes two migrators running at once take turns.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db._models import Base
from shared.db.migrate import include_name

MIGRATION_LOCK_ID = 0x5743_4D47  # "SWMG": any constant shared by every migrator

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url")
    if not url:
        raise RuntimeError("migrations need config.attributes['connection'] or ['url']")
    asyncio.run(_run_on_url(url))


if context.is_offline_mode():
    raise RuntimeError(
        "offline (SQL script) migrations are not supported; run `steamwatch db upgrade`"
    )
run_migrations_online()
