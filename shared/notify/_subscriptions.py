"""What a subscription asks for, validated once for the CLI and the API alike.

Each problem is a :class:`SubscriptionError` naming the field the user filled in (``url``,
``kinds``, ``template``, ``owner``, ``task``), and nothing is written until all are good.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.alerts import EVENT_KINDS
from shared.notify._destinations import Destination, DestinationError, parse_destination
from shared.notify._messages import TemplateError, check_template

#: The kinds a subscription can ask for; "all" stands for every one.
NOTIFY_KINDS: tuple[str, ...] = tuple(sorted(EVENT_KINDS))
OWNER = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class SubscriptionError(ValueError):
    """Raised when a subscription cannot be made: ``field`` is what to fix, ``reason`` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class SubscriptionSpec:
    """A subscription as asked for, checked: the destination read, the kinds known."""

    owner: str
    destination: Destination
    kinds: tuple[str, ...]
    task_id: int | None = None
    template: str | None = None


def parse_kinds(kinds: str | Iterable[str]) -> tuple[str, ...]:
    """Kinds from "a,b" or a list; "all" means every kind. Unknown or none: an error."""
    names = (
        [k.strip() for k in kinds.split(",")]
        if isinstance(kinds, str)
        else [str(k).strip() for k in kinds]
    )
    names = [n for n in names if n]
    if not names:
        raise SubscriptionError(
            "kinds", "is empty; give one or more of " + ", ".join(NOTIFY_KINDS) + " (or all)"
        )
    if "all" in names:
        return NOTIFY_KINDS
    unknown = [n for n in names if n not in EVENT_KINDS]
    if unknown:
        raise SubscriptionError(
            "kinds",
            f"{unknown[0]!r} is not an event kind; known: " + ", ".join(NOTIFY_KINDS) + ", all",
        )
    return tuple(sorted(set(names)))


def parse_subscription(
    *,
    owner: str,
    url: str,
    kinds: str | Iterable[str],
    task_id: int | None = None,
    template: str | None = None,
) -> SubscriptionSpec:
    """Check every field; the first problem found raises :class:`SubscriptionError`."""
    if not OWNER.fullmatch(owner or ""):
        raise SubscriptionError(
            "owner", f"{owner!r} is not an owner name (1-64 letters, digits, _ . @ -)"
        )
    try:
        destination = parse_destination(url)
    except DestinationError as e:
        raise SubscriptionError("url", e.reason) from None
    parsed_kinds = parse_kinds(kinds)
    if task_id is not None and task_id <= 0:
        raise SubscriptionError("task", f"{task_id} is not a watch id (a positive number)")
    if template is not None:
        try:
            template = check_template(template)
        except TemplateError as e:
            raise SubscriptionError("template", str(e)) from None
    return SubscriptionSpec(
        owner=owner,
        destination=destination,
        kinds=parsed_kinds,
        task_id=task_id,
        template=template,
    )
