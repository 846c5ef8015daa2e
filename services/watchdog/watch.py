"""One watchdog pass: find the work that stopped moving and set it moving again, or say why not.

Each pass, in one ``session_scope()``:

1. expired leases (a check was sent and never completed): a new lease and a new check; a task
   that was paused, failed or deactivated meanwhile only loses its lease;
2. stalled tasks whose recovery attempt is due: leased, the attempt counted, checked;
3. dead letters (messages whose dramatiq retries ran out): a check whose lease is still the
   task's is leased afresh and re-sent, a bounded number of times per message, after which it
   counts as a failed check of its task; everything else is dropped with the reason logged;
4. overdue tasks (active, unleased, due longer ago than the grace period: the scheduler is down
   or held back): claimed and sent like the scheduler would.

Every decision is made by a conditional statement on the row as it is now, so a task changed
by its owner a moment ago is never revived, and two watchdogs never repair the same row twice.
Messages go out after the commit; one that cannot be sent leaves a lease that expires and is
re-sent by a later pass. When the checks queue is over the high-water mark the pass sends less.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import dramatiq
import structlog
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.alerts import Event, stage
from shared.bus import (
    CHECK_ACTOR,
    CHECKS_QUEUE,
    REQUEUES_OPTION,
    RESULTS_QUEUE,
    BadMessage,
    CheckMessage,
    deadletters,
    queue_key,
    queues,
    send_check,
)
from shared.bus.deadletters import DeadLetter
from shared.history import Maintenance, Retention, maintain
from shared.runtime import Pools
from shared.tasks import (
    Backoff,
    Lease,
    claim_due,
    claim_recovery,
    count_by_status,
    count_stalled,
    reclaim_expired,
    release_dead_letter,
    release_failure,
    transition_events,
    watch_of,
)

log = structlog.get_logger(__name__)

Reason = Literal["lease_expired", "overdue", "recovery", "dead_letter"]
REASONS: tuple[Reason, ...] = ("lease_expired", "overdue", "recovery", "dead_letter")
DEAD_LETTER_QUEUES = (CHECKS_QUEUE, RESULTS_QUEUE)

RESENT = Counter("steamwatch_watchdog_resent", "Checks the watchdog sent, by reason", ["reason"])
RELEASED = Counter(
    "steamwatch_watchdog_released",
    "Expired leases released without a check (task paused, failed or deactivated)",
    ["why"],
)
DEAD_DROPPED = Counter(
    "steamwatch_watchdog_dead_letters_dropped", "Dead letters dropped", ["queue", "reason"]
)
GAVE_UP = Counter(
    "steamwatch_watchdog_dead_letter_failures",
    "Dead-lettered checks re-sent too often, recorded as failed checks of their task",
)
SEND_FAILURES = Counter("steamwatch_watchdog_send_failures", "Messages the watchdog could not send")
HELD_BACK = Counter("steamwatch_watchdog_backpressure", "Passes that sent less for a deep queue")
STALLED = Gauge("steamwatch_tasks_stalled", "Tasks stalled now, waiting for a recovery attempt")
TASKS = Gauge("steamwatch_tasks", "Tasks by status (deactivated ones apart)", ["status"])
QUEUE_MESSAGES = Gauge(
    "steamwatch_queue_messages",
    "Messages per dramatiq queue and state (ready, delayed, in_progress, dead)",
    ["queue", "state"],
)
QUEUE_OLDEST = Gauge(
    "steamwatch_queue_oldest_ready_age_seconds",
    "Age of the message next in line per queue (0 when empty)",
    ["queue"],
)
HISTORY_FAILURES = Counter(
    "steamwatch_history_upkeep_failures",
    "Watchdog passes whose history upkeep (roll-up, retention) failed",
)
PASS_SECONDS = Histogram(
    "steamwatch_watchdog_pass_seconds",
    "Duration of one watchdog pass",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


for _reason in REASONS:  # every series from the start, at 0
    RESENT.labels(reason=_reason)


@dataclass(frozen=True)
class Send:
    """A check the pass sends once its transaction has committed."""

    task_id: int
    token: uuid.UUID
    reason: Reason
    attempt: int | None = None  # the recovery attempt, for reason "recovery"
    requeues: int = 0  # for reason "dead_letter": how often this check came out of the DLQ


@dataclass(frozen=True)
class Dropped:
    """A dead letter the pass dropped: ``reason`` is a metric label, ``detail`` the log's words."""

    letter: DeadLetter
    reason: str
    detail: str

    @property
    def task_id(self) -> object:
        return self.letter.message.kwargs.get("task_id") if self.letter.message else None


@dataclass
class Report:
    """What one pass did; the service logs it, the tests read it."""

    sends: list[Send] = field(default_factory=list)
    released: list[Lease] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    failures: list[Event] = field(default_factory=list)  # of dead letters given up on
    stalled: int = 0
    tasks: dict[str, int] = field(default_factory=dict)  # by status
    dead_letters: dict[str, int] = field(default_factory=dict)
    held_back: bool = False
    history: Maintenance | None = None  # the pass's history upkeep; None if it failed

    def sent(self, reason: Reason) -> list[int]:
        return [s.task_id for s in self.sends if s.reason == reason]


