"""The floor: the least a check can cost, for the ``floor`` benchmark only; steamwatch never
imports it.

``python -m bench.floor_reference``: one process, one event loop, the same I/O a steamwatch
check needs and nothing else:

1. every ``--tick`` seconds, one statement claims every due task in a batch
   (``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` the item with the lease);
2. each claimed task becomes a coroutine: the proxy budget (the shared ``ProxyPool``'s Lua), one
   GET through the proxy (the shared ``SteamClient`` on aiohttp), the shared parser;
3. one statement releases the lease, moves ``next_check`` and stores the row (a CTE, conditional
   on the lease), or on an error releases it with the error counted.

Raw asyncpg, no ORM, no bus, no judging, no events, no metrics, no logs: what is left is the
work no design can skip. Prints ``floor ready`` once it runs and, when SIGTERM stops it, one
JSON line: checks by outcome and the claim batches' sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections import Counter
from typing import Any

import asyncpg
import redis.asyncio
from sqlalchemy.engine import make_url

from shared.observability import SecretURL
from shared.steam import Budget, Item, PriceOverview, ProxyPool, SteamClient, create_http_session

APPLICATION_NAME = "floor-reference"
UNLIMITED = Budget(limit=1_000_000, window=60)
LEASE_SECONDS = 60

CLAIM = """
    WITH due AS (
        SELECT id FROM tasks
        WHERE is_active AND status = 'active' AND lease_token IS NULL AND next_check <= now()
        ORDER BY next_check
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks AS t
    SET lease_token = gen_random_uuid(), lease_expires_at = now() + make_interval(secs => $2)
    FROM due
    WHERE t.id = due.id
    RETURNING t.id, t.lease_token, t.appid, t.market_hash_name, t.currency
"""
STORE = """
    WITH released AS (
        UPDATE tasks
        SET lease_token = NULL, lease_expires_at = NULL, last_checked_at = now(),
            last_success_at = now(), consecutive_errors = 0, last_error = NULL,
            next_check = now() + make_interval(secs => check_interval)
        WHERE id = $1 AND lease_token = $2
        RETURNING id
    )
    INSERT INTO price_history (task_id, lease_token, currency, lowest_price, median_price, volume,
                               highest_buy, lowest_sell, source)
    SELECT id, $2, $3, $4, $5, $6, $7, $8, $9 FROM released
"""
FAIL = """
    UPDATE tasks
    SET lease_token = NULL, lease_expires_at = NULL, last_checked_at = now(),
        consecutive_errors = consecutive_errors + 1, last_error = $3,
        next_check = now() + make_interval(secs => check_interval)
    WHERE id = $1 AND lease_token = $2
"""


class Floor:
    def __init__(self, db: asyncpg.Pool, steam: SteamClient, *, tick: float, batch: int) -> None:
        self.db = db
        self.steam = steam
        self.tick = tick
        self.batch = batch
        self.counts: Counter[str] = Counter()
        self.batches: Counter[int] = Counter()
        self.running: set[asyncio.Task[None]] = set()

    async def claim_forever(self) -> None:
        while True:
            rows = await self.db.fetch(CLAIM, self.batch, LEASE_SECONDS)
            self.batches[len(rows)] += 1
            for row in rows:
                task = asyncio.create_task(self.check(row))
                self.running.add(task)
                task.add_done_callback(self.running.discard)
            await asyncio.sleep(self.tick)

    async def check(self, row: asyncpg.Record) -> None:
        item = Item(row["appid"], row["market_hash_name"], row["currency"])
        try:
            result = await self.steam.price_overview(item)
        except Exception as e:
            self.counts["error"] += 1
            await self.db.execute(FAIL, row["id"], row["lease_token"], type(e).__name__)
            return
        values: tuple[int | None, ...]
        if isinstance(result, PriceOverview):
            values = (result.lowest_price, result.median_price, result.volume, None, None)
            source = "priceoverview"
        else:
            values = (result.lowest_sell, None, None, result.highest_buy, result.lowest_sell)
            source = "orderbook"
        await self.db.execute(STORE, row["id"], row["lease_token"], item.currency, *values, source)
        self.counts["ok"] += 1


async def main(args: argparse.Namespace) -> dict[str, Any]:
    dsn = make_url(args.database_url).set(drivername="postgresql")
    db = await asyncpg.create_pool(
        dsn.render_as_string(hide_password=False),
        min_size=args.connections,
        max_size=args.connections,
        server_settings={"application_name": APPLICATION_NAME},
    )
    client = redis.asyncio.Redis.from_url(args.redis_url)
    pool = ProxyPool.from_urls(
        client, [SecretURL(p) for p in args.proxy], budgets={"priceoverview": UNLIMITED}
    )
    http = create_http_session(timeout=10)
    steam = SteamClient(http=http, pool=pool, base_url=args.sim)
    floor = Floor(db, steam, tick=args.tick, batch=args.batch)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    claiming = asyncio.create_task(floor.claim_forever())
    try:
        print("floor ready", flush=True)
        await stop.wait()
        report = {
            "counts": dict(floor.counts),
            "claim_batches": sum(floor.batches.values()),
            "claimed_max": max(floor.batches, default=0),
        }
        print(json.dumps(report), flush=True)
        claiming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await claiming
        if floor.running:
            await asyncio.wait(floor.running, timeout=5)
    finally:
        await http.close()
        await client.aclose()
        await db.close()
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_reference")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--proxy", action="append", required=True)
    parser.add_argument("--connections", type=int, default=8, help="asyncpg pool size")
    parser.add_argument("--tick", type=float, default=0.1, help="seconds between claims")
    parser.add_argument("--batch", type=int, default=500, help="most tasks one claim takes")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
