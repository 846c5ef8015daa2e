"""PostgreSQL: the engine, one session per unit of work, the tables and their migrations."""

from shared.db import migrate
from shared.db._engine import Database, create_engine, create_sessionmaker, session_scope
from shared.db._models import (
    DELIVERY_STATUSES,
    LAST_ERROR_MAX,
    NAMING_CONVENTION,
    SUBSCRIPTION_STATUSES,
    TASK_STATUSES,
    WATCH_KINDS,
    ApiToken,
    Base,
    Delivery,
    DeliveryStatus,
    PriceSnapshot,
    SeenListing,
    Subscription,
    SubscriptionStatus,
    Task,
    TaskStatus,
    WatchKind,
)

__all__ = [
    "ApiToken",
    "Base",
    "DELIVERY_STATUSES",
    "Database",
    "Delivery",
    "DeliveryStatus",
    "LAST_ERROR_MAX",
    "NAMING_CONVENTION",
    "PriceSnapshot",
    "SUBSCRIPTION_STATUSES",
    "SeenListing",
    "Subscription",
    "SubscriptionStatus",
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
