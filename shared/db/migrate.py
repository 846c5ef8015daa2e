"""Schema migrations, driven from code: ``steamwatch db upgrade`` and the tests call these.

The database URL is handed to alembic in memory (``config.attributes``), never written to an
ini file, so credentials stay out of files and logs.
"""

from __future__ import annotations

import re

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = "shared.db:migrations"


PARTITION = re.compile(r"^price_history_(p\d{8}|before)$")
"""price_history's partitions: made and dropped by the history upkeep, not by migrations."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For autogenerate and comparisons: the partitions are not tables of the models."""
    return not (type_ == "table" and name is not None and PARTITION.match(name))


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(*, url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (sync; runs its own event loop)."""
    command.upgrade(alembic_config(url=url), revision)


def downgrade(*, url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url=url), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing async engine, from inside a running event loop."""
    async with engine.connect() as connection:
        await connection.run_sync(
            lambda sync: command.upgrade(alembic_config(connection=sync), revision)
        )
        await connection.commit()


async def downgrade_engine(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.connect() as connection:
        await connection.run_sync(
            lambda sync: command.downgrade(alembic_config(connection=sync), revision)
        )
        await connection.commit()


def heads() -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current(url: str) -> set[str]:
    """The revisions the database at ``url`` is at (empty before the first migration)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return set(
                await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_heads()
                )
            )
    finally:
        await engine.dispose()
