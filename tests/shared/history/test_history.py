"""History upkeep and queries on a real PostgreSQL: roll-ups, retention, and what a range answers.

Checks are inserted with their own `checked_at`, so a test can hold weeks of history; the
upkeep is run with an explicit `now`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from shared.db import Database
from shared.history import HistoryError, Point, Retention, history, maintain
from tests.fixtures.tasks import add_tasks

NOW = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def _task(db: Database, interval: int = 600) -> int:
    [task_id] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AK-47 | Redline (Field-Tested)",
                "kind": "lowest_price",
                "check_interval": interval,
            }
        ],
    )
    return task_id


async def _checks(db: Database, task_id: int, rows: list[tuple[datetime, int | None, int]]) -> None:
    """(checked_at, lowest_price, volume) rows, as the fetcher stores them."""
    async with db.session_scope() as s:
        for at, price, volume in rows:
            await s.execute(
                text(
                    "INSERT INTO price_history (task_id, lease_token, checked_at, currency, "
                    "lowest_price, volume, source) VALUES (:t, gen_random_uuid(), :at, 3, :p, "
                    ":v, 'priceoverview')"
                ),
                {"t": task_id, "at": at, "p": price, "v": volume},
            )


async def _mark(db: Database, at: datetime) -> None:
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM history_state"))
        await s.execute(text("INSERT INTO history_state VALUES (1, :at)"), {"at": at})


async def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.session_scope() as s:
        return list((await s.execute(text(sql), params)).all())


async def test_closed_hours_are_rolled_up_with_first_min_max_last_and_the_last_volume(
    db: Database,
) -> None:
    task = await _task(db)
    ten = NOW.replace(hour=10, minute=0)
    await _checks(
        db,
        task,
        [
            (ten + timedelta(minutes=5), 500, 7),
            (ten + timedelta(minutes=25), 450, 8),
            (ten + timedelta(minutes=45), 520, None),
            (ten + timedelta(minutes=55), None, 9),  # no price this time: not a price point
            (ten + HOUR + timedelta(minutes=10), 480, 10),
            (NOW - timedelta(minutes=2), 470, 11),  # the open hour: not rolled up yet
        ],
    )
    await _mark(db, ten)
    done = await maintain(db, NOW)
    assert (done.rolled_hours, done.skipped) == (2, False)  # 10:00 and 11:00; 12:00 is open
    rollups = await _rows(
        db, "SELECT hour, checks, first, min, max, last, volume FROM price_rollups ORDER BY hour"
    )
    assert rollups == [
        (ten, 4, 500, 450, 520, 520, 9),
        (ten + HOUR, 1, 480, 480, 480, 480, 10),
    ]
    assert await _rows(db, "SELECT rolled_until FROM history_state") == [(ten + 2 * HOUR,)]
    again = await maintain(db, NOW)
    assert again.rolled_hours == 0  # nothing new closed: a pass is idempotent


async def test_a_pass_rolls_up_a_bounded_number_of_hours_when_catching_up(db: Database) -> None:
    task = await _task(db)
    start = NOW - timedelta(days=3)
    await _checks(db, task, [(start + i * HOUR, 100 + i, 1) for i in range(72)])
    await _mark(db, start.replace(minute=0))
    first = await maintain(db, NOW, Retention(hours_per_pass=24))
    second = await maintain(db, NOW, Retention(hours_per_pass=24))
    assert (first.rolled_hours, second.rolled_hours) == (24, 24)
    assert (await _rows(db, "SELECT count(*) FROM price_rollups"))[0][0] == 48


async def test_raw_checks_go_past_retention_but_never_before_they_are_rolled_up(
    db: Database,
) -> None:
    task = await _task(db)
    old = NOW - timedelta(days=20)
    await _checks(db, task, [(old + i * HOUR, 100, 1) for i in range(5)])
    await _checks(db, task, [(NOW - HOUR, 100, 1)])
    await _mark(db, old.replace(minute=0) - HOUR)  # nothing of it rolled up yet
    done = await maintain(db, NOW, Retention(raw=timedelta(days=14), hours_per_pass=2))
    # Two hours rolled this pass: only their checks may go; the rest waits for its roll-up.
    assert done.deleted_raw == 1  # the check at `old` (hour 0); hour 1 is past the watermark
    remaining = await _rows(db, "SELECT count(*) FROM price_history")
    assert remaining == [(5,)]
    while (
        await maintain(db, NOW, Retention(raw=timedelta(days=14), hours_per_pass=48))
    ).rolled_hours:
        pass
    assert await _rows(db, "SELECT count(*) FROM price_history") == [(1,)]  # the recent one
    # Every hour kept, rolled up: the five old ones and the recent one.
    assert (await _rows(db, "SELECT count(*) FROM price_rollups"))[0][0] == 6


async def test_rollups_go_past_their_retention(db: Database) -> None:
    task = await _task(db)
    await _mark(db, NOW.replace(minute=0))
    async with db.session_scope() as s:
        for days in (400, 300):
            await s.execute(
                text("INSERT INTO price_rollups VALUES (:t, :h, 3, 1, 1, 1, 1, 1, NULL)"),
                {"t": task, "h": NOW.replace(minute=0) - timedelta(days=days)},
            )
    done = await maintain(db, NOW, Retention(rollups=timedelta(days=365)))
    assert done.deleted_rollups == 1
    assert (await _rows(db, "SELECT count(*) FROM price_rollups"))[0][0] == 1


async def test_announced_listings_are_forgotten_only_when_no_check_has_seen_them_for_long(
    db: Database,
) -> None:
    often = await _task(db, interval=60)
    [weekly] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AWP | Asiimov (Field-Tested)",
                "kind": "lowest_price",
                "check_interval": 7 * 86400,
            }
        ],
    )
    await _mark(db, NOW.replace(minute=0))
    async with db.session_scope() as s:
        for task, listing, age in (
            (often, "gone", timedelta(days=4)),
            (often, "still-listed", timedelta(hours=1)),
            (weekly, "weekly-old", timedelta(days=4)),  # two of its intervals are 14 days
        ):
            await s.execute(
                text("INSERT INTO seen_listings VALUES (:t, :l, :at)"),
                {"t": task, "l": listing, "at": NOW - age},
            )
    done = await maintain(db, NOW, Retention(seen_listings=timedelta(days=3)))
    assert done.deleted_seen == 1
    kept = await _rows(db, "SELECT listing_id FROM seen_listings ORDER BY listing_id")
    assert kept == [("still-listed",), ("weekly-old",)]


async def test_a_second_replica_skips_the_pass_while_one_holds_the_watermark(
    db: Database,
) -> None:
    await _mark(db, NOW.replace(minute=0) - 3 * HOUR)
    async with db.engine.connect() as held:
        await held.execute(text("SELECT * FROM history_state FOR UPDATE"))
        done = await maintain(db, NOW)
        await held.rollback()
    assert done.skipped and done.rolled_hours == 0
    assert (await maintain(db, NOW)).rolled_hours == 3


async def test_a_range_answers_from_rollups_and_the_raw_tail_together(db: Database) -> None:
    task = await _task(db)
    ten = NOW.replace(hour=10, minute=0)
    await _checks(
        db,
        task,
        [
            (ten + timedelta(minutes=5), 500, 7),
            (ten + timedelta(minutes=50), 450, 8),
            (ten + HOUR + timedelta(minutes=30), 480, 9),
            (ten + 2 * HOUR + timedelta(minutes=10), 470, 10),  # the open hour: raw only
        ],
    )
    await _mark(db, ten)
    await maintain(db, NOW)  # 10:00 and 11:00 rolled
    async with db.session_scope() as s:
        await s.execute(
            text("DELETE FROM price_history WHERE checked_at < :at"), {"at": ten + HOUR}
        )
        hourly = await history(s, task_id=task, interval=600, since=ten, until=NOW, resolution="1h")
        daily = await history(s, task_id=task, interval=600, since=ten, until=NOW, resolution="1d")
    assert [(p.at, p.checks, p.first, p.min, p.max, p.last) for p in hourly.points] == [
        (ten, 2, 500, 450, 500, 450),  # from the roll-up: its raw checks are gone
        (ten + HOUR, 1, 480, 480, 480, 480),
        (ten + 2 * HOUR, 1, 470, 470, 470, 470),  # from the raw checks
    ]
    assert daily.points == [
        Point(
            at=NOW.replace(hour=0, minute=0),
            checks=4,
            first=500,
            min=450,
            max=500,
            last=470,
            volume=10,
        )
    ]


async def test_auto_picks_raw_for_a_short_range_and_hours_beyond_the_raw_checks(
    db: Database,
) -> None:
    task = await _task(db)
    await _mark(db, NOW.replace(minute=0))
    async with db.session_scope() as s:
        day = await history(s, task_id=task, interval=600, since=NOW - timedelta(days=1), until=NOW)
        year = await history(
            s,
            task_id=task,
            interval=600,
            since=NOW - timedelta(days=365),
            until=NOW,
            raw_kept_from=NOW - timedelta(days=14),
        )
        month = await history(
            s,
            task_id=task,
            interval=600,
            since=NOW - timedelta(days=30),
            until=NOW,
            raw_kept_from=NOW - timedelta(days=14),
        )
    assert (day.resolution, month.resolution, year.resolution) == ("raw", "1h", "6h")


@pytest.mark.parametrize(
    ("since", "until", "resolution", "field", "reason"),
    [
        (NOW, NOW - HOUR, "auto", "since", "must be before until"),
        (NOW - timedelta(days=30), NOW, "1m", "resolution", "more than 2000 points"),
        (NOW - HOUR, NOW, "2h", "resolution", "must be one of auto, raw, 1m"),
    ],
)
async def test_bad_ranges_name_the_field(
    db: Database, since: datetime, until: datetime, resolution: str, field: str, reason: str
) -> None:
    async with db.session_scope() as s:
        with pytest.raises(HistoryError) as caught:
            await history(
                s, task_id=1, interval=600, since=since, until=until, resolution=resolution
            )
    assert caught.value.field == field and reason in caught.value.reason
