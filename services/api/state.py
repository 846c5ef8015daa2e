"""What one API process holds for its life: the pool, the Redis clients, the limiter, the key."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.db import Database
from shared.notify import SecretBox


@dataclass
class State:
    settings: Settings
    db: Database
    redis: redis.asyncio.Redis
    beat_client: Redis  # heartbeats are read with the sync client (shared.runtime)
    limiter: SlidingWindowCounterRateLimiter
    box: SecretBox | None  # None: no STEAMWATCH_SECRET_KEY, subscriptions cannot be made
    reads: async_sessionmaker[AsyncSession]  # the same pool in autocommit, for GETs
