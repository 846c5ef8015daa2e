"""A watch's price from one moment to another: raw checks, or buckets of first/min/max/last.

Buckets of an hour or more come from the hourly roll-ups (kept a year) plus, for the hours not
rolled up yet, the raw checks; finer buckets and ``raw`` come from the raw checks alone (kept
for days). ``auto`` picks the finest resolution that keeps the range to at most
:data:`POINTS_MAX` points and that the kept data can still answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

POINTS_MAX = 2_000
RESOLUTIONS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
HOUR = timedelta(hours=1)


class HistoryError(ValueError):
    """Raised when a history request cannot be answered as asked; ``field`` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket (or one raw check): when, how many checks, and the price over it."""

    at: datetime
    checks: int
    first: int | None
    min: int | None
    max: int | None
    last: int | None
    volume: int | None


@dataclass(frozen=True)
class History:
    task_id: int
    resolution: str
    since: datetime
    until: datetime
    points: list[Point]


def choose_resolution(
    wanted: str,
    span: timedelta,
    interval: int,
    *,
    raw_kept_from: datetime | None = None,
    since: datetime | None = None,
) -> str:
    """The resolution to answer with: ``wanted``, or for ``auto`` the finest that fits.

    A range reaching back before the raw checks kept (``raw_kept_from``) is answered in hours
    or more, from the roll-ups.
    """
    if wanted not in ("auto", "raw", *RESOLUTIONS):
        choices = ", ".join(["auto", "raw", *RESOLUTIONS])
        raise HistoryError("resolution", f"must be one of {choices}, got {wanted!r}")
    step = RESOLUTIONS.get(wanted, timedelta(seconds=interval))
    if wanted != "auto":
        if span / step > POINTS_MAX:
            raise HistoryError(
                "resolution",
                f"{wanted} over this range is more than {POINTS_MAX} points; use a coarser one",
            )
        return wanted
    needs_rollups = raw_kept_from is not None and since is not None and since < raw_kept_from
    if not needs_rollups and span / timedelta(seconds=interval) <= POINTS_MAX:
        return "raw"
    for name, size in RESOLUTIONS.items():
        if needs_rollups and size < HOUR:
            continue
        if span / size <= POINTS_MAX:
            return name
    return "7d"


_RAW = text(
    """
    SELECT checked_at AS at, 1 AS checks, lowest_price AS first, lowest_price AS min,
           lowest_price AS max, lowest_price AS last, volume
    FROM price_history
    WHERE task_id = :task AND checked_at >= :since AND checked_at < :until
    ORDER BY checked_at
    LIMIT :points
    """
)
# Raw checks in buckets finer than an hour.
_FINE = text(
    """
    SELECT date_bin(:step, checked_at, TIMESTAMPTZ '2000-01-01') AS at, count(*) AS checks,
           (array_agg(lowest_price ORDER BY checked_at)
              FILTER (WHERE lowest_price IS NOT NULL))[1] AS first,
           min(lowest_price) AS min, max(lowest_price) AS max,
           (array_agg(lowest_price ORDER BY checked_at DESC)
              FILTER (WHERE lowest_price IS NOT NULL))[1] AS last,
           (array_agg(volume ORDER BY checked_at DESC) FILTER (WHERE volume IS NOT NULL))[1]
             AS volume
    FROM price_history
    WHERE task_id = :task AND checked_at >= :since AND checked_at < :until
    GROUP BY 1
    ORDER BY 1
    LIMIT :points
    """
)
# Hours from the roll-ups before the watermark, from raw checks after it; then rebinned.
_COARSE = text(
    """
    WITH mark AS (SELECT coalesce((SELECT rolled_until FROM history_state WHERE id = 1),
                                  TIMESTAMPTZ '-infinity') AS at),
    hours AS (
        SELECT r.hour AS at, r.checks, r.first, r.min, r.max, r.last, r.volume
        FROM price_rollups r, mark
        WHERE r.task_id = :task AND r.hour >= date_trunc('hour', CAST(:since AS timestamptz))
          AND r.hour < :until AND r.hour < mark.at
        UNION ALL
        SELECT date_trunc('hour', h.checked_at), count(*),
               (array_agg(h.lowest_price ORDER BY h.checked_at)
                  FILTER (WHERE h.lowest_price IS NOT NULL))[1],
               min(h.lowest_price), max(h.lowest_price),
               (array_agg(h.lowest_price ORDER BY h.checked_at DESC)
                  FILTER (WHERE h.lowest_price IS NOT NULL))[1],
               (array_agg(h.volume ORDER BY h.checked_at DESC)
                  FILTER (WHERE h.volume IS NOT NULL))[1]
        FROM price_history h, mark
        WHERE h.task_id = :task AND h.checked_at >= greatest(CAST(:since AS timestamptz), mark.at)
          AND h.checked_at < :until
        GROUP BY 1
    )
    SELECT date_bin(:step, at, TIMESTAMPTZ '2000-01-01') AS at, sum(checks)::int AS checks,
           (array_agg(first ORDER BY at) FILTER (WHERE first IS NOT NULL))[1] AS first,
           min(min) AS min, max(max) AS max,
           (array_agg(last ORDER BY at DESC) FILTER (WHERE last IS NOT NULL))[1] AS last,
           (array_agg(volume ORDER BY at DESC) FILTER (WHERE volume IS NOT NULL))[1] AS volume
    FROM hours
    GROUP BY 1
    ORDER BY 1
    LIMIT :points
    """
)


async def history(
    session: AsyncSession,
    *,
    task_id: int,
    interval: int,
    since: datetime,
    until: datetime,
    resolution: str = "auto",
    raw_kept_from: datetime | None = None,
) -> History:
    """The watch's price from ``since`` to ``until`` (both aware), at ``resolution``."""
    if since >= until:
        raise HistoryError("since", f"must be before until ({until.isoformat()})")
    span = until - since
    if span > timedelta(days=3660):
        raise HistoryError("since", "a range is at most ten years")
    chosen = choose_resolution(resolution, span, interval, raw_kept_from=raw_kept_from, since=since)
    params: dict[str, Any] = {"task": task_id, "since": since, "until": until, "points": POINTS_MAX}
    if chosen == "raw":
        statement = _RAW
    else:
        params["step"] = RESOLUTIONS[chosen]
        statement = _COARSE if RESOLUTIONS[chosen] >= HOUR else _FINE
    # Every statement selects Point's fields in its order: rows become points by position
    # (by name, through mappings, costs more than the query itself for 2,000 points).
    result = await session.execute(statement, params)
    points = [Point(*row) for row in result]
    return History(task_id, chosen, since, until, points)
