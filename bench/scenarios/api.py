"""api: ``GET /v1/watches`` (an owner with 1,000 watches, pages of 100) while the pipeline runs.

The API runs as in production (``steamwatch run api``, ``WORKERS`` uvicorn workers, the
per-token rate set out of reach: the limiter still runs on every request, one Redis call).
The owner has 1,000 watches, due a day from now; beside them 2,000 watches of other owners are
checked every 60 s by the scheduler, fetcher and publisher against the simulator (50 ms
answers, no limits), about 33 checks a second, so the API shares the two cores and PostgreSQL
with real checks. In the benchmark process, ``CLIENTS`` closed-loop clients (aiohttp, kept-
alive connections) each ask for a page and follow its ``next_cursor`` through the ten pages,
then start again; every request carries the owner's token, so each is authenticated and
rate-counted. After ``WARM_S`` seconds of warm-up, ``SECONDS`` are measured: requests a
second (answered 200), latency per request (``time.perf_counter`` around it, client side, so
it includes the client's own queueing), non-200 answers, CPU per request of the API's
processes and of the client, and the checks the pipeline stored in the same window.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import aiohttp
import orjson
from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import (
    PIPELINE,
    cpu_seconds,
    insert_tasks,
    item_names,
    quantile,
    start_pipeline,
    stop,
    unlimited_budgets,
    wait_ready,
    warm_up,
)
from shared.access import create_token

DESCRIPTION = "GET /v1/watches (1,000 watches, pages of 100) while 2,000 watches are checked"
TARGETS = {"rps": (">=", 500.0), "p99_ms": ("<=", 50.0), "errors": ("<=", 0.0)}

OWNER = "api-owner"
WATCHES = 1_000
PAGE = 100
BACKGROUND = 2_000
INTERVAL = 60
WORKERS = 2
CLIENTS = 8
WARM_S = 5.0
SECONDS = 20.0

_OWN = text(
    """
    INSERT INTO tasks (owner, appid, market_hash_name, currency, kind, conditions,
                       check_interval, next_check)
    SELECT :owner, 730, 'API Item ' || g, 3, 'lowest_price', '{"max_price": 1250}', 3600,
           now() + interval '1 day'
    FROM generate_series(1, :count) AS g
    """
)


async def run(bench: Bench) -> dict[str, Any]:
    system = bench.system(STEAMWATCH_BUDGETS=unlimited_budgets(1))
    system.start_simulator("--no-limits", "--latency-ms", "50", "--tick-seconds", "3600", proxies=2)
    names = await item_names(system)
    await warm_up(system, names)
    db = bench.database()
    try:
        async with db.session_scope() as s:
            await s.execute(_OWN, {"owner": OWNER, "count": WATCHES})
            _, token = await create_token(s, owner=OWNER)
        await insert_tasks(db, count=BACKGROUND, interval=INTERVAL, spread=INTERVAL, names=names)
        start_pipeline(system)
        _, url = system.start_api(STEAMWATCH_API_RATE="100000", STEAMWATCH_API_WORKERS=str(WORKERS))
        await wait_ready(
            system, bench.redis_url, {"fetcher": 1, "publisher": 1, "scheduler": 1, "api": 1}
        )
        say(f"api: {CLIENTS} clients, {WORKERS} workers, {SECONDS:.0f}s after {WARM_S:.0f}s")
        latencies: list[float] = []
        errors = 0
        measuring = False
        stop_at = time.monotonic() + WARM_S + SECONDS
        headers = {"Authorization": f"Bearer {token}"}
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

            async def client() -> None:
                nonlocal errors
                cursor: str | None = None
                while time.monotonic() < stop_at:
                    params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
                    began = time.perf_counter()
                    async with http.get(f"{url}/v1/watches", params=params) as answer:
                        # orjson: the client shares the two cores, so it reads cheaply.
                        body = orjson.loads(await answer.read()) if answer.status == 200 else None
                        status = answer.status
                    if measuring:
                        latencies.append(time.perf_counter() - began)
                        errors += status != 200
                    cursor = body["next_cursor"] if body else None

            clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
            await asyncio.sleep(WARM_S)
            measuring = True
            api_cpu = cpu_seconds(system, ["api", *PIPELINE])
            own_cpu = _own_cpu()
            checks_before = await _checks(db)
            window = time.perf_counter()
            await asyncio.gather(*clients)
            elapsed = time.perf_counter() - window
            checks_after = await _checks(db)
            own_cpu = _own_cpu() - own_cpu
            spent = cpu_seconds(system, ["api", *PIPELINE])
        stop(system, ["api", *PIPELINE])
    finally:
        await db.dispose()
    answered = len(latencies) - errors
    requests = max(1, len(latencies))
    pipeline_cpu = sum(spent.get(s, 0.0) - api_cpu.get(s, 0.0) for s in PIPELINE)
    return {
        "rps": round(answered / elapsed, 1),
        "p50_ms": round(1000 * quantile(latencies, 0.5), 1),
        "p99_ms": round(1000 * quantile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies, default=float("nan")), 1),
        "errors": errors,
        "requests": len(latencies),
        "api_workers": WORKERS,
        "clients": CLIENTS,
        "api_cpu_ms_per_request": round(
            1000 * (spent.get("api", 0.0) - api_cpu.get("api", 0.0)) / requests, 3
        ),
        "client_cpu_ms_per_request": round(1000 * own_cpu / requests, 3),
        "pipeline_checks_per_s": round((checks_after - checks_before) / elapsed, 1),
        "pipeline_cpu_share": round(pipeline_cpu / elapsed, 2),
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _checks(db: Any) -> int:
    async with db.session_scope() as s:
        return int((await s.execute(text("SELECT count(*) FROM price_history"))).scalar_one())
