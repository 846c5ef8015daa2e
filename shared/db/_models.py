"""The tables: watch tasks (with their schedule, error counters and lease) and price history.

The partial indexes are what keep the hot queries cheap: "due now" walks ``ix_tasks_due`` in
``next_check`` order and stops after the batch, so it costs O(due) whatever the table holds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TaskStatus = Literal["active", "paused", "stalled", "failed"]
WatchKind = Literal["lowest_price", "new_listings", "order_book"]
SubscriptionStatus = Literal["active", "paused"]
DeliveryStatus = Literal["pending", "sending", "sent", "dead"]
TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)
SUBSCRIPTION_STATUSES: tuple[str, ...] = get_args(SubscriptionStatus)
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)
WATCH_KINDS: tuple[str, ...] = get_args(WatchKind)
LAST_ERROR_MAX = 500

# Stable constraint names, so migrations can refer to them and autogenerate compares them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Task(Base):
    """One watch: an item, what to watch on it, when to check it next, and who holds it now."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    appid: Mapped[int] = mapped_column(Integer)
    market_hash_name: Mapped[str] = mapped_column(String(255))
    currency: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    kind: Mapped[WatchKind] = mapped_column(String(16))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    check_interval: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    status: Mapped[TaskStatus] = mapped_column(String(16), server_default=text("'active'"))
    next_check: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    consecutive_errors: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX))
    recovery_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    lease_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The publisher's memory between checks (was the condition met, as of which check).
    condition_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("owner", "appid", "market_hash_name", "kind", name="uq_tasks_watch"),
        CheckConstraint("appid > 0", name="appid_positive"),
        CheckConstraint("currency > 0", name="currency_positive"),
        CheckConstraint("char_length(market_hash_name) > 0", name="name_not_empty"),
        CheckConstraint("char_length(owner) > 0", name="owner_not_empty"),
        CheckConstraint("check_interval > 0", name="interval_positive"),
        CheckConstraint("consecutive_errors >= 0", name="errors_not_negative"),
        CheckConstraint("recovery_attempts >= 0", name="recovery_not_negative"),
        CheckConstraint(_in("status", TASK_STATUSES), name="status_known"),
        CheckConstraint(_in("kind", WATCH_KINDS), name="kind_known"),
        # A lease is a token and an expiry together, or neither.
        CheckConstraint(
            "(lease_token IS NULL) = (lease_expires_at IS NULL)", name="lease_complete"
        ),
        # The scheduler's claim: active, unleased rows in next_check order.
        Index(
            "ix_tasks_due",
            "next_check",
            postgresql_where=text("is_active AND status = 'active' AND lease_token IS NULL"),
        ),
        # The watchdog's sweep for checks that were sent and never completed.
        Index(
            "ix_tasks_lease_expiry",
            "lease_expires_at",
            postgresql_where=text("lease_token IS NOT NULL"),
        ),
        # The watchdog's recovery schedule for stalled tasks.
        Index(
            "ix_tasks_stalled",
            "next_check",
            postgresql_where=text("is_active AND status = 'stalled'"),
        ),
        # An owner's watches page by page, in id order (the API's cursor).
        Index("ix_tasks_owner_id", "owner", "id"),
    )

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.kind} {self.appid}/{self.market_hash_name!r} {self.status}>"


class PriceSnapshot(Base):
    """What one successful check saw; one row per (task, lease), so a redelivery stores once."""

    __tablename__ = "price_history"

    # From the sequence price_history_id_seq (as a serial column), not an identity: a table
    # with an identity column cannot be taken over as a partition (migration 0007).
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tasks.id", ondelete="CASCADE"))
    lease_token: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    currency: Mapped[int] = mapped_column(SmallInteger)
    # Money in integer minor units of `currency`; None where the endpoint had no value.
    lowest_price: Mapped[int | None] = mapped_column(BigInteger)
    median_price: Mapped[int | None] = mapped_column(BigInteger)
    volume: Mapped[int | None] = mapped_column(Integer)
    highest_buy: Mapped[int | None] = mapped_column(BigInteger)
    lowest_sell: Mapped[int | None] = mapped_column(BigInteger)
    buy_count: Mapped[int | None] = mapped_column(Integer)
    sell_count: Mapped[int | None] = mapped_column(Integer)
    listings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # Order-book depth: {"sells": [[price, quantity], ...], "buys": [...]}, per level.
    book: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    source: Mapped[str | None] = mapped_column(Text)

    # Partitioned by day on checked_at (migration 0007): no unique constraint can leave out the
    # partition key, so a check stores its row once by its lease, not by a constraint: the
    # fetcher writes it in the transaction that releases the lease, and only if that release
    # succeeds.
    __table_args__ = (
        # Covering (migration 0009): a watch's day of prices is read from the index alone.
        Index(
            "ix_price_history_task_time",
            "task_id",
            "checked_at",
            postgresql_include=["lowest_price", "volume"],
        ),
        {"postgresql_partition_by": "RANGE (checked_at)"},
    )


