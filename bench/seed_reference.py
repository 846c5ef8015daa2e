"""The seed's design, rebuilt for the seed_design benchmark only; steamwatch never imports it.

``python -m bench.seed_reference``: one process, one coroutine per task, each with its own
``AsyncSession`` for as long as it runs, as ``../shared/seeds/`` describes the seed after its
fix (``MonitoringService._start_task_monitoring`` / ``monitor_loop``). Each loop:

1. every 6th iteration, reads the task's status; stops if inactive;
2. fetches the price through the proxy pool (the same Steam client steamwatch uses; the
   benchmark's tasks are all lowest-price watches);
3. reads the status again "before publishing to Redis", judges the task's condition with the
   same ``shared.alerts`` steamwatch uses (its state kept in the coroutine), and publishes
   when it signals;
4. stores the price and advances ``next_check`` and the counters, then commits;
5. sleeps ``check_interval``.

The session autobegins at the loop's first statement and holds its connection until the
commit: across the Steam call on every 6th iteration (the 6th, 12th, ...: all loops start
together, so those rounds come for every task at once), briefly otherwise. On an error: the
counter, ``next_check`` advanced anyway (``_update_next_check_safe``), five in a row stop the
loop, and a recovery loop restarts it (60 s, doubling, at most 600 s, 10 tries). The engine is
``create_async_engine``'s default pool (5 + 10), which is what the write-up's
``DatabaseManager`` shows no sign of changing; ``--max-overflow`` may widen it.

Prints ``seed ready: N tasks`` once every coroutine runs and, when SIGTERM stops it, one JSON
line: checks by outcome and the most connections its pool had checked out at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from shared.alerts import evaluate, parse_conditions
from shared.db import PriceSnapshot, Task
from shared.observability import SecretURL
from shared.steam import (
    Budget,
    Item,
    OrderBook,
    PriceOverview,
    ProxyPool,
    SteamClient,
    create_http_session,
)

APPLICATION_NAME = "seed-reference"
MAX_CONSECUTIVE_ERRORS = 5
STATUS_EVERY = 6
RECOVERY_BASE, RECOVERY_CAP, RECOVERY_ATTEMPTS = 60.0, 600.0, 10
UNLIMITED = Budget(limit=1_000_000, window=60)


@dataclass(frozen=True)
class Watch:
    id: int
    item: Item
    kind: str
    conditions: dict[str, Any]
    interval: int
    next_check: datetime


def price_row(watch: Watch, result: PriceOverview | OrderBook) -> dict[str, Any]:
    """The ``price_history`` row of one check (one row per check, as steamwatch stores it)."""
    row: dict[str, Any] = {
        "task_id": watch.id,
        "lease_token": uuid.uuid4(),
        "currency": watch.item.currency,
    }
    if isinstance(result, PriceOverview):
        return row | {
            "lowest_price": result.lowest_price,
            "median_price": result.median_price,
            "volume": result.volume,
            "source": "priceoverview",
        }
    return row | {
        "lowest_price": result.lowest_sell,
        "lowest_sell": result.lowest_sell,
        "highest_buy": result.highest_buy,
        "source": "orderbook",
    }


class MonitoringService:
    """One coroutine and one session per task, in one process: the seed after its fix."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        steam: SteamClient,
        redis_client: redis.asyncio.Redis,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.steam = steam
        self.redis = redis_client
        self.counts: Counter[str] = Counter()
        self._running = True
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._recovery_tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, watches: list[Watch]) -> None:
        for watch in watches:
            self._start_task_monitoring(watch)

    def _start_task_monitoring(self, watch: Watch) -> None:
        self._tasks[watch.id] = asyncio.create_task(self._monitor_loop(watch))

    async def _monitor_loop(self, watch: Watch) -> None:
        # The seed's fix: a session of this coroutine's own, closed when the loop ends.
        session = self.sessionmaker()
        condition = parse_conditions(watch.kind, watch.conditions, currency=watch.item.currency)
        state: dict[str, Any] | None = None
        consecutive_errors = 0
        iteration = 0
        try:
            delay = (watch.next_check - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(0.0, delay))
            while self._running:
                iteration += 1
                try:
                    if iteration % STATUS_EVERY == 0 and not await self._active(session, watch):
                        break
                    result = await self.steam.price_overview(watch.item)
                    active = await self._active(session, watch)  # before publishing to Redis
                    judged = evaluate(condition, result, state)
                    state = dict(judged.state)
                    if active and judged.signals:
                        payload = {"task_id": watch.id, "signals": [s.kind for s in judged.signals]}
                        await self.redis.publish(f"seed:task:{watch.id}", json.dumps(payload))
                    await session.execute(insert(PriceSnapshot).values(price_row(watch, result)))
                    await session.execute(
                        update(Task)
                        .where(Task.id == watch.id)
                        .values(
                            next_check=func.now() + timedelta(seconds=watch.interval),
                            last_checked_at=func.now(),
                            last_success_at=func.now(),
                            consecutive_errors=0,
                            last_error=None,
                        )
                    )
                    await session.commit()
                    consecutive_errors = 0
                    self.counts["ok"] += 1
                except Exception as e:
                    consecutive_errors += 1
                    self.counts["error"] += 1
                    self.counts[f"error_{type(e).__name__}"] += 1
                    await session.rollback()
                    await self._update_next_check_safe(watch, session)
                    if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                        self.counts["stopped"] += 1
                        self._start_task_recovery(watch)
                        break
                await asyncio.sleep(watch.interval)
        finally:
            await session.close()

    async def _active(self, session: AsyncSession, watch: Watch) -> bool:
        row = (
            await session.execute(select(Task.is_active, Task.status).where(Task.id == watch.id))
        ).first()
        return row is not None and row.is_active and row.status == "active"

    async def _update_next_check_safe(self, watch: Watch, session: AsyncSession) -> None:
        try:
            await session.execute(
                update(Task)
                .where(Task.id == watch.id)
                .values(
                    next_check=func.now() + timedelta(seconds=watch.interval),
                    consecutive_errors=Task.consecutive_errors + 1,
                )
            )
            await session.commit()
        except Exception:
            self.counts["next_check_update_failed"] += 1
            await session.rollback()

    def _start_task_recovery(self, watch: Watch) -> None:
        async def recovery_loop() -> None:
            delay = RECOVERY_BASE
            for _attempt in range(RECOVERY_ATTEMPTS):
                await asyncio.sleep(delay)
                if not self._running:
                    return
                async with self.sessionmaker() as session:
                    if await self._active(session, watch):
                        self.counts["recovered"] += 1
                        self._start_task_monitoring(watch)
                        return
                delay = min(delay * 2, RECOVERY_CAP)

        self._recovery_tasks[watch.id] = asyncio.create_task(recovery_loop())

    async def stop(self, *, within: float = 5.0) -> None:
        """Cancel every loop; each closes its session on the way out (given ``within`` s)."""
        self._running = False
        tasks = [*self._tasks.values(), *self._recovery_tasks.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=within)


