"""Demo watches for ``make run``: twenty real items from the simulator's catalogue, a
subscription sending their alerts to the local webhook receiver, and an API token.

Only added to an empty table, so a real deployment's tasks and subscriptions are never
touched. Thresholds sit at each item's base price, so alerts come and go as the simulated
market moves, and each one arrives at the receiver as a delivered notification.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import func, insert, select

from shared.access import BadToken, authenticate, create_token
from shared.db import Database, Subscription, Task
from shared.notify import NOTIFY_KINDS, SecretBox, parse_destination

USD = 1
OWNER = "demo"


def demo_rows(catalogue: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """14 lowest-price, 4 new-listing and 2 order-book watches over varied, traded items."""
    traded = [i for i in catalogue if i["daily_volume"] > 0]
    by_app: dict[int, list[dict[str, Any]]] = {}
    for item in traded:
        by_app.setdefault(item["appid"], []).append(item)
    picked = by_app.get(730, [])[:14] + by_app.get(570, [])[:3] + by_app.get(440, [])[:3]
    now = datetime.now(UTC)
    rows = []
    for i, item in enumerate(picked[:20]):
        price = int(item["base_price_usd_cents"])
        if i % 5 == 4:
            kind, interval, conditions = "new_listings", 60, {"max_price": price * 105 // 100}
        elif i in (3, 13):
            kind, interval, conditions = "order_book", 600, {"max_lowest_sell": price}
        else:
            kind, interval, conditions = "lowest_price", 30, {"max_price": price}
        rows.append(
            {
                "owner": OWNER,
                "appid": item["appid"],
                "market_hash_name": item["market_hash_name"],
                "currency": USD,
                "kind": kind,
                "conditions": conditions,
                "check_interval": interval,
                "next_check": now,
            }
        )
    return rows


async def seed_demo(*, database_url: str, simulator_url: str) -> int:
    """Add the demo watches if there are no tasks at all; returns how many were added."""
    db = Database.create(url=database_url, pool_size=1, max_overflow=0)
    try:
        async with db.session_scope() as session:
            if await session.scalar(select(func.count()).select_from(Task)):
                return 0
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{simulator_url}/__sim/catalogue") as response:
                    catalogue = (await response.json())["items"]
            rows = demo_rows(catalogue)
            await session.execute(insert(Task), rows)
            return len(rows)
    finally:
        await db.dispose()


async def seed_demo_subscription(*, database_url: str, url: str, box: SecretBox) -> bool:
    """Send the demo owner's alerts to ``url`` (the local receiver) if nobody subscribed yet."""
    destination = parse_destination(url)
    db = Database.create(url=database_url, pool_size=1, max_overflow=0)
    try:
        async with db.session_scope() as session:
            if await session.scalar(select(func.count()).select_from(Subscription)):
                return False
            session.add(
                Subscription(
                    owner=OWNER,
                    scheme=destination.scheme,
                    url_cipher=box.seal(url),
                    url_masked=destination.masked,
                    url_hash=destination.url_hash,
                    kinds=list(NOTIFY_KINDS),
                )
            )
            return True
    finally:
        await db.dispose()


async def demo_token(*, database_url: str, existing: str | None) -> str | None:
    """A new API token for the demo owner, or None when ``existing`` is still a live one.

    A token is shown only once, so ``make run`` keeps it in a file the newcomer's ``curl``
    reads (``$(cat .steamwatch/api-token)``) instead of printing it.
    """
    db = Database.create(url=database_url, pool_size=1, max_overflow=0)
    try:
        async with db.session_scope() as session:
            if existing:
                try:
                    await authenticate(session, existing)
                    return None
                except BadToken:
                    pass  # revoked, or from another database: make a new one
            _, token = await create_token(session, owner=OWNER, note="make run's demo token")
            return token
    finally:
        await db.dispose()
