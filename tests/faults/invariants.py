"""What must hold after any fault: the invariants every fault test checks, in one place.

- every active task holds a live lease or has its next check ahead (state always moved on);
- every active task was checked within its interval plus the recovery window, up to now;
- no event was published twice;
- no service process exited unless the test stopped it;
- no session-state error (the incident's) appears in any log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from shared.db import Database
from shared.models import Task
from testbed.system import SESSION_STATE_ERRORS, System
from tests.services.test_pipeline import all_events, history


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    worst_gap: float = 0.0  # seconds beyond its interval, the longest any task waited
    checks: int = 0
    events: int = 0

    def __str__(self) -> str:
        return (f"{self.checks} checks, {self.events} events, worst gap beyond interval "
                f"{self.worst_gap:.1f}s; problems: {self.problems or 'none'}")  # fmt: skip


async def verdict(
    db: Database, redis_url: str, system: System, *, window: float, slack: float = 2.0
) -> Verdict:
    """Check every invariant now; ``window`` is how long a fault may hold a check back."""
    out = Verdict()
    now = datetime.now(UTC)
    async with db.session_scope() as s:
        tasks = (await s.scalars(select(Task).where(Task.is_active))).all()
    runs = await history(db)
    for task in tasks:
        if task.status not in ("active", "stalled"):
            continue
        leased = task.lease_token is not None and task.lease_expires_at is not None
        if not (leased and task.lease_expires_at > now) and task.next_check < now - timedelta(seconds=slack):
            out.problems.append(f"task {task.id}: next_check {task.next_check:%H:%M:%S} is behind")
        times = [r.checked_at for r in runs.get(task.id, [])] + [now]
        gaps = [(b - a).total_seconds() - task.check_interval for a, b in zip(times, times[1:], strict=False)]
        worst = max(gaps, default=0.0)
        out.worst_gap = max(out.worst_gap, worst)
        if worst > window:
            out.problems.append(f"task {task.id}: waited {worst:.1f}s beyond its interval")
    out.checks = sum(len(v) for v in runs.values())
    events = await all_events(redis_url)
    out.events = len(events)
    if len({e.id for e in events}) != len(events):
        out.problems.append("an event was published twice")
    out.problems += system.unexpected_exits()
    if SESSION_STATE_ERRORS.search(system.logs()):
        out.problems.append("a session-state error in the logs")
    return out
