"""Checks flowing through all four services: the starting point of the message and restart tests.

The simulator answers at once, ``count`` lowest-price tasks are checked every 2 s, and the
watchdog runs every second with a 10 s lease, so a fault's effect shows within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.db import Database
from testbed.system import System
from tests.services.test_pipeline import FAST, add_tasks, catalogue

ENV = {**FAST, "STEAMWATCH_WATCHDOG_TICK": "1", "STEAMWATCH_WATCHDOG_GRACE": "3",
       "STEAMWATCH_LEASE_SECONDS": "10"}  # fmt: skip
SERVICES = ("fetcher", "publisher", "watchdog", "scheduler")


@dataclass(frozen=True)
class Flow:
    ids: list[int]  # the tasks checked
    pids: dict[str, int]  # each service's process as started

    def restarted(self, system: System) -> dict[str, int]:
        """The services whose process is no longer the one started (none, if all went well)."""
        now = {p.name: p.process.pid for p in system.procs if p.name in self.pids}
        return {name: pid for name, pid in now.items() if pid != self.pids[name]}


async def start_flow(db: Database, system: System, count: int) -> Flow:
    """Start the simulator and the services on ``count`` new tasks at a 2 s interval."""
    system.start_simulator("--no-limits")
    names = await catalogue(system, count)
    ids = await add_tasks(db, [{"market_hash_name": n, "kind": "lowest_price", "check_interval": 2,
                                "conditions": {"max_price": 1}} for n in names])  # fmt: skip
    procs = [system.start(service, **ENV) for service in SERVICES]
    return Flow(ids=ids, pids={p.name: p.process.pid for p in procs})
