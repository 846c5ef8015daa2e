"""``/v1/watches``: an owner's watches: add, list, show, change, pause, resume, remove, import.

A watch another owner holds answers 404 exactly as one that does not exist. Every body is
checked by :func:`shared.tasks.parse_task`, the CLI's own validation, and written by
:mod:`shared.tasks`' store, the CLI's own writes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import Text, cast, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB

from services.api.deps import (
    PAGE_HELP,
    OwnerQuery,
    Pager,
    PrincipalDep,
    SessionDep,
    StateDep,
    check_owner_filter,
    currency_code_of,
    owner_for,
    page_limit,
)
from services.api.problems import Problem, responses
from services.api.schemas import (
    ImportIn,
    ImportOut,
    SkippedRow,
    Watch,
    WatchChange,
    WatchIn,
    WatchPage,
)
from shared.access import Principal
from shared.db import TASK_STATUSES, WATCH_KINDS, Task
from shared.steam import SUPPORTED_CURRENCIES, currency_code
from shared.tasks import (
    PAUSED,
    DuplicateWatch,
    ImportRejected,
    Row,
    TaskSpecError,
    WatchError,
    add_watch,
    import_watches,
    parse_interval,
    parse_task,
    resumed,
    validate_rows,
)

router = APIRouter(prefix="/v1/watches", tags=["watches"], responses=responses(400, 401, 429))

_CURSOR = r"^[0-9]{1,19}$"
StatusName = Literal[TASK_STATUSES]  # type: ignore[valid-type]
KindName = Literal[WATCH_KINDS]  # type: ignore[valid-type]
WatchId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The watch's id.")]


CURRENCY_CODES = {str(c): currency_code(c) for c in SUPPORTED_CURRENCIES}
#: A watch as the API shows it: its columns under the API's names.
WATCH_COLUMNS = (
    Task.id,
    Task.owner,
    Task.appid,
    Task.market_hash_name.label("item"),
    Task.currency,
    # Steam's code for the currency, looked up by PostgreSQL in the table of known ones.
    func.jsonb_extract_path_text(literal(CURRENCY_CODES, JSONB), cast(Task.currency, Text)).label(
        "currency_code"
    ),
    Task.kind,
    Task.conditions,
    Task.check_interval.label("interval"),
    Task.status,
    Task.is_active,
    Task.next_check,
    Task.consecutive_errors,
    Task.last_error,
    Task.last_checked_at,
    Task.last_success_at,
    Task.created_at,
    Task.updated_at,
)


WATCH_PAGES = Pager(WATCH_COLUMNS)


def watch_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "owner": task.owner,
        "appid": task.appid,
        "item": task.market_hash_name,
        "currency": task.currency,
        "currency_code": currency_code_of(task.currency),
        "kind": task.kind,
        "conditions": task.conditions,
        "interval": task.check_interval,
        "status": task.status,
        "is_active": task.is_active,
        "next_check": task.next_check,
        "consecutive_errors": task.consecutive_errors,
        "last_error": task.last_error,
        "last_checked_at": task.last_checked_at,
        "last_success_at": task.last_success_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _visible(who: Principal) -> list[Any]:
    return [] if who.admin else [Task.owner == who.owner]


async def owned(session: SessionDep, who: Principal, watch_id: int, *, lock: bool = False) -> Task:
    """The watch if this token may see it; 404 alike for another's and for none."""
    query = select(Task).where(Task.id == watch_id, *_visible(who))
    if lock:
        query = query.with_for_update()
    task = await session.scalar(query)
    if task is None:
        raise Problem(404, f"no watch {watch_id}")
    return task


def _spec_problem(e: TaskSpecError) -> Problem:
    return Problem.invalid(e.field, e.reason)


@router.post("", status_code=201, response_model=Watch, responses=responses(403, 409, 413, 422))
async def create_watch(
    body: WatchIn, who: PrincipalDep, session: SessionDep, state: StateDep
) -> Any:
    """Add a watch (the CLI's `tasks add`, without asking Steam whether the item exists)."""
    given = body.model_dump(exclude_none=True)
    owner = given.get("owner")
    given["owner"] = owner_for(
        who, owner if isinstance(owner, str) or owner is None else str(owner)
    )
    try:
        spec = parse_task(given, min_interval=state.settings.min_check_interval)
        task = await add_watch(session, spec)
    except TaskSpecError as e:
        raise _spec_problem(e) from None
    except DuplicateWatch as e:
        raise Problem(409, str(e), errors=[("item", str(e))]) from None
    return watch_json(task)


