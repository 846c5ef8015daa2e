"""A process's life: pools, Redis clients, heartbeats, the ticking loop, health fork, parent."""

from shared.runtime._health_fork import asyncpg_dsn, serve_worker_health
from shared.runtime._heartbeat import (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_PREFIX,
    HEARTBEAT_TTL,
    SERVICES,
    Beat,
    Heart,
    HeartbeatThread,
    State,
    beat_forever,
    instance_id,
    read_beats,
)
from shared.runtime._parent import die_with_parent
from shared.runtime._pools import (
    Pools,
    PoolSpec,
    check_stores,
    close_pools,
    open_resources,
    pool_spec,
)
from shared.runtime._progress import LOOP_TIMEOUT, STALE_AFTER, Progress, hung_workers
from shared.runtime._redis import BACKOFF_BASE, BACKOFF_CAP, RETRIES, async_client, sync_client
from shared.runtime._ticking import Companion, Pass, run_ticking_service, stale_after

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "Beat",
    "Companion",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_PREFIX",
    "HEARTBEAT_TTL",
    "SERVICES",
    "Heart",
    "HeartbeatThread",
    "LOOP_TIMEOUT",
    "Pass",
    "Progress",
    "STALE_AFTER",
    "PoolSpec",
    "Pools",
    "RETRIES",
    "State",
    "async_client",
    "asyncpg_dsn",
    "beat_forever",
    "check_stores",
    "close_pools",
    "die_with_parent",
    "hung_workers",
    "instance_id",
    "open_resources",
    "pool_spec",
    "read_beats",
    "run_ticking_service",
    "serve_worker_health",
    "stale_after",
    "sync_client",
]
