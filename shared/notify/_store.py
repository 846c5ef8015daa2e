"""Subscriptions as the CLI and the API write them: one implementation for both."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Subscription, Task
from shared.notify._keys import SecretBox
from shared.notify._subscriptions import SubscriptionError, SubscriptionSpec


class SubscriptionConflict(SubscriptionError):
    """Raised when the owner already sends to this destination (for this watch)."""


async def add_subscription(
    session: AsyncSession, spec: SubscriptionSpec, box: SecretBox
) -> Subscription:
    """Insert it, the URL sealed; the watch, if one is named, must be the owner's.

    :class:`SubscriptionError` on ``task`` for another's or no watch (the same words for
    both), :class:`SubscriptionConflict` on ``url`` for a destination already subscribed.
    """
    if spec.task_id is not None:
        owner = await session.scalar(select(Task.owner).where(Task.id == spec.task_id))
        if owner != spec.owner:
            raise SubscriptionError("task", f"no watch {spec.task_id} of owner {spec.owner!r}")
    sub = Subscription(
        owner=spec.owner,
        task_id=spec.task_id,
        scheme=spec.destination.scheme,
        url_cipher=box.seal(spec.destination.url),
        url_masked=spec.destination.masked,
        url_hash=spec.destination.url_hash,
        kinds=list(spec.kinds),
        template=spec.template,
    )
    try:
        async with session.begin_nested():
            session.add(sub)
            await session.flush()
    except IntegrityError:
        scope = f" for watch {spec.task_id}" if spec.task_id else ""
        raise SubscriptionConflict(
            "url", f"{spec.owner!r} already sends to {spec.destination.masked}{scope}"
        ) from None
    await session.refresh(sub)
    return sub