class PriceRollup(Base):
    """One watch's price over one hour, rolled up from its checks and kept after they go.

    ``first``/``min``/``max``/``last`` are of the watch's price (``lowest_price``, the lowest
    sell for an order book) in minor units of ``currency``; ``volume`` is the last one seen.
    """

    __tablename__ = "price_rollups"

    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    currency: Mapped[int] = mapped_column(SmallInteger)
    checks: Mapped[int] = mapped_column(Integer)
    first: Mapped[int | None] = mapped_column(BigInteger)
    min: Mapped[int | None] = mapped_column(BigInteger)
    max: Mapped[int | None] = mapped_column(BigInteger)
    last: Mapped[int | None] = mapped_column(BigInteger)
    volume: Mapped[int | None] = mapped_column(Integer)

    # The primary key's index also INCLUDEs every other column (migration 0008): a watch's
    # hours are read from the index alone, side by side, not from a page per hour.
    __table_args__ = (Index("ix_price_rollups_hour", "hour"),)


class HistoryState(Base):
    """The one row the history maintenance keeps: hours before ``rolled_until`` are rolled up."""

    __tablename__ = "history_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    rolled_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class SeenListing(Base):
    """A listing a new-listings watch has already announced: each listing id alerts once."""

    __tablename__ = "seen_listings"

    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    listing_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_seen_listings_seen_at", "seen_at"),)


class Subscription(Base):
    """Where an owner's events go: an Apprise URL (encrypted: it holds tokens) and what to send.

    ``task_id`` narrows it to one watch; ``kinds`` are the event kinds wanted. The URL is stored
    only as a Fernet token (``url_cipher``), beside a masked form for display and a SHA-256 of
    it that keys duplicates and rate limits without revealing it.
    """

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tasks.id", ondelete="CASCADE")
    )
    scheme: Mapped[str] = mapped_column(String(32))
    url_cipher: Mapped[str] = mapped_column(Text)
    url_masked: Mapped[str] = mapped_column(String(512))
    url_hash: Mapped[str] = mapped_column(String(64))
    kinds: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    template: Mapped[str | None] = mapped_column(Text)
    status: Mapped[SubscriptionStatus] = mapped_column(String(16), server_default=text("'active'"))
    paused_reason: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("char_length(owner) > 0", name="owner_not_empty"),
        CheckConstraint("cardinality(kinds) > 0", name="kinds_not_empty"),
        CheckConstraint(_in("status", SUBSCRIPTION_STATUSES), name="status_known"),
        # One subscription per owner, destination and watch (all watches: task_id NULL).
        Index(
            "uq_subscriptions_destination",
            "owner",
            "url_hash",
            text("coalesce(task_id, 0)"),
            unique=True,
        ),
        Index("ix_subscriptions_owner", "owner"),
    )

    def __repr__(self) -> str:
        return f"<Subscription {self.id} {self.owner} {self.url_masked} {self.status}>"


class Delivery(Base):
    """One event for one subscription: written before the send, marked after it.

    ``pending`` waits for ``next_attempt_at``; ``sending`` is held by one notifier until
    ``claimed_until`` (a crash there resends that one message, once the claim runs out);
    ``sent`` is done; ``dead`` gave up and waits in the dead-letter list with its last error.
    The event itself is kept, so a retry does not depend on the capped stream.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255))
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    owner: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict[str, Any]] = mapped_column(JSONB)
    event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[DeliveryStatus] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id", name="uq_deliveries_once"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint(
            "(status = 'sending') = (claimed_until IS NOT NULL)", name="claim_while_sending"
        ),
        # The notifiers' sweep: what is due, and what a crashed notifier left mid-send.
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_deliveries_claims", "claimed_until", postgresql_where=text("status = 'sending'")),
        Index("ix_deliveries_dead", "created_at", postgresql_where=text("status = 'dead'")),
        Index("ix_deliveries_sent", "sent_at", postgresql_where=text("status = 'sent'")),
        Index("ix_deliveries_subscription", "subscription_id"),
    )


class ApiToken(Base):
    """A bearer token of the HTTP API: acts for one owner, or for all with ``admin``.

    The token is shown once, when made; only a SHA-256 of its secret part is kept (a token is
    32 random bytes, so a plain hash is enough: there is nothing to guess from). The id is part
    of the token, so a request finds its row by key and compares hashes in constant time.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("char_length(owner) > 0", name="owner_not_empty"),
        CheckConstraint("char_length(secret_hash) = 64", name="hash_sha256"),
        Index("ix_api_tokens_owner", "owner"),
    )

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.owner}{' admin' if self.admin else ''}>"


class OutboxEvent(Base):
    """An event written in the same transaction as the check that raised it, until it is out.

    The fetcher publishes its events right after the commit and deletes their rows; whatever
    that missed (a kill, Redis down) the publisher publishes from here. An event's id is
    deterministic, so a row published twice reaches consumers once.
    """

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the event's JSON, as consumers read it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
