"""One check: load the task, ask Steam, judge the answer, store it, move the task on, and tell
the owner.

One ``session_scope()`` per message. The session gives its connection back while Steam
answers (a check may take seconds; a connection held meanwhile would starve the pool), and
every write is conditional on the lease, so a stale or duplicate message changes nothing: its
judgment and its events vanish with it. Events are written to the outbox in the check's
transaction and published right after its commit (see :mod:`shared.alerts`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio
import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.fetcher.metrics import CHECKS, EVENTS, SENT, TRANSITIONS
from shared.alerts import (
    ConditionError,
    Event,
    Judgment,
    NewListingCondition,
    NotJudged,
    Sent,
    Staged,
    Watch,
    judge,
    parse_conditions,
    recovered,
    remember_listings,
    send_staged,
    stage,
)
from shared.bus import CheckMessage
from shared.db import Database, Task
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
from shared.tasks import (
    Backoff,
    Success,
    defer,
    release_failure,
    release_success,
    transition_events,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Fetcher:
    """What a check needs from its process: the pools and the Steam client."""

    db: Database
    redis: redis.asyncio.Redis
    steam: SteamClient
    backoff: Backoff = Backoff()
    # True once this worker is shutting down (its HTTP session may close under a check).
    stopping: Callable[[], bool] = lambda: False


async def fetch(
    steam: SteamClient, kind: str, item: Item, conditions: Mapping[str, Any] | None = None
) -> Result:
    if kind == "lowest_price":
        return await steam.price_overview(item)
    if kind == "new_listings":
        return await steam.listings(item, wanted=listing_filter(conditions or {}, item.currency))
    return await steam.order_book(item)


def listing_filter(conditions: Mapping[str, Any], currency: int) -> ListingFilter:
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


def snapshot_row(result: Result, currency: int) -> dict[str, Any]:
    """What a check of a watch in ``currency`` saw, as the columns of its price_history row
    (``shared.tasks.SNAPSHOT_COLUMNS``)."""
    row: dict[str, Any] = {"currency": currency}
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


@dataclass(frozen=True)
class Checked:
    """What one check did: its outcome, the events it raised and what became of them."""

    outcome: str  # ok | error
    events: tuple[Event, ...] = ()
    sent: Sent = Sent()
    recovered: bool = False
    became_stalled: bool = False
    became_failed: bool = False


async def check_message(fetcher: Fetcher, message: CheckMessage) -> list[Checked | None]:
    """Run every claim of a check message at once, each as :func:`check_task`.

    Each claim stands alone: one that raises (a store down) does not stop the others, and the
    first error is raised once all are done, so dramatiq retries the message; the retry finds
    the finished claims' leases released and drops them, and redoes the rest.
    """
    claims = message.claims()
    if len(claims) == 1:
        return [await check_task(fetcher, message)]

    async def one(claim: CheckMessage) -> Checked | None:
        with structlog.contextvars.bound_contextvars(task_id=claim.task_id):
            return await check_task(fetcher, claim)

    done = await asyncio.gather(*(one(c) for c in claims), return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast("list[Checked | None]", done)


async def check_task(fetcher: Fetcher, message: CheckMessage) -> Checked | None:
    """Run one check and tell its owner what it means; None if the message was dropped.

    The check's row, the watch's release, its judged condition state, the listings it
    announced and its events (in the outbox) are written together, conditional on the lease;
    the events are published right after the commit. A check that raises nothing and writes
    nothing but its row and the state (the usual one) is two statements: the load, and one
    that releases the lease and stores the row, each its own transaction.
    """
    token = message.lease_token
    db = fetcher.db
    async with db.autocommit() as conn:  # no connection is held while Steam answers
        task = (await conn.execute(_LOAD, {"task_id": message.task_id})).one_or_none()
    why = _drop_reason(task, message)
    if why is not None:
        log.info("check dropped", task_id=message.task_id, reason=why)
        CHECKS.labels(outcome=f"dropped_{why}").inc()
        return None
    assert task is not None
    watch = Watch(
        task_id=task.id,
        owner=task.owner,
        kind=task.kind,
        item=Item(task.appid, task.market_hash_name, task.currency),
        conditions=task.conditions,
        condition_state=task.condition_state,
    )
    task_id = watch.task_id

    result: Result | None = None
    error: str | None = None
    missing: ItemNotFound | None = None
    try:
        result = await fetch(fetcher.steam, watch.kind, watch.item, watch.conditions)
    except ProxyPoolExhausted as e:
        async with db.autocommit() as conn:
            next_check = await defer(conn, task_id=task_id, token=token, at=e.retry_at)
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
    staged = Staged()
    if result is not None:
        checked, staged = await _succeeded(db, watch, task.status, message, result, checked_at)
    else:
        assert error is not None
        async with db.session_scope() as session:
            checked = await _failed(
                session,
                fetcher,
                watch,
                message,
                error,
                checked_at,
                permanent=missing is not None and missing.confirmed,
            )
            if checked is not None:
                staged = await stage(session, checked.events)
    if checked is None:  # the lease moved on while Steam answered: nothing written
        log.info("check dropped", task_id=task_id, reason="stale", when="release")
        CHECKS.labels(outcome="dropped_stale").inc()
        return None
    # Committed: the events are safe in the outbox; publish them now (the publisher sends what
    # this could not).
    sent = await send_staged(db, fetcher.redis, staged)
    for event in checked.events:
        EVENTS.labels(kind=event.kind).inc()
    SENT.labels(outcome="published").inc(sent.published)
    SENT.labels(outcome="duplicate").inc(sent.duplicates)
    SENT.labels(outcome="left").inc(sent.left)
    return replace(checked, sent=sent)


async def _succeeded(
    db: Database,
    watch: Watch,
    status: str,
    message: CheckMessage,
    result: Result,
    checked_at: datetime,
) -> tuple[Checked | None, Staged]:
    """Judge the result and write it all; the events staged (written: publish them)."""
    token = message.lease_token
    snapshot = snapshot_row(result, watch.item.currency)
    judgment: Judgment | None = None
    async with db.autocommit() as conn:
        try:
            judgment = await judge(conn, watch, result, lease_token=token, at=checked_at)
        except NotJudged as e:
            log.error("result not judged", task_id=watch.task_id, problem=str(e))
            CHECKS.labels(outcome="not_judged").inc()
    # The usual check (an active watch, nothing judged new: no events, no listings to write)
    # is one statement in autocommit; the rest is one transaction.
    quiet = status == "active" and (judgment is None or not judgment.writes_more)
    unit = db.autocommit() if quiet else db.session_scope()
    async with unit as writer:
        success = await release_success(
            writer,
            task_id=watch.task_id,
            token=token,
            state=None if judgment is None else judgment.state,
            conditions=watch.conditions,
            snapshot=snapshot,
        )
        if success is None:
            return None, Staged()
        CHECKS.labels(outcome="ok").inc()
        if judgment is not None and success.judged:
            await remember_listings(writer, watch.task_id, judgment)
        checked = _news(watch, message, success, checked_at, judgment)
        return checked, await stage(writer, checked.events)


def _news(
    watch: Watch,
    message: CheckMessage,
    success: Success,
    checked_at: datetime,
    judgment: Judgment | None,
) -> Checked:
    """The events of a stored check: recovered (a stalled watch answered), and its signals."""
    events: list[Event] = []
    if success.recovered:
        TRANSITIONS.labels(to="recovered").inc()
        log.info("task recovered", task_id=watch.task_id, reason=message.reason)
        events.append(recovered(watch, lease_token=message.lease_token, at=checked_at))
    if judgment is not None and success.judged and success.live:
        events += judgment.events  # not when paused (or deleted) while Steam answered
    return Checked("ok", tuple(events), recovered=success.recovered)


async def _failed(
    session: AsyncSession,
    fetcher: Fetcher,
    watch: Watch,
    message: CheckMessage,
    error: str,
    checked_at: datetime,
    *,
    permanent: bool,
) -> Checked | None:
    token = message.lease_token
    failure = await release_failure(
        session,
        task_id=watch.task_id,
        token=token,
        error=error,
        backoff=fetcher.backoff,
        permanent=permanent,
    )
    if failure is None:
        return None
    CHECKS.labels(outcome="error").inc()
    log.warning(
        "check failed",
        task_id=watch.task_id,
        error=error,
        consecutive_errors=failure.consecutive_errors,
        recovery_attempts=failure.recovery_attempts,
        status=failure.status,
        next_check=failure.next_check.isoformat(),
    )
    events = transition_events(watch, failure, lease_token=token, at=checked_at, error=error)
    if failure.became_stalled or failure.became_failed:
        TRANSITIONS.labels(to=failure.status).inc()
        log.error(
            "task stalled" if failure.became_stalled else "task failed",
            task_id=watch.task_id,
            error=error,
            recovery_attempts=failure.recovery_attempts,
        )
    return Checked(
        "error",
        events,
        became_stalled=failure.became_stalled,
        became_failed=failure.became_failed,
    )


# Plain statements, built once: a check runs these two thousands of times a minute, and the
# ORM's identity map and per-call statement building cost more than the queries themselves.
_LOAD = select(
    Task.id,
    Task.owner,
    Task.is_active,
    Task.status,
    Task.lease_token,
    Task.appid,
    Task.market_hash_name,
    Task.currency,
    Task.kind,
    Task.conditions,
    Task.condition_state,
).where(Task.id == bindparam("task_id"))


def _drop_reason(task: Any, message: CheckMessage) -> str | None:
    """Why a check is not done: ``task`` is the row ``_LOAD`` read, or None."""
    if task is None:
        return "gone"
    if not task.is_active or task.status in ("paused", "failed"):
        return "inactive"
    if task.lease_token != message.lease_token:
        return "stale"
    return None
