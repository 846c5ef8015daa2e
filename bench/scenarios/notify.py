"""notify: 50 events a second to 25 webhook destinations answering in 50 ms; event to delivered.

The notifier runs as in production (`steamwatch run notifier`, default settings: 16 sends in
flight, the default 10 a second per webhook destination, kept as 10 in any 2 s, which 2 a
second each never binds), the webhook receiver stand-in answers every POST in 50 ms, and 25
owners each have one subscription. Events go onto ``steamwatch:events`` the way the publisher
puts them there, 50 a second for ``SECONDS`` seconds, each stamped with the moment it was
raised. Latency is
``sent_at - event_at`` of every delivery row (PostgreSQL's clock against the event's own time,
both on this machine), so it covers the stream, the consumer group, recording the delivery,
the claim, the rate limiter, the send through Apprise and the row marked sent.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio
from sqlalchemy import text

from bench.harness import Bench, say
from bench.scenarios.common import cpu_seconds, histogram_quantiles, metrics_url, quantile, stop
from shared.alerts import Event, publish
from shared.db import Subscription
from shared.notify import SecretBox, generate_key, parse_destination
from shared.steam import Item
from simulator.receiver import read_records

DESCRIPTION = "50 events/s to 25 webhooks answering in 50 ms: event-to-delivered p50/p99"
TARGETS = {"latency_p99_s": ("<=", 1.0), "delivered_once_share": (">=", 1.0)}

RATE = 50  # events a second
SECONDS = 60
OWNERS = 25
ITEM = Item(730, "AK-47 | Redline (Field-Tested)", 3)


async def run(bench: Bench) -> dict[str, Any]:
    key = generate_key()
    system = bench.system(STEAMWATCH_SECRET_KEY=key, STEAMWATCH_NOTIFY_ALLOW_PRIVATE="true")
    _, url, record = system.start_receiver("--delay", "0.05")
    db = bench.database()
    box = SecretBox([key])
    try:
        async with db.session_scope() as session:
            for n in range(OWNERS):
                hook = f"json://{url.removeprefix('http://')}/owner-{n}"
                destination = parse_destination(hook)
                session.add(
                    Subscription(
                        owner=f"owner-{n}",
                        scheme=destination.scheme,
                        url_cipher=box.seal(hook),
                        url_masked=destination.masked,
                        url_hash=destination.url_hash,
                        kinds=["price_at_or_below"],
                        template="{event_id}",
                    )
                )
        system.start("notifier")
        client = redis.asyncio.Redis.from_url(bench.redis_url)
        await _until_ready(client)
        cpu_before = cpu_seconds(system, ["notifier"]).get("notifier", 0.0)
        say(f"notify: {RATE} events/s for {SECONDS}s to {OWNERS} destinations")
        total = RATE * SECONDS
        started = time.perf_counter()
        for n in range(total):
            # Paced against the clock, not by sleeps that add up.
            lag = started + n / RATE - time.perf_counter()
            if lag > 0:
                await asyncio.sleep(lag)
            event = Event(
                id=f"{n}:bench:price",
                kind="price_at_or_below",
                task_id=n,
                owner=f"owner-{n % OWNERS}",
                item=ITEM,
                at=datetime.now(UTC),
                data={"price": 950, "price_text": "9,50€", "max_price": 1000},
            )
            await publish(client, [event])
        published_s = time.perf_counter() - started

        async def delivered() -> int:
            async with db.session_scope() as s:
                return int(
                    (
                        await s.execute(text("SELECT count(*) FROM deliveries WHERE status='sent'"))
                    ).scalar_one()
                )

        deadline = time.monotonic() + 60
        done = await delivered()
        while done < total and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            done = await delivered()
        cpu_after = cpu_seconds(system, ["notifier"]).get("notifier", 0.0)
        served = metrics_url(system, "notifier")
        from_histogram = (
            await histogram_quantiles(
                served, "steamwatch_notifier_delivery_latency_seconds", [0.5, 0.99]
            )
            if served
            else {}
        )
        stop(system, ["notifier"])
        async with db.session_scope() as s:
            latencies = [
                float(r[0])
                for r in await s.execute(
                    text(
                        "SELECT extract(epoch FROM sent_at - event_at) FROM deliveries "
                        "WHERE status = 'sent'"
                    )
                )
            ]
        await client.aclose()
    finally:
        await db.dispose()
    counts: dict[str, int] = {}
    for entry in read_records(record):
        body = entry.get("body")
        if entry.get("status") == 200 and isinstance(body, dict):
            counts[str(body.get("message"))] = counts.get(str(body.get("message")), 0) + 1
    once = sum(1 for c in counts.values() if c == 1)
    return {
        "latency_p50_s": round(quantile(latencies, 0.5), 3),
        "latency_p99_s": round(quantile(latencies, 0.99), 3),
        "latency_max_s": round(max(latencies, default=float("nan")), 3),
        "histogram_p99_le_s": from_histogram.get(0.99),
        "delivered_once_share": round(once / total, 4),
        "events": total,
        "delivered": done,
        "duplicates": sum(c - 1 for c in counts.values()),
        "published_per_s": round(total / published_s, 1),
        "notifier_cpu_ms_per_delivery": round(1000 * (cpu_after - cpu_before) / max(1, done), 2),
    }


async def _until_ready(client: redis.asyncio.Redis, within: float = 60) -> None:
    """The notifier's consumer group exists once it reads the stream."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            groups = await client.xinfo_groups("steamwatch:events")
            if groups:
                return
        except redis.ResponseError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the notifier did not start reading the stream")
