"""``/v1/watches/{id}/history``: a watch's price over a range, raw or in time buckets.

The price is the one the watch is about: the lowest sell order for an order book, the lowest
listing price otherwise. Buckets give first, min, max and last of it and the last volume seen;
``auto`` picks the finest resolution that keeps a range to at most ``POINTS_MAX`` points. The
queries are :mod:`shared.history`'s, the same ``steamwatch history`` asks: hourly roll-ups for
buckets of an hour or more, raw checks (kept ``STEAMWATCH_HISTORY_RAW_DAYS``) for finer ones.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from services.api.deps import PrincipalDep, SessionDep, StateDep, currency_code_of
from services.api.problems import Problem, responses
from services.api.routes.watches import owned
from services.api.schemas import History
from shared.history import HistoryError, history

router = APIRouter(prefix="/v1/watches", tags=["history"], responses=responses(400, 401, 429))

_TIME: dict[str, Any] = {"format": "date-time"}
Resolution = Literal["auto", "raw", "1m", "5m", "15m", "1h", "6h", "1d", "7d"]


@router.get("/{watch_id:int}/history", response_model=History, responses=responses(404, 422))
async def watch_history(
    watch_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    who: PrincipalDep,
    session: SessionDep,
    state: StateDep,
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
    price = "lowest_sell" if task.kind == "order_book" else "lowest_price"
    try:
        found = await history(
            session,
            task_id=task.id,
            interval=task.check_interval,
            since=start,
            until=end,
            resolution=resolution,
            raw_kept_from=now - timedelta(days=state.settings.history_raw_days),
        )
    except HistoryError as e:
        raise Problem.invalid(e.field, e.reason) from None
    return {
        "watch_id": task.id,
        "currency": task.currency,
        "currency_code": currency_code_of(task.currency),
        "price": price,
        "resolution": found.resolution,
        "since": start,
        "until": end,
        "points": [asdict(point) for point in found.points],
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
