"""The messages services send each other: ids and the lease token, never ORM objects.

Each message is validated on arrival; one that does not fit (missing fields, wrong types,
garbage) raises :class:`BadMessage`, which the actor logs and drops instead of retrying.
Services send to each other's actors by name (``shared.bus``), never by import.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import dramatiq
import structlog
from dramatiq.asyncio import async_to_sync
from dramatiq.middleware import CurrentMessage
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.bus._broker import CHECK_ACTOR, CHECKS_QUEUE

M = TypeVar("M", bound="_Message")
log = structlog.get_logger(__name__)


class BadMessage(ValueError):
    """Raised when a message's payload does not fit its schema; says which fields are wrong."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    @classmethod
    def parse(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args:
            raise BadMessage(
                f"{cls.__name__} takes keyword arguments only, got {len(args)} positional"
            )
        try:
            return cls.model_validate(kwargs)
        except ValidationError as e:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(message)'}: {err['msg']}"
                for err in e.errors()
            )
            raise BadMessage(f"bad {cls.__name__}: {fields}") from None


#: The most claims one check message carries (``STEAMWATCH_SCHEDULER_CHECKS_PER_MESSAGE`` is at
#: most this).
MAX_CHECK_BATCH = 64


class Claimed(_Message):
    """One more claim a check message carries: a task and the lease it is checked under."""

    task_id: int = Field(gt=0)
    lease_token: uuid.UUID


class CheckMessage(_Message):
    """Scheduler (or watchdog) -> fetcher: check this task under this lease, and the tasks of
    ``also`` under theirs, all at once.

    A batch spares the bus a message per check: one fetch, one hand-over to a worker thread and
    one acknowledgement for several checks. Each claim stands alone: a redelivered batch redoes
    only the claims whose lease is still held (a finished check released its lease).
    """

    task_id: int = Field(gt=0)
    lease_token: uuid.UUID
    reason: Literal["due", "lease_expired", "overdue", "recovery", "dead_letter"] = "due"
    also: tuple[Claimed, ...] = Field(default=(), max_length=MAX_CHECK_BATCH - 1)

    def claims(self) -> list[CheckMessage]:
        """Every claim of this message as a message of its own, the first one first."""
        if not self.also:
            return [self]
        return [
            self.model_copy(update={"also": ()}),
            *(
                CheckMessage(task_id=c.task_id, lease_token=c.lease_token, reason=self.reason)
                for c in self.also
            ),
        ]

    @classmethod
    def batch(cls, claims: Sequence[tuple[int, uuid.UUID]], *, reason: str = "due") -> CheckMessage:
        """One message for ``claims`` (task id, lease token), in that order."""
        (task_id, token), *rest = claims
        return cls(
            task_id=task_id,
            lease_token=token,
            reason=reason,  # type: ignore[arg-type]
            also=tuple(Claimed(task_id=t, lease_token=k) for t, k in rest),
        )


#: Message option counting how often the watchdog re-sent a check out of the dead letters.
REQUEUES_OPTION = "steamwatch_requeues"


def _send(
    broker: dramatiq.Broker,
    queue: str,
    actor: str,
    payload: _Message,
    delay_ms: int | None,
    options: dict[str, Any] | None = None,
) -> dramatiq.Message[Any]:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue,
        actor_name=actor,
        args=(),
        # Defaults left out: a message reads the same to a worker that predates a field.
        kwargs=payload.model_dump(mode="json", exclude_defaults=True),
        options=dict(options or {}),
    )
    return broker.enqueue(message, delay=delay_ms)


def send_check(
    broker: dramatiq.Broker,
    message: CheckMessage,
    *,
    delay_ms: int | None = None,
    options: dict[str, Any] | None = None,
) -> dramatiq.Message[Any]:
    return _send(broker, CHECKS_QUEUE, CHECK_ACTOR, message, delay_ms, options)


def guarded(
    schema: type[M], handle: Callable[[M], Awaitable[object]], *, malformed: Counter
) -> Callable[..., None]:
    """An actor body: validate the payload, then ``handle`` it on the worker's event loop.

    Every log line of the handling carries the task id and dramatiq's message id. The body is
    a plain function that runs the coroutine itself (as dramatiq's AsyncIO middleware would):
    only here, on the worker thread, is the message being processed known (``CurrentMessage``
    keeps it in a context variable that does not cross to the loop's thread).
    A payload that does not fit is logged, counted on ``malformed`` and dropped:
    retrying cannot make a malformed message well-formed.
    """

    async def run(message_id: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with structlog.contextvars.bound_contextvars(message_id=message_id):
            try:
                message = schema.parse(args, kwargs)
            except BadMessage as e:
                log.error("malformed message dropped", schema=schema.__name__, problem=str(e))
                malformed.inc()
                return
            with structlog.contextvars.bound_contextvars(task_id=message.task_id):
                await handle(message)

    def actor(*args: Any, **kwargs: Any) -> None:
        current = CurrentMessage.get_current_message()
        message_id = current.message_id if current is not None else None
        async_to_sync(run)(message_id, args, kwargs)

    return actor
