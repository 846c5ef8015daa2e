"""Migrations against real PostgreSQL: from empty they equal the models, and they undo cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import Base, migrate


async def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync_conn):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(
                    sync_conn,
                    opts={
                        "compare_type": True,
                        "compare_server_default": True,
                        "include_name": migrate.include_name,
                    },
                )
                tables = {
                    name
                    for name in inspect(sync_conn).get_table_names()
                    if migrate.include_name(name, "table", {})
                }
                return compare_metadata(context, Base.metadata), tables

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


def test_upgrade_from_empty_equals_the_models(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    migrate.upgrade(url=url)
    diff, tables = asyncio.run(_diff_and_tables(url))
    assert diff == []
    assert {"tasks", "price_history", "alembic_version"} <= tables


def test_downgrade_to_base_removes_everything_and_upgrade_again_works(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    migrate.upgrade(url=url)
    migrate.downgrade(url=url, revision="base")
    _, tables = asyncio.run(_diff_and_tables(url))
    assert tables <= {"alembic_version"}
    migrate.upgrade(url=url)
    diff, _ = asyncio.run(_diff_and_tables(url))
    assert diff == []


def test_there_is_one_head() -> None:
    assert len(migrate.heads()) == 1
