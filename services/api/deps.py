"""Per-request dependencies: the state, the caller (token and rate), a database session."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import structlog
from fastapi import Depends, Query, Request, Response
from limits import RateLimitItemPerSecond
from sqlalchemy import Integer, Text, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.metrics import AUTH_FAILURES
from services.api.problems import Problem
from services.api.state import State
from shared.access import BadToken, Principal, authenticate
from shared.db import session_scope
from shared.steam import PriceError, currency_code

log = structlog.get_logger("steamwatch.api")


async def state_of(request: Request) -> State:
    state: State = request.app.state.steamwatch
    return state


StateDep = Annotated[State, Depends(state_of)]


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the route returns, rolled back on error.

    A GET writes nothing, so it runs in autocommit (no BEGIN and COMMIT around its reads:
    two round trips fewer on the path bots and dashboards poll)."""
    state: State = request.app.state.steamwatch  # not a dependency: this runs on every request
    scope = state.reads if request.method in ("GET", "HEAD") else state.db.sessionmaker
    async with session_scope(scope) as s:
        yield s


# scope="function": the unit of work commits when the route returns, before the response is
# sent. FastAPI's default ("request") runs the exit after the response: a client told 204 could
# still read the watch it deleted, and a commit that failed would follow a success sent.
SessionDep = Annotated[AsyncSession, Depends(session, scope="function")]


async def principal(request: Request, s: SessionDep) -> Principal:
    """The token's owner, or 401; then its rate, or 429 with Retry-After."""
    state: State = request.app.state.steamwatch
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


#: An owner as a query names it: printable text (an owner never holds control characters).
OWNER_PATTERN = r"^[^\x00-\x1f\x7f]+$"
OwnerQuery = Annotated[
    str | None,
    Query(max_length=64, pattern=OWNER_PATTERN, description="Admin: only this owner's."),
]
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


class Pager:
    """Pages of one resource's rows in id order, by equality filters and an id cursor.

    The hot path of bots and dashboards, so PostgreSQL writes the page's JSON itself (each
    row an object of ``columns`` under their labels) and it goes out as it came: no row is
    decoded, built or encoded again in Python. The statement for each set of filters is
    built once, its values bound per request. The route's ``response_model`` still documents
    the shape, and the tests hold the answers to it.
    """

    def __init__(self, columns: Sequence[Any]) -> None:
        self.columns = tuple(columns)  # the first is the id, labelled ``id``
        self.table = self.columns[0].table
        self._queries: dict[tuple[frozenset[str], bool], Any] = {}

    def _query(self, names: frozenset[str], after: bool) -> Any:
        query = self._queries.get((names, after))
        if query is None:
            key = self.columns[0]
            where = [self.table.c[name] == bindparam(name) for name in sorted(names)]
            if after:
                where.append(key > bindparam("cursor"))
            found = (
                select(*self.columns)
                .where(*where)
                .order_by(key)
                .limit(bindparam("fetch", type_=Integer))
                .subquery("found")
            )
            shown = (
                select(found)
                .order_by(found.c.id)
                .limit(bindparam("size", type_=Integer))
                .subquery("shown")
            )
            rows = func.json_agg(aggregate_order_by(shown.table_valued(), shown.c.id))
            query = select(
                select(func.count()).select_from(found).scalar_subquery(),
                select(func.max(shown.c.id)).scalar_subquery(),
                select(cast(func.coalesce(rows, text("'[]'::json")), Text)).scalar_subquery(),
            )
            self._queries[(names, after)] = query
        return query

    async def page(
        self, session: AsyncSession, filters: dict[str, Any], *, cursor: str | None, size: int
    ) -> Response:
        """The page after ``cursor`` (the last id of the page before); ``next_cursor`` is
        None on the last one. ``filters``: column name -> the value it must equal."""
        values: dict[str, Any] = {**filters, "fetch": size + 1, "size": size}
        if cursor is not None:
            if int(cursor) >= 2**63:
                raise Problem.invalid("cursor", f"{cursor!r} is not a cursor this API gave")
            values["cursor"] = int(cursor)
        query = self._query(frozenset(filters), cursor is not None)
        connection = await session.connection()
        count, last, items = (await connection.execute(query, values)).one()
        next_cursor = b'"%d"' % last if count > size else b"null"
        body = b'{"items":' + items.encode() + b',"next_cursor":' + next_cursor + b"}"
        return Response(body, media_type="application/json")


def currency_code_of(currency: int) -> str | None:
    """Steam's code for a currency id, or None for one this version does not know."""
    try:
        return currency_code(currency)
    except PriceError:
        return None
