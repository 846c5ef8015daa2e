"""``/v1/watches/{id}/history``: a watch's price over a range, raw or in time buckets.

The price is the one the watch is about: the lowest sell order for an order book, the lowest
listing price otherwise. Buckets give first, min, max and last of it and the last volume seen;
``auto`` picks the finest resolution that keeps a range to at most ``POINTS_MAX`` points.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import text

from services.api.deps import PrincipalDep, SessionDep, currency_code_of
from services.api.problems import Problem, responses
from services.api.routes.watches import owned
from services.api.schemas import History

router = APIRouter(prefix="/v1/watches", tags=["history"], responses=responses(400, 401, 429))

POINTS_MAX = 2_000
RESOLUTIONS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
}
_TIME: dict[str, Any] = {"format": "date-time"}
_SINCE = "Start, ISO 8601 with a zone (2026-12-01T10:00:00Z); default a day before until."
_UNTIL = "End, ISO 8601 with a zone; default now."
Resolution = Literal["auto", "raw", "1m", "5m", "15m", "1h", "6h", "1d"]

_RAW = """
    SELECT checked_at AS at, 1 AS checks, {p} AS first, {p} AS min, {p} AS max, {p} AS last,
           volume
    FROM price_history
    WHERE task_id = :task AND checked_at >= :since AND checked_at < :until
    ORDER BY checked_at
    LIMIT :points
"""
_BUCKETS = """
    SELECT date_bin(:step, checked_at, TIMESTAMPTZ '2000-01-01') AS at, count(*) AS checks,
           (array_agg({p} ORDER BY checked_at) FILTER (WHERE {p} IS NOT NULL))[1] AS first,
           min({p}) AS min, max({p}) AS max,
           (array_agg({p} ORDER BY checked_at DESC) FILTER (WHERE {p} IS NOT NULL))[1] AS last,
           (array_agg(volume ORDER BY checked_at DESC) FILTER (WHERE volume IS NOT NULL))[1]
             AS volume
    FROM price_history
    WHERE task_id = :task AND checked_at >= :since AND checked_at < :until
    GROUP BY 1
    ORDER BY 1
    LIMIT :points
"""


def _resolution(wanted: str, span: timedelta, interval: int) -> str:
    if wanted != "auto":
        step = RESOLUTIONS.get(wanted, timedelta(seconds=interval))
        if span / step > POINTS_MAX:
            raise Problem.invalid(
                "resolution",
                f"{wanted} over this range is more than {POINTS_MAX} points; use a coarser one",
            )
        return wanted
    if span / timedelta(seconds=interval) <= POINTS_MAX:
        return "raw"
    for name, step in RESOLUTIONS.items():
        if span / step <= POINTS_MAX:
            return name
    return "1d"


@router.get("/{watch_id:int}/history", response_model=History, responses=responses(404, 422))
async def watch_history(
    watch_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    who: PrincipalDep,
    session: SessionDep,
    since: Annotated[
        str | None,
        Query(
            description="Start, ISO 8601 with a zone; default a day before until.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            description="End, ISO 8601 with a zone; default now.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    resolution: Annotated[Resolution, Query()] = "auto",
) -> Any:
    task = await owned(session, who, watch_id)
    now = datetime.now(UTC)
    try:
        end = _aware(until, "until") if until is not None else now
        start = _aware(since, "since") if since is not None else end - timedelta(days=1)
    except OverflowError:
        raise Problem.invalid("since", "is out of range") from None
    if start >= end:
        raise Problem.invalid("since", f"must be before until ({end.isoformat()})")
    span = end - start
    if span > timedelta(days=3660):
        raise Problem.invalid("since", "a range is at most ten years")
    chosen = _resolution(resolution, span, task.check_interval)
    price = "lowest_sell" if task.kind == "order_book" else "lowest_price"
    params: dict[str, Any] = {"task": task.id, "since": start, "until": end, "points": POINTS_MAX}
    if chosen == "raw":
        query = _RAW.format(p=price)
    else:
        query = _BUCKETS.format(p=price)
        params["step"] = RESOLUTIONS[chosen]
    rows = (await session.execute(text(query), params)).mappings().all()
    return {
        "watch_id": task.id,
        "currency": task.currency,
        "currency_code": currency_code_of(task.currency),
        "price": price,
        "resolution": chosen,
        "since": start,
        "until": end,
        "points": [dict(r) for r in rows],
    }


def _aware(given: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(given)
    except ValueError:
        raise Problem.invalid(
            field, f"{given!r} is not an ISO 8601 time (2026-12-01T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise Problem.invalid(field, "needs a time zone (…Z or +02:00)")
    if not datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime(9999, 1, 1, tzinfo=UTC):
        raise Problem.invalid(field, "is out of range")
    return moment.astimezone(UTC)
