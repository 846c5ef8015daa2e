"""``/v1/events``: an owner's recent events, newest first, read back from the capped stream.

The stream holds every owner's events; a page walks it backwards from the cursor, in chunks,
keeping the caller's. A walk stops after ``SCAN_MAX`` entries even with the page not full, and
hands out a cursor where it stopped, so a request costs the same however rare the owner's events.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.api.deps import (
    PAGE_HELP,
    OwnerQuery,
    PrincipalDep,
    StateDep,
    check_owner_filter,
    page_limit,
)
from services.api.problems import Problem, responses
from services.api.schemas import EventPage
from shared.alerts import EVENTS_STREAM, EventKind

router = APIRouter(prefix="/v1/events", tags=["events"], responses=responses(400, 401, 429))

SCAN_MAX = 5_000
CHUNK = 500
_STREAM_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"


@router.get("", response_model=EventPage, responses=responses(403, 422))
async def list_events(
    who: PrincipalDep,
    state: StateDep,
    kind: Annotated[EventKind | None, Query(description="Only events of this kind.")] = None,
    watch_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Only this watch's.")
    ] = None,
    owner: OwnerQuery = None,
    cursor: Annotated[
        str | None, Query(pattern=_STREAM_ID, description="From a previous page.")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description=PAGE_HELP)] = None,
) -> Any:
    """Events newest first; ``next_cursor`` goes further back."""
    size = page_limit(state, limit)
    if owner is not None:
        check_owner_filter(who, owner)
    wanted_owner = owner if owner is not None else (None if who.admin else who.owner)
    items: list[dict[str, Any]] = []
    if cursor is not None and any(int(part) >= 2**64 for part in cursor.split("-")):
        raise Problem.invalid("cursor", f"{cursor!r} is not a cursor this API gave")
    if cursor is not None and all(int(part) == 0 for part in cursor.split("-")):
        return {"items": items, "next_cursor": None}  # nothing is older than the stream's start
    end = f"({cursor}" if cursor else "+"
    scanned = 0
    last_seen: str | None = None
    exhausted = False
    while len(items) < size and scanned < SCAN_MAX:
        chunk = await state.redis.xrevrange(EVENTS_STREAM, max=end, min="-", count=CHUNK)
        if not chunk:
            exhausted = True
            break
        for raw_id, fields in chunk:
            scanned += 1
            stream_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            last_seen = stream_id
            body = (fields or {}).get(b"event", (fields or {}).get("event"))
            try:
                event = json.loads(body) if body is not None else None
            except ValueError:
                event = None
            if not isinstance(event, dict):
                continue  # not an event this API can show; the notifier counts those
            if wanted_owner is not None and event.get("owner") != wanted_owner:
                continue
            if kind is not None and event.get("kind") != kind:
                continue
            if watch_id is not None and event.get("task_id") != watch_id:
                continue
            items.append({"stream_id": stream_id, "event": event})
            if len(items) == size:
                break
        if len(chunk) < CHUNK and len(items) < size:
            exhausted = True
            break
        end = f"({last_seen}"
    if len(items) == size:
        next_cursor: str | None = items[-1]["stream_id"]
    else:
        next_cursor = None if exhausted or last_seen is None else last_seen
    return {"items": items, "next_cursor": next_cursor}