@router.get("", response_model=WatchPage, responses=responses(403, 422))
async def list_watches(
    who: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    status: Annotated[StatusName | None, Query(description="Only watches in this status.")] = None,
    kind: Annotated[KindName | None, Query(description="Only watches of this kind.")] = None,
    owner: OwnerQuery = None,
    cursor: Annotated[
        str | None, Query(pattern=_CURSOR, description="From a previous page.")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description=PAGE_HELP)] = None,
) -> Any:
    """The token's watches in id order, a page at a time."""
    size = page_limit(state, limit)
    filters: dict[str, Any] = {} if who.admin else {"owner": who.owner}
    if status is not None:
        filters["status"] = status
    if kind is not None:
        filters["kind"] = kind
    if owner is not None:
        check_owner_filter(who, owner)
        filters["owner"] = owner
    return await WATCH_PAGES.page(session, filters, cursor=cursor, size=size)


@router.get("/{watch_id:int}", response_model=Watch, responses=responses(404, 422))
async def show_watch(watch_id: WatchId, who: PrincipalDep, session: SessionDep) -> Any:
    return watch_json(await owned(session, who, watch_id))


@router.patch("/{watch_id:int}", response_model=Watch, responses=responses(404, 413, 422))
async def change_watch(
    watch_id: WatchId,
    body: WatchChange,
    who: PrincipalDep,
    session: SessionDep,
    state: StateDep,
) -> Any:
    """A new interval and/or new conditions; conditions given replace the old ones whole."""
    task = await owned(session, who, watch_id, lock=True)
    given = body.model_dump(exclude_none=True)
    if not given:
        raise Problem.invalid("body", "give interval and/or the conditions to change")
    floor = state.settings.min_check_interval
    values: dict[str, Any] = {"updated_at": func.now()}
    try:
        interval = given.pop("interval", None)
        if interval is not None:
            values["check_interval"] = parse_interval(interval, min_interval=floor)
        if given:  # new conditions, read as a new watch's would be (its item and currency)
            fields = {
                "owner": task.owner,
                "appid": task.appid,
                "item": task.market_hash_name,
                "currency": task.currency,
                "kind": task.kind,
                "interval": values.get("check_interval", task.check_interval),
            }
            spec = parse_task({**fields, **given}, min_interval=floor)
            # New thresholds are judged afresh: the next check says whether they are met.
            values.update(conditions=spec.conditions, condition_state=None)
    except TaskSpecError as e:
        raise _spec_problem(e) from None
    await session.execute(update(Task).where(Task.id == task.id).values(**values))
    await session.refresh(task)
    return watch_json(task)


async def _set(session: SessionDep, who: Principal, watch_id: int, values: dict[str, Any]) -> Any:
    task = await owned(session, who, watch_id, lock=True)
    await session.execute(
        update(Task).where(Task.id == task.id).values(**values, updated_at=func.now())
    )
    await session.refresh(task)
    return watch_json(task)


@router.post("/{watch_id:int}/pause", response_model=Watch, responses=responses(404, 422))
async def pause_watch(watch_id: WatchId, who: PrincipalDep, session: SessionDep) -> Any:
    """Stop checking it (a check already sent still completes)."""
    return await _set(session, who, watch_id, PAUSED)


@router.post("/{watch_id:int}/resume", response_model=Watch, responses=responses(404, 422))
async def resume_watch(watch_id: WatchId, who: PrincipalDep, session: SessionDep) -> Any:
    """Check it again from now with a clean slate (also revives a failed watch)."""
    return await _set(session, who, watch_id, resumed())


@router.delete(
    "/{watch_id:int}", status_code=204, response_class=Response, responses=responses(404, 422)
)
async def delete_watch(watch_id: WatchId, who: PrincipalDep, session: SessionDep) -> Response:
    """Remove it, with its price history."""
    task = await owned(session, who, watch_id, lock=True)
    await session.execute(delete(Task).where(Task.id == task.id))
    return Response(status_code=204)


@router.post("/import", response_model=ImportOut, responses=responses(403, 409, 413, 422))
async def import_watch_list(
    body: ImportIn, who: PrincipalDep, session: SessionDep, state: StateDep
) -> Any:
    """Add many watches in one transaction, validated as the CLI's `tasks import`: with a bad
    one nothing is written (422 listing each), unless ``skip_invalid``."""
    rows = []
    for index, given in enumerate(body.watches):
        where = f"watches[{index}]"
        owner = given.get("owner")
        if owner is None and not who.admin:
            given = {**given, "owner": who.owner}
        elif isinstance(owner, str) and not who.may_see(owner.strip()):
            rows.append(Row(where, index, given, f"owner: this token acts for {who.owner!r} only"))
            continue
        rows.append(Row(where, index, given))
    good, bad = validate_rows(rows, min_interval=state.settings.min_check_interval)
    try:
        outcome = await import_watches(
            session, good, bad, skip_invalid=body.skip_invalid, skip_hint="skip_invalid"
        )
    except ImportRejected as e:
        raise Problem(422, str(e), errors=[(b.where, b.reason) for b in e.bad]) from None
    except WatchError as e:
        raise Problem(409, str(e)) from None
    return {
        "imported": len(outcome.ids),
        "ids": outcome.ids,
        "skipped": [
            SkippedRow(index=b.line, error=f"{b.where}: {b.reason}") for b in outcome.skipped
        ],
    }
