"""session_scope against real PostgreSQL, and the incident this project was born from.

The seed (../shared/seeds/) lost a watch to "This session is provisioning a new connection;
concurrent operations are not permitted": one AsyncSession shared by many coroutines. The
first test proves the failure is real and visible here; the second that a session per unit of
work, under ten times the load, never meets it and never exceeds the pool.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from shared.db import Database, Task, session_scope

SESSION_STATE_ERRORS = (
    "concurrent operations are not permitted",
    "another operation is in progress",
)


def _task(name: str = "AK-47 | Redline (Field-Tested)") -> Task:
    return Task(
        owner="alice",
        appid=730,
        market_hash_name=name,
        currency=3,
        kind="lowest_price",
        conditions={"max_price": 1000},
        check_interval=60,
        next_check=datetime.now(UTC),
    )


async def test_session_scope_commits_on_success(db: Database) -> None:
    async with db.session_scope() as s:
        s.add(_task())
    async with db.session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(Task)) == 1


async def test_session_scope_rolls_back_on_error_and_reraises(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.session_scope() as s:
            s.add(_task())
            await s.flush()  # the row reached the server inside the transaction
            raise RuntimeError("boom")
    async with db.session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(Task)) == 0


async def test_session_scope_rolls_back_on_a_database_error(db: Database) -> None:
    with pytest.raises(SQLAlchemyError):
        async with db.session_scope() as s:
            s.add(_task())
            s.add(_task())  # same owner, item and kind: the unique constraint refuses it
    async with db.session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(Task)) == 0


async def test_session_scope_closes_the_session(db: Database) -> None:
    async with db.session_scope() as s:
        await s.execute(text("SELECT 1"))
    # Closed: the connection went back to the pool.
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_incident_one_session_shared_by_20_coroutines_fails(db: Database) -> None:
    """Given one AsyncSession shared by 20 coroutines (the seed's design), I expect the error."""
    # The seed's session met the pool at start: its first statement opened the connection.
    await db.engine.dispose()
    session = db.sessionmaker()
    try:
        results = await asyncio.gather(
            *(session.execute(text("SELECT pg_sleep(0.01)")) for _ in range(20)),
            return_exceptions=True,
        )
    finally:
        await session.close()
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    assert errors, "sharing one session between coroutines should have failed"
    assert any(marker in e for e in errors for marker in SESSION_STATE_ERRORS), errors


async def test_a_session_per_coroutine_under_200_coroutines_never_fails(db: Database) -> None:
    """Given 200 coroutines each in its own session_scope, I expect no error, pool bounds kept."""
    peak = 0

    async def unit_of_work(i: int) -> int:
        nonlocal peak
        async with session_scope(db.sessionmaker) as s:
            value = await s.scalar(
                text("SELECT CAST(:i AS integer) FROM pg_sleep(0.005)"), {"i": i}
            )
            peak = max(peak, db.engine.pool.checkedout())  # type: ignore[attr-defined]
            return int(value)

    results = await asyncio.gather(*(unit_of_work(i) for i in range(200)), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(results) == list(range(200))  # type: ignore[type-var]
    assert 1 <= peak <= db.pool_limit
