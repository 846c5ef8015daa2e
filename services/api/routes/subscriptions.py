"""``/v1/subscriptions``: where an owner's alerts go (the CLI's ``notify``), URLs never shown.

Checked by :func:`shared.notify.parse_subscription` and written by
:func:`shared.notify.add_subscription`, the CLI's own; a destination inside the network is
refused (after resolving its name) unless the operator allows it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import delete, select, update
from sqlalchemy.sql import func

from services.api.deps import (
    PAGE_HELP,
    OwnerQuery,
    Pager,
    PrincipalDep,
    SessionDep,
    StateDep,
    check_owner_filter,
    owner_for,
    page_limit,
)
from services.api.problems import Problem, responses
from services.api.schemas import Subscription, SubscriptionIn, SubscriptionPage
from shared.access import Principal
from shared.db import Subscription as SubscriptionRow
from shared.notify import (
    DestinationError,
    SubscriptionConflict,
    SubscriptionError,
    add_subscription,
    check_outside_async,
    parse_subscription,
)

router = APIRouter(
    prefix="/v1/subscriptions", tags=["subscriptions"], responses=responses(400, 401, 429)
)

SubscriptionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The subscription's id.")]
# The API's names for parse_subscription's fields.
_FIELDS = {"task": "watch_id"}


#: A subscription as the API shows it (never its sealed URL): columns under the API's names.
SUBSCRIPTION_COLUMNS = (
    SubscriptionRow.id,
    SubscriptionRow.owner,
    SubscriptionRow.task_id.label("watch_id"),
    SubscriptionRow.url_masked.label("destination"),
    SubscriptionRow.scheme,
    SubscriptionRow.kinds,
    SubscriptionRow.template,
    SubscriptionRow.status,
    SubscriptionRow.paused_reason,
    SubscriptionRow.created_at,
)


SUBSCRIPTION_PAGES = Pager(SUBSCRIPTION_COLUMNS)


def subscription_json(sub: SubscriptionRow) -> dict[str, Any]:
    return {
        "id": sub.id,
        "owner": sub.owner,
        "watch_id": sub.task_id,
        "destination": sub.url_masked,
        "scheme": sub.scheme,
        "kinds": list(sub.kinds),
        "template": sub.template,
        "status": sub.status,
        "paused_reason": sub.paused_reason,
        "created_at": sub.created_at,
    }


async def owned(session: SessionDep, who: Principal, subscription_id: int) -> SubscriptionRow:
    query = select(SubscriptionRow).where(SubscriptionRow.id == subscription_id)
    if not who.admin:
        query = query.where(SubscriptionRow.owner == who.owner)
    sub = await session.scalar(query.with_for_update())
    if sub is None:
        raise Problem(404, f"no subscription {subscription_id}")
    return sub


@router.post(
    "", status_code=201, response_model=Subscription, responses=responses(403, 409, 413, 422, 503)
)
async def create_subscription(
    body: SubscriptionIn, who: PrincipalDep, session: SessionDep, state: StateDep
) -> Any:
    """Send the owner's events (or one watch's) to an Apprise URL."""
    owner = owner_for(who, body.owner)
    try:
        spec = parse_subscription(
            owner=owner,
            url=body.url,
            kinds=body.kinds,
            task_id=body.watch_id,
            template=body.template,
        )
        await check_outside_async(
            spec.destination, allow_private=state.settings.notify_allow_private
        )
        if state.box is None:
            raise Problem(
                503, "this API has no STEAMWATCH_SECRET_KEY: destinations cannot be sealed"
            )
        sub = await add_subscription(session, spec, state.box)
    except SubscriptionConflict as e:
        raise Problem(409, f"url: {e.reason}", errors=[("url", e.reason)]) from None
    except SubscriptionError as e:
        field = _FIELDS.get(e.field, e.field)
        raise Problem.invalid(field, e.reason) from None
    except DestinationError as e:
        raise Problem.invalid("url", e.reason) from None
    return subscription_json(sub)


@router.get("", response_model=SubscriptionPage, responses=responses(403, 422))
async def list_subscriptions(
    who: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    owner: OwnerQuery = None,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,19}$", description="From a previous page.")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description=PAGE_HELP)] = None,
) -> Any:
    size = page_limit(state, limit)
    filters: dict[str, Any] = {} if who.admin else {"owner": who.owner}
    if owner is not None:
        check_owner_filter(who, owner)
        filters["owner"] = owner
    return await SUBSCRIPTION_PAGES.page(session, filters, cursor=cursor, size=size)


@router.get("/{subscription_id:int}", response_model=Subscription, responses=responses(404, 422))
async def show_subscription(
    subscription_id: SubscriptionId, who: PrincipalDep, session: SessionDep
) -> Any:
    return subscription_json(await owned(session, who, subscription_id))


async def _status(
    session: SessionDep, who: Principal, subscription_id: int, values: dict[str, Any]
) -> Any:
    sub = await owned(session, who, subscription_id)
    await session.execute(
        update(SubscriptionRow)
        .where(SubscriptionRow.id == sub.id)
        .values(**values, updated_at=func.now())
    )
    await session.refresh(sub)
    return subscription_json(sub)


@router.post(
    "/{subscription_id:int}/pause", response_model=Subscription, responses=responses(404, 422)
)
async def pause_subscription(
    subscription_id: SubscriptionId, who: PrincipalDep, session: SessionDep
) -> Any:
    return await _status(
        session, who, subscription_id, {"status": "paused", "paused_reason": "paused by its owner"}
    )


@router.post(
    "/{subscription_id:int}/resume", response_model=Subscription, responses=responses(404, 422)
)
async def resume_subscription(
    subscription_id: SubscriptionId, who: PrincipalDep, session: SessionDep
) -> Any:
    return await _status(session, who, subscription_id, {"status": "active", "paused_reason": None})


@router.delete(
    "/{subscription_id:int}",
    status_code=204,
    response_class=Response,
    responses=responses(404, 422),
)
async def delete_subscription(
    subscription_id: SubscriptionId, who: PrincipalDep, session: SessionDep
) -> Response:
    sub = await owned(session, who, subscription_id)
    await session.execute(delete(SubscriptionRow).where(SubscriptionRow.id == sub.id))
    return Response(status_code=204)
