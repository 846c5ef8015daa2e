"""Results a dead publisher worker fetched and never finished: put back on their queue.

dramatiq's Redis broker keeps each fetched message id in ``<ns>:__acks__.<worker>.<queue>``
until the worker acknowledges it, and scores every worker in ``<ns>:__heartbeats__`` at each
broker command it sends. A worker killed outright (SIGKILL, the OOM killer, a lost node) leaves
its ids there, and dramatiq itself puts them back only during "maintenance", which runs on a
random one in a thousand broker commands once the worker has been silent for the broker's
heartbeat timeout: many minutes at this system's rates. A check left that way is re-sent when
its lease expires; a result has no lease, so its alerts would wait that long, or be superseded
by the task's next check and never be sent at all.

Each watchdog pass requeues the results held by every worker silent for longer than a lease.
A live worker's consumers poll Redis at least every second, so one silent that long is gone
(the scores are the workers' clocks: a skew of seconds is nothing against a lease); and if it
were not, a result judged twice changes nothing (the task row orders the two, the second is
stale, and its alerts' ids are claimed already).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dramatiq.common import dq_name
from redis.asyncio import Redis

from shared.bus import NAMESPACE, RESULTS_QUEUE, acks_prefix, heartbeats_key, queue_key

#: The queues whose held messages are requeued: results, and their delayed retries.
QUEUES: tuple[str, ...] = (RESULTS_QUEUE, dq_name(RESULTS_QUEUE))

# KEYS: heartbeats. ARGV: acks prefix, queue key prefix, silent since (ms), most workers,
# queue names... (the key layout of shared.bus's _keys, which Lua cannot import).
# The most recently silent first: dramatiq prunes the set only in its maintenance, so long-gone
# workers (already requeued, or senders that never held anything) pile up behind them.
# As dramatiq's own maintenance does it (dispatch.lua), in one script: a message is pushed back
# only if it still exists, and the worker's acknowledgement set goes, so a late ack of a worker
# that was alive after all deletes nothing.
_REQUEUE = """
local requeued = {}
local silent = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], '-inf', 'LIMIT', 0, ARGV[4])
for _, worker in ipairs(silent) do
  for i = 5, #ARGV do
    local queue = ARGV[i]
    local acks = ARGV[1] .. worker .. '.' .. queue
    local ids = redis.call('SMEMBERS', acks)
    if #ids > 0 then
      local moved = 0
      for _, id in ipairs(ids) do
        if redis.call('HEXISTS', ARGV[2] .. queue .. '.msgs', id) == 1 then
          redis.call('RPUSH', ARGV[2] .. queue, id)
          moved = moved + 1
        end
      end
      redis.call('DEL', acks)
      table.insert(requeued, worker)
      table.insert(requeued, queue)
      table.insert(requeued, moved)
    end
  end
end
return requeued
"""


@dataclass(frozen=True)
class Requeued:
    """Messages a silent worker held on one queue, now back on it."""

    worker: str
    queue: str
    count: int


async def requeue_orphans(
    redis: Redis,
    *,
    silent_for: float,
    queues: tuple[str, ...] = QUEUES,
    namespace: str = NAMESPACE,
    limit: int = 1000,
    now: float | None = None,
) -> list[Requeued]:
    """Requeue what workers silent for ``silent_for`` seconds hold on ``queues``.

    Looks at the ``limit`` most recently silent workers; returns what moved, per worker and queue.
    """
    since_ms = int(((now if now is not None else time.time()) - silent_for) * 1000)
    script = redis.register_script(_REQUEUE)
    reply = await script(
        keys=[heartbeats_key(namespace=namespace)],
        args=[
            acks_prefix(namespace=namespace),
            queue_key("", namespace=namespace),
            since_ms,
            limit,
            *queues,
        ],
    )
    return [
        Requeued(_text(reply[i]), _text(reply[i + 1]), int(reply[i + 2]))
        for i in range(0, len(reply), 3)
    ]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
