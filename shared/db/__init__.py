"""PostgreSQL: the engine, one session per unit of work, the tables and their migrations."""

from shared.db import migrate
from shared.db._engine import Database, create_engine, create_sessionmaker, session_scope
from shared.db._models import (
    LAST_ERROR_MAX,
    NAMING_CONVENTION,
    TASK_STATUSES,
    WATCH_KINDS,
    Base,
    PriceSnapshot,
    SeenListing,
    Task,
    TaskStatus,
    WatchKind,
)

__all__ = [
    "Base",
    "Database",
    "LAST_ERROR_MAX",
    "NAMING_CONVENTION",
    "PriceSnapshot",
    "SeenListing",
    "TASK_STATUSES",
    "Task",
    "TaskStatus",
    "WATCH_KINDS",
    "WatchKind",
    "create_engine",
    "create_sessionmaker",
    "migrate",
    "session_scope",
]
