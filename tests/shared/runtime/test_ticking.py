"""The ticking service's life: a stop while a pass runs lets that pass finish, then returns."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from shared.runtime import Pools, PoolSpec, run_ticking_service


def _spec(database_url: str, redis_url: str) -> PoolSpec:
    return PoolSpec(
        database_url=database_url,
        redis_url=redis_url,
        pool_size=2,
        max_overflow=0,
        pool_timeout=5,
        application_name="steamwatch-test",
    )


async def test_a_stop_during_a_pass_lets_the_pass_finish_its_database_work(
    database_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    entered = asyncio.Event()
    finished: list[int] = []

    async def one_pass(pools: Pools) -> None:
        entered.set()
        async with pools.db.session_scope() as session:
            # Still in the database when the stop arrives (the incident in CI: cancelled here).
            await session.execute(text("SELECT pg_sleep(0.5)"))
            finished.append(1)

    async def stop_mid_pass() -> None:
        await entered.wait()
        stop.set()

    caplog.set_level(logging.INFO)
    stopper = asyncio.create_task(stop_mid_pass())
    await asyncio.wait_for(
        run_ticking_service(
            service="test",
            spec=_spec(database_url, redis_url),
            interval=0.05,
            one_pass=one_pass,
            stop=stop,
        ),
        timeout=30,
    )
    await stopper
    assert finished == [1]
    raised = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert raised == [], [r.getMessage() for r in raised]