@dataclass(frozen=True)
class Watchdog:
    broker: dramatiq.Broker
    lease_seconds: float
    grace: float
    batch: int
    high_water: int
    dead_letter_batch: int
    dead_letter_requeues: int
    backoff: Backoff = Backoff()
    retention: Retention = Retention()

    async def run_pass(self, pools: Pools) -> Report:
        started = time.perf_counter()
        report = Report()
        depth = int(await pools.redis.llen(queue_key(CHECKS_QUEUE)))
        room = self.high_water - depth
        if room < self.batch:
            report.held_back = True
            HELD_BACK.inc()
            log.info("checks queue is deep; repairing less", depth=depth, room=max(room, 0))
        letters = [
            letter
            for queue in DEAD_LETTER_QUEUES
            for letter in await deadletters.oldest(pools.redis, queue, limit=self.dead_letter_batch)
        ]
        async with pools.db.session_scope() as session:
            room = await self._expired(session, report, room)
            room = await self._recovery(session, report, room)
            await self._dead_letters(session, report, letters)
            await self._overdue(session, report, room)
            report.stalled = await count_stalled(session)
            report.tasks = await count_by_status(session)
        await asyncio.to_thread(self._send, report)
        await deadletters.remove(pools.redis, letters)
        for stats in await queues.all_queue_stats(pools.redis):
            report.dead_letters[stats.queue] = stats.dead
            for state in queues.STATES:
                QUEUE_MESSAGES.labels(queue=stats.queue, state=state).set(getattr(stats, state))
            QUEUE_OLDEST.labels(queue=stats.queue).set(stats.oldest_ready_age or 0)
        STALLED.set(report.stalled)
        for status, n in report.tasks.items():
            TASKS.labels(status=status).set(n)
        report.history = await self._history(pools)
        PASS_SECONDS.observe(time.perf_counter() - started)
        self._record(report)
        return report

    async def _history(self, pools: Pools) -> Maintenance | None:
        """Roll up closed hours and apply retention; a failure here never stops the repairs."""
        try:
            done = await maintain(pools.db, datetime.now(UTC), self.retention)
        except (SQLAlchemyError, OSError) as e:
            HISTORY_FAILURES.inc()
            log.warning("history upkeep failed; the next pass tries again", error=str(e)[:200])
            return None
        if any(
            (
                done.rolled_hours,
                done.deleted_raw,
                done.deleted_rollups,
                done.deleted_seen,
                done.partitions_created,
                done.partitions_dropped,
                done.partitions_vacuumed,
            )
        ):
            log.info(
                "history upkeep",
                rolled_hours=done.rolled_hours,
                deleted_raw=done.deleted_raw,
                deleted_rollups=done.deleted_rollups,
                deleted_seen=done.deleted_seen,
                partitions_created=done.partitions_created,
                partitions_dropped=done.partitions_dropped,
                partitions_vacuumed=done.partitions_vacuumed,
            )
        return done

    async def _expired(self, session: AsyncSession, report: Report, room: int) -> int:
        if room <= 0:
            return room
        leases = await reclaim_expired(
            session, batch=min(self.batch, room), lease_seconds=self.lease_seconds
        )
        for lease in leases:
            if lease.token is None:
                report.released.append(lease)
            else:
                report.sends.append(Send(lease.task_id, lease.token, "lease_expired"))
        return room - sum(1 for lease in leases if lease.token is not None)

    async def _recovery(self, session: AsyncSession, report: Report, room: int) -> int:
        if room <= 0:
            return room
        leases = await claim_recovery(
            session, batch=min(self.batch, room), lease_seconds=self.lease_seconds
        )
        for lease in leases:
            assert lease.token is not None
            report.sends.append(
                Send(lease.task_id, lease.token, "recovery", attempt=lease.recovery_attempts)
            )
        return room - len(leases)

    async def _overdue(self, session: AsyncSession, report: Report, room: int) -> None:
        if room <= 0:
            return
        claims = await claim_due(
            session,
            batch=min(self.batch, room),
            lease_seconds=self.lease_seconds,
            overdue_by=self.grace,
        )
        report.sends += [Send(c.task_id, c.lease_token, "overdue") for c in claims]

    async def _dead_letters(
        self, session: AsyncSession, report: Report, letters: list[DeadLetter]
    ) -> None:
        for letter in letters:
            why: tuple[str, str] | None
            if letter.queue != CHECKS_QUEUE:
                # The check behind it is stored; the task's next check is judged afresh, and
                # a condition still met then is announced then.
                why = ("result", "results are not re-sent: the task's next check supersedes it")
            else:
                why = await self._dead_check(session, report, letter)
            if why is not None:
                report.dropped.append(Dropped(letter, *why))

    async def _dead_check(
        self, session: AsyncSession, report: Report, letter: DeadLetter
    ) -> tuple[str, str] | None:
        """Re-send one dead-lettered check; returns (reason, detail) if it is dropped instead."""
        message = letter.message
        if message is None:
            return "undecodable", letter.problem or "undecodable"
        if message.actor_name != CHECK_ACTOR:
            return "not_a_check", f"actor {message.actor_name!r} is not {CHECK_ACTOR!r}"
        try:
            check = CheckMessage.parse(tuple(message.args), dict(message.kwargs))
        except BadMessage as e:
            return "malformed", str(e)
        requeues = message.options.get(REQUEUES_OPTION, 0)
        requeues = requeues if isinstance(requeues, int) and requeues >= 0 else 0
        # A batch's claims come back one message each: one that keeps dying dies alone.
        claims = check.claims()
        dropped = [
            why
            for claim in claims
            if (why := await self._dead_claim(session, report, claim, requeues, message))
        ]
        if len(dropped) < len(claims):
            return None  # some claim was re-sent: the letter lives on in it
        if len(dropped) == 1:
            return dropped[0]
        return dropped[0][0], "; ".join(
            f"{c.task_id}: {d}" for c, (_, d) in zip(claims, dropped, strict=True)
        )

    async def _dead_claim(
        self,
        session: AsyncSession,
        report: Report,
        check: CheckMessage,
        requeues: int,
        message: dramatiq.Message[object],
    ) -> tuple[str, str] | None:
        """Re-send one claim of a dead-lettered check; (reason, detail) if it is dropped."""
        if requeues >= self.dead_letter_requeues:
            return await self._give_up(session, report, check, requeues, message)
        lease = await release_dead_letter(
            session,
            task_id=check.task_id,
            token=check.lease_token,
            lease_seconds=self.lease_seconds,
        )
        if isinstance(lease, str):
            return lease, {
                "gone": "the task was deleted",
                "superseded": "the task's lease moved on (re-sent or checked since)",
            }.get(lease, f"the task is {lease}; it is not checked again")
        assert lease.token is not None
        report.sends.append(Send(check.task_id, lease.token, "dead_letter", requeues=requeues + 1))
        return None

    async def _give_up(
        self,
        session: AsyncSession,
        report: Report,
        check: CheckMessage,
        requeues: int,
        message: dramatiq.Message[object],
    ) -> tuple[str, str]:
        """A check that keeps dying is a failed check: a poison task stalls, then fails."""
        cause = str(message.options.get("traceback") or "").strip().splitlines()[-1:]
        error = f"check dead-lettered after {requeues} re-sends"
        error += f": {cause[0]}" if cause else ""
        failure = await release_failure(
            session,
            task_id=check.task_id,
            token=check.lease_token,
            error=error,
            backoff=self.backoff,
        )
        if failure is None:
            return "superseded", f"re-sent {requeues} times already; its lease moved on since"
        GAVE_UP.inc()
        watch = await watch_of(session, check.task_id)
        if watch is not None:  # its owner hears it stalled or failed, with the pass's commit
            events = transition_events(
                watch, failure, lease_token=check.lease_token, at=datetime.now(UTC), error=error
            )
            await stage(session, events)
            report.failures += events
        return "requeued_too_often", (
            f"re-sent {requeues} times already; recorded as a failed check ({failure.status})"
        )

    def _send(self, report: Report) -> None:
        for send in report.sends:
            options = {REQUEUES_OPTION: send.requeues} if send.requeues else None
            try:
                send_check(
                    self.broker,
                    CheckMessage(task_id=send.task_id, lease_token=send.token, reason=send.reason),
                    options=options,
                )
            except Exception:
                # The new lease expires and a later pass sends it again.
                SEND_FAILURES.inc()
                log.exception("could not send a check", task_id=send.task_id, reason=send.reason)
            else:
                RESENT.labels(reason=send.reason).inc()

    def _record(self, report: Report) -> None:
        """Log what the pass did, with task ids, and count releases and drops in the metrics."""
        for send in report.sends:
            if send.reason == "overdue":
                log.debug("overdue task sent", task_id=send.task_id)
            else:
                log.info(
                    "check re-sent",
                    task_id=send.task_id,
                    reason=send.reason,
                    attempt=send.attempt,
                    requeues=send.requeues or None,
                )
        if overdue := report.sent("overdue"):
            # Many at once means the scheduler is down or far behind: one line, not thousands.
            log.warning(
                "overdue tasks sent", count=len(overdue), grace=self.grace, task_ids=overdue[:20]
            )
        for lease in report.released:
            RELEASED.labels(why=lease.why_released).inc()
            log.info(
                "expired lease released; task not checked",
                task_id=lease.task_id,
                why=lease.why_released,
            )
        for dropped in report.dropped:
            queue = dropped.letter.queue
            DEAD_DROPPED.labels(queue=queue, reason=dropped.reason).inc()
            log.warning(
                "dead letter dropped",
                queue=queue,
                task_id=dropped.task_id,
                message_id=dropped.letter.entry_id,
                reason=dropped.reason,
                why=dropped.detail,
            )
