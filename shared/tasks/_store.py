"""Watches as the CLI and the API write them: add one, import many, pause, resume, remove.

One implementation for both, so a watch the API accepts is exactly one the CLI would, and a
duplicate is refused the same way. Each function works inside the caller's transaction and
raises a :class:`WatchError` (nothing written) when it must stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Task
from shared.tasks._spec import TaskSpec, TaskSpecError, parse_task

WATCH_CONSTRAINT = "uq_tasks_watch"
WATCH_FIELDS = "duplicate watch (owner, appid, item, kind)"

#: A paused watch is not claimed; a check already sent still completes.
PAUSED: dict[str, Any] = {"status": "paused"}


def resumed() -> dict[str, Any]:
    """Column values that check a watch again from now, with a clean slate (revives failed
    ones): status active, error and recovery counters reset, last error and any lease cleared
    (a check still in flight loses its lease; its result is then ignored)."""
    return {
        "status": "active",
        "is_active": True,
        "consecutive_errors": 0,
        "recovery_attempts": 0,
        "last_error": None,
        "next_check": func.now(),
        "lease_token": None,
        "lease_expires_at": None,
    }


class WatchError(Exception):
    """Raised when a change to watches must stop; the caller's transaction is rolled back.
    ``details`` holds one line per bad row, where there are several."""

    details: tuple[str, ...] = ()


class DuplicateWatch(WatchError):
    """Raised when the owner already watches this item for this kind."""

    def __init__(self, spec: TaskSpec, task_id: int | None) -> None:
        holder = f"task {task_id}" if task_id is not None else "another task"
        super().__init__(
            f"{WATCH_FIELDS}: {holder} already watches {spec.appid}/{spec.market_hash_name!r}"
            f" ({spec.kind}) for {spec.owner!r}"
        )
        self.task_id = task_id


@dataclass(frozen=True, slots=True)
class Row:
    """One definition read from a file or a request body, and where it was."""

    where: str
    line: int
    fields: Any  # a mapping, unless the input holds something else
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be imported: where it is and what is wrong (field: reason)."""

    where: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class ImportRejected(WatchError):
    """Raised when an import has bad rows and may not skip them."""

    def __init__(self, bad: Sequence[BadRow], good: int, *, skip_hint: str) -> None:
        super().__init__(
            f"nothing imported: {len(bad)} of {len(bad) + good} rows are bad"
            f" ({skip_hint} imports the other {good} and lists the bad ones)"
        )
        self.bad = tuple(bad)
        self.details = tuple(str(row) for row in bad)


@dataclass
class Imported:
    """What an import wrote (ids, in input order) and the rows it skipped."""

    ids: list[int] = field(default_factory=list)
    skipped: list[BadRow] = field(default_factory=list)


def is_duplicate_watch(error: IntegrityError) -> bool:
    return WATCH_CONSTRAINT in str(error.orig)


def validate_rows(
    rows: Sequence[Row], *, min_interval: int
) -> tuple[list[tuple[Row, TaskSpec]], list[BadRow]]:
    """Valid rows with their specs, and bad ones; a watch given twice is bad the second time."""
    good: list[tuple[Row, TaskSpec]] = []
    bad: list[BadRow] = []
    first: dict[tuple[str, int, str, str], Row] = {}
    for row in rows:
        if row.problem is not None:
            bad.append(BadRow(row.where, row.line, row.problem))
            continue
        try:
            spec = parse_task(row.fields, min_interval=min_interval)
        except TaskSpecError as e:
            bad.append(BadRow(row.where, row.line, str(e)))
            continue
        if (earlier := first.get(spec.watch)) is not None:
            bad.append(BadRow(row.where, row.line, f"{WATCH_FIELDS}: same as {earlier.where}"))
            continue
        first[spec.watch] = row
        good.append((row, spec))
    return good, bad


def _same_watch(spec: TaskSpec) -> tuple[Any, ...]:
    return (
        Task.owner == spec.owner,
        Task.appid == spec.appid,
        Task.market_hash_name == spec.market_hash_name,
        Task.kind == spec.kind,
    )


async def add_watch(session: AsyncSession, spec: TaskSpec) -> Task:
    """Insert the watch; :class:`DuplicateWatch` if the owner watches it already."""
    holder = await session.scalar(select(Task.id).where(*_same_watch(spec)))
    if holder is not None:
        raise DuplicateWatch(spec, holder)
    try:
        async with session.begin_nested():
            inserted = await session.scalars(insert(Task).values(spec.row()).returning(Task))
            return inserted.one()
    except IntegrityError as e:  # added by someone else since the check above
        if is_duplicate_watch(e):
            raise DuplicateWatch(spec, None) from e
        raise


_HELD = text(
    """
    SELECT t.id, t.owner, t.appid, t.market_hash_name, t.kind
    FROM tasks AS t
    JOIN unnest(CAST(:owners AS text[]), CAST(:appids AS integer[]),
                CAST(:names AS text[]), CAST(:kinds AS text[])) AS w(owner, appid, name, kind)
      ON t.owner = w.owner AND t.appid = w.appid AND t.market_hash_name = w.name
     AND t.kind = w.kind
    """
)


async def held_watches(
    session: AsyncSession, specs: Sequence[TaskSpec]
) -> dict[tuple[str, int, str, str], int]:
    """Which of these watches exist already, and the id of the task holding each."""
    if not specs:
        return {}
    result = await session.execute(
        _HELD,
        {
            "owners": [s.owner for s in specs],
            "appids": [s.appid for s in specs],
            "names": [s.market_hash_name for s in specs],
            "kinds": [s.kind for s in specs],
        },
    )
    return {(r.owner, r.appid, r.market_hash_name, r.kind): r.id for r in result}


async def import_watches(
    session: AsyncSession,
    good: Sequence[tuple[Row, TaskSpec]],
    bad: Sequence[BadRow],
    *,
    skip_invalid: bool,
    skip_hint: str,
) -> Imported:
    """Write the good rows in one statement; duplicates of existing watches are bad rows.
    With a bad row and not ``skip_invalid``: :class:`ImportRejected`, nothing written;
    ``skip_hint`` names the option that would skip them, as the caller spells it."""
    held = await held_watches(session, [spec for _, spec in good])
    outcome = Imported(skipped=list(bad))
    writable = []
    for row, spec in good:
        if spec.watch in held:
            reason = f"{WATCH_FIELDS}: task {held[spec.watch]} already watches it"
            outcome.skipped.append(BadRow(row.where, row.line, reason))
        else:
            writable.append(spec.row())
    outcome.skipped.sort(key=lambda b: b.line)
    if outcome.skipped and not skip_invalid:
        raise ImportRejected(outcome.skipped, len(writable), skip_hint=skip_hint)
    if writable:
        try:
            async with session.begin_nested():
                statement = insert(Task).returning(Task.id, sort_by_parameter_order=True)
                outcome.ids = list(await session.scalars(statement, writable))
        except IntegrityError as e:
            if is_duplicate_watch(e):
                raise WatchError(
                    f"nothing imported: {WATCH_FIELDS}: a watch given was added meanwhile;"
                    " import again to see which"
                ) from e
            raise
    return outcome
