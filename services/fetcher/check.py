"""One check: load the task, ask Steam, store the answer, move the task on, tell the publisher.

One ``session_scope()`` per message. The session gives its connection back while Steam
answers (a check may take seconds; a connection held meanwhile would starve the pool), and
every write is conditional on the lease, so a stale or duplicate message changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert

from services.fetcher.metrics import CHECKS, TRANSITIONS
from shared.alerts import ConditionError, NewListingCondition, parse_conditions
from shared.bus import CheckMessage, ResultMessage, send_result
from shared.db import Database, PriceSnapshot, Task
from shared.observability import redact_text
from shared.steam import (
    Item,
    ItemNotFound,
    ListingFilter,
    Listings,
    OrderBook,
    PriceOverview,
    ProxyPoolExhausted,
    Result,
    SteamClient,
    SteamError,
)
from shared.tasks import Backoff, defer, release_failure, release_success

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Fetcher:
    """What a check needs from its process: the pools, the Steam client, the broker."""

    db: Database
    steam: SteamClient
    broker: dramatiq.Broker
    backoff: Backoff = Backoff()
    # True once this worker is shutting down (its HTTP session may close under a check).
    stopping: Callable[[], bool] = lambda: False


async def fetch(
    steam: SteamClient, kind: str, item: Item, conditions: dict[str, Any] | None = None
) -> Result:
    if kind == "lowest_price":
        return await steam.price_overview(item)
    if kind == "new_listings":
        return await steam.listings(item, wanted=listing_filter(conditions or {}, item.currency))
    return await steam.order_book(item)


def listing_filter(conditions: dict[str, Any], currency: int) -> ListingFilter:
    """A listings watch's conditions as Steam's server-side filter (none if they do not parse:
    the publisher reports bad conditions, the check still looks)."""
    try:
        condition = parse_conditions("new_listings", conditions, currency=currency)
    except ConditionError:
        return ListingFilter()
    assert isinstance(condition, NewListingCondition)
    return ListingFilter(
        max_price=condition.max_price,
        float_min=condition.float_min,
        float_max=condition.float_max,
    )


def snapshot_row(
    task_id: int, message: CheckMessage, currency: int, result: Result
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "task_id": task_id,
        "lease_token": message.lease_token,
        "currency": currency,
    }
    if isinstance(result, PriceOverview):
        row |= {
            "lowest_price": result.lowest_price,
            "median_price": result.median_price,
            "volume": result.volume,
            "source": "priceoverview",
        }
    elif isinstance(result, OrderBook):
        row |= {
            "highest_buy": result.highest_buy,
            "lowest_sell": result.lowest_sell,
            "buy_count": result.buy_count,
            "sell_count": result.sell_count,
            "lowest_price": result.lowest_sell,
            "book": {"sells": result.sells, "buys": result.buys},
            "source": "orderbook",
        }
    elif isinstance(result, Listings):
        row |= {
            "listings": [entry.model_dump(mode="json") for entry in result.listings],
            "lowest_price": min((e.total for e in result.listings), default=None),
            "sell_count": result.total_count,
            "source": "listings",
        }
    return row


async def check_task(fetcher: Fetcher, message: CheckMessage) -> ResultMessage | None:
    """Run one check; returns what was sent to the publisher, or None if the message was dropped."""
    token = message.lease_token
    async with fetcher.db.session_scope() as session:
        task = (await session.execute(_LOAD, {"task_id": message.task_id})).one_or_none()
        why = _drop_reason(task, message)
        if why is not None:
            log.info("check dropped", task_id=message.task_id, reason=why)
            CHECKS.labels(outcome=f"dropped_{why}").inc()
            return None
        assert task is not None
        item = Item(task.appid, task.market_hash_name, task.currency)
        kind, task_id = task.kind, task.id
        # Give the connection back while Steam answers.
        await session.commit()

        result: Result | None = None
        error: str | None = None
        missing: ItemNotFound | None = None
        try:
            result = await fetch(fetcher.steam, kind, item, task.conditions)
        except ProxyPoolExhausted as e:
            next_check = await defer(session, task_id=task_id, token=token, at=e.retry_at)
            CHECKS.labels(outcome="deferred").inc()
            log.info("no proxy free; deferred", task_id=task_id, until=str(next_check))
            return None
        except Exception as e:
            if fetcher.stopping():
                # Cut short by this worker's shutdown, not the task's failure: the lease stays,
                # and the message, handed back to the queue, is redone by another worker.
                log.info(
                    "check interrupted by shutdown; left for another worker",
                    task_id=task_id,
                    error=f"{type(e).__name__}",
                )
                CHECKS.labels(outcome="interrupted").inc()
                return None
            if not isinstance(e, SteamError):  # a bug or an outage: a failed check all the same
                log.exception("check failed unexpectedly", task_id=task_id)
            if isinstance(e, ItemNotFound):
                missing = e
            error = redact_text(f"{type(e).__name__}: {e}")

        checked_at = datetime.now(UTC)
        if result is not None:
            success = await release_success(session, task_id=task_id, token=token)
            if success is None:
                CHECKS.labels(outcome="dropped_stale").inc()
                return None
            await session.execute(_STORE, snapshot_row(task_id, message, item.currency, result))
            CHECKS.labels(outcome="ok").inc()
            if success.recovered:
                TRANSITIONS.labels(to="recovered").inc()
                log.info("task recovered", task_id=task_id, reason=message.reason)
            reply = ResultMessage(
                task_id=task_id,
                lease_token=token,
                checked_at=checked_at,
                outcome="ok",
                result=result,
                recovered=success.recovered,
            )
        else:
            assert error is not None
            failure = await release_failure(
                session,
                task_id=task_id,
                token=token,
                error=error,
                backoff=fetcher.backoff,
                permanent=missing is not None and missing.confirmed,
            )
            if failure is None:
                CHECKS.labels(outcome="dropped_stale").inc()
                return None
            CHECKS.labels(outcome="error").inc()
            log.warning(
                "check failed",
                task_id=task_id,
                error=error,
                consecutive_errors=failure.consecutive_errors,
                recovery_attempts=failure.recovery_attempts,
                status=failure.status,
                next_check=failure.next_check.isoformat(),
            )
            if failure.became_stalled or failure.became_failed:
                TRANSITIONS.labels(to=failure.status).inc()
                log.error(
                    "task stalled" if failure.became_stalled else "task failed",
                    task_id=task_id,
                    error=error,
                    recovery_attempts=failure.recovery_attempts,
                )
            reply = ResultMessage(
                task_id=task_id,
                lease_token=token,
                checked_at=checked_at,
                outcome="error",
                error=error[:500],
                became_stalled=failure.became_stalled,
                became_failed=failure.became_failed,
            )
    # Sent once the row is committed: the publisher never sees a check that did not happen.
    send_result(fetcher.broker, reply)
    return reply


# Plain statements, built once: a check runs these two thousands of times a minute, and the
# ORM's identity map and per-call statement building cost more than the queries themselves.
_LOAD = select(
    Task.id,
    Task.is_active,
    Task.status,
    Task.lease_token,
    Task.appid,
    Task.market_hash_name,
    Task.currency,
    Task.kind,
    Task.conditions,
).where(Task.id == bindparam("task_id"))
_STORE = insert(PriceSnapshot)  # once: only after release_success held the lease


def _drop_reason(task: Any, message: CheckMessage) -> str | None:
    """Why a check is not done: ``task`` is the row ``_LOAD`` read, or None."""
    if task is None:
        return "gone"
    if not task.is_active or task.status in ("paused", "failed"):
        return "inactive"
    if task.lease_token != message.lease_token:
        return "stale"
    return None