async def load_watches(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Watch]:
    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(Task).where(Task.is_active, Task.status == "active").order_by(Task.id)
            )
        ).all()
    return [
        Watch(
            id=t.id,
            item=Item(t.appid, t.market_hash_name, t.currency),
            kind=t.kind,
            conditions=dict(t.conditions),
            interval=t.check_interval,
            next_check=t.next_check,
        )
        for t in rows
    ]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    engine = create_async_engine(
        args.database_url,
        pool_size=args.pool_size,
        max_overflow=args.max_overflow,
        connect_args={"server_settings": {"application_name": APPLICATION_NAME}},
    )
    out = {"checked_out": 0, "max_checked_out": 0}

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(*_: Any) -> None:
        out["checked_out"] += 1
        out["max_checked_out"] = max(out["max_checked_out"], out["checked_out"])

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(*_: Any) -> None:
        out["checked_out"] -= 1

    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    client = redis.asyncio.Redis.from_url(args.redis_url)
    pool = ProxyPool.from_urls(
        client, [SecretURL(p) for p in args.proxy], budgets={"priceoverview": UNLIMITED}
    )
    http = create_http_session(timeout=10)
    steam = SteamClient(http=http, pool=pool, base_url=args.sim)
    service = MonitoringService(sessionmaker, steam, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        watches = await load_watches(sessionmaker)
        service.start(watches)
        print(f"seed ready: {len(watches)} tasks", flush=True)
        await stop.wait()
        # The report first: a slow shutdown must not lose it.
        report = {
            "counts": dict(service.counts),
            "max_checked_out": out["max_checked_out"],
            "pool_limit": args.pool_size + args.max_overflow,
        }
        print(json.dumps(report), flush=True)
        await service.stop()
    finally:
        await http.close()
        await client.aclose()
        await engine.dispose()
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.seed_reference")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--proxy", action="append", required=True)
    parser.add_argument("--pool-size", type=int, default=5)
    parser.add_argument("--max-overflow", type=int, default=10)
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
