"""Per-request dependencies: the state, the caller (token and rate), a database session."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from limits import RateLimitItemPerSecond
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.metrics import AUTH_FAILURES
from services.api.problems import Problem
from services.api.state import State
from shared.access import BadToken, Principal, authenticate
from shared.steam import PriceError, currency_code

log = structlog.get_logger("steamwatch.api")


def state_of(request: Request) -> State:
    state: State = request.app.state.steamwatch
    return state


StateDep = Annotated[State, Depends(state_of)]


async def session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the route returns, rolled back on error."""
    async with state.db.session_scope() as s:
        yield s


SessionDep = Annotated[AsyncSession, Depends(session)]


async def principal(request: Request, state: StateDep, s: SessionDep) -> Principal:
    """The token's owner, or 401; then its rate, or 429 with Retry-After."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if not header:
            raise BadToken(
                "missing", "no Authorization header: send 'Authorization: Bearer <token>'"
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise BadToken("malformed", "the Authorization header is not 'Bearer <token>'")
        who = await authenticate(s, token.strip())
    except BadToken as e:
        AUTH_FAILURES.labels(e.reason).inc()
        log.info("token refused", reason=e.reason, path=request.url.path)
        raise Problem(
            401, str(e), headers={"WWW-Authenticate": 'Bearer realm="steamwatch"'}
        ) from None
    rate = RateLimitItemPerSecond(state.settings.api_rate)
    if not await state.limiter.hit(rate, "token", str(who.token_id)):
        stats = await state.limiter.get_window_stats(rate, "token", str(who.token_id))
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise Problem(
            429,
            f"more than {state.settings.api_rate} requests a second with this token;"
            f" retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    request.state.token_id = who.token_id
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]


def owner_for(who: Principal, given: str | None, *, field: str = "owner") -> str:
    """The owner a new resource belongs to: an owner's own; an admin must name one."""
    if given is None or (isinstance(given, str) and not given.strip()):
        if who.admin:
            raise Problem.invalid(field, "is required with an admin token")
        return who.owner
    if not who.may_see(given.strip()):
        raise Problem(
            403,
            f"{field}: this token acts for {who.owner!r}, not {given.strip()!r}",
            errors=[(field, f"this token acts for {who.owner!r} only")],
        )
    return given.strip()


PAGE_DEFAULT = 100
PAGE_HELP = f"Items per page: {PAGE_DEFAULT} unless given (or the configured maximum, if lower)."


def page_limit(state: State, limit: int | None) -> int:
    """The page size asked for, or the default; past the configured maximum: 422."""
    if limit is None:
        return min(PAGE_DEFAULT, state.settings.api_page_max)
    if limit > state.settings.api_page_max:
        raise Problem.invalid(
            "limit", f"must be at most {state.settings.api_page_max}, got {limit}"
        )
    return limit


def check_owner_filter(who: Principal, owner: str) -> None:
    """An ``owner`` filter another owner's token may not use: 403 (an admin may)."""
    if not who.may_see(owner):
        raise Problem(
            403,
            f"owner: this token acts for {who.owner!r} only",
            errors=[("owner", "not this token's owner")],
        )


async def page_by_id(
    session: AsyncSession,
    model: Any,
    filters: list[Any],
    *,
    cursor: str | None,
    size: int,
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``model`` rows in id order after ``cursor`` (the last id of the page
    before); ``next_cursor`` is None on the last page."""
    if cursor is not None:
        if int(cursor) >= 2**63:
            raise Problem.invalid("cursor", f"{cursor!r} is not a cursor this API gave")
        filters = [*filters, model.id > int(cursor)]
    query = select(model).where(*filters).order_by(model.id).limit(size + 1)
    found = list(await session.scalars(query))
    more = len(found) > size
    found = found[:size]
    return {
        "items": [render(row) for row in found],
        "next_cursor": str(found[-1].id) if more else None,
    }


def currency_code_of(currency: int) -> str | None:
    """Steam's code for a currency id, or None for one this version does not know."""
    try:
        return currency_code(currency)
    except PriceError:
        return None
