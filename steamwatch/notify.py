"""``steamwatch notify``: where an owner's alerts go (Telegram, Discord, webhooks, mail...).

A subscription is an Apprise URL, the event kinds wanted, and optionally one watch and a
message template. The URL holds the service's token: it is sealed with STEAMWATCH_SECRET_KEY
before it is written, and every line this command prints shows it masked. Each command is one
transaction: a bad input prints ``steamwatch: <field>: <what is wrong>``, exits 2, and writes
nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Column, Table
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from shared.alerts import Event
from shared.config import Settings
from shared.db import Database, Delivery, Subscription
from shared.notify import (
    NOTIFY_KINDS,
    TEMPLATE_FIELDS,
    DestinationError,
    SealedURLUnreadable,
    SecretBox,
    SecretKeyError,
    SubscriptionConflict,
    SubscriptionError,
    add_subscription,
    check_outside,
    generate_key,
    parse_destination,
    parse_keys,
    parse_subscription,
    render,
)
from shared.steam import Item
from steamwatch.common import KEY_FILE, database_url_of, echo_json, fail, settings_or_exit
from steamwatch.taskviews import console, when

T = TypeVar("T")


class NotifyError(Exception):
    """Raised when a notify command must stop; its transaction is rolled back."""


def secret_box_of(settings: Settings) -> SecretBox:
    """The key box from STEAMWATCH_SECRET_KEY, or the key `steamwatch dev` keeps in its home."""
    if settings.secret_key is not None:
        text = settings.secret_key.get_secret_value()
    else:
        path = Path(settings.home) / KEY_FILE
        if not path.exists():
            fail(
                "STEAMWATCH_SECRET_KEY is not set: destination URLs are sealed with it. "
                "Generate one with `steamwatch notify keygen` and set it (the same value in "
                "every service), or run beside `steamwatch dev`, which keeps one in "
                f"{path}"
            )
        text = path.read_text().strip()
    try:
        return SecretBox(parse_keys(text))
    except SecretKeyError as e:
        fail(f"STEAMWATCH_SECRET_KEY: {e}")


def _on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    with database_url_of(settings) as url:
        try:
            return asyncio.run(_using(url, work))
        except NotifyError as e:
            fail(str(e))
        except (OSError, DBAPIError) as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            missing = reason.startswith('relation "') and "does not exist" in reason
            fail(f"database: {reason}{' (run `steamwatch db upgrade`)' if missing else ''}", code=1)


async def _using(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database.create(url=url, pool_size=1, max_overflow=0)
    try:
        return await work(db)
    finally:
        await db.dispose()


@click.group()
def notify() -> None:
    """Send alerts to Telegram, Discord, webhooks, mail: add, list, test, pause, resume, rm, dlq.

    \b
    Destinations are Apprise URLs (https://github.com/caronc/apprise/wiki), for example:
      tgram://BOT_TOKEN/CHAT_ID          Telegram
      discord://WEBHOOK_ID/WEBHOOK_TOKEN Discord
      json://host/path, jsons://...      a JSON webhook (POST)
      mailtos://user:password@host       mail
    """


def _subscription_json(sub: Subscription, counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": sub.id,
        "owner": sub.owner,
        "task_id": sub.task_id,
        "destination": sub.url_masked,
        "scheme": sub.scheme,
        "kinds": list(sub.kinds),
        "template": sub.template,
        "status": sub.status,
        "paused_reason": sub.paused_reason,
        "created_at": sub.created_at,
        **({"deliveries": counts} if counts is not None else {}),
    }


@notify.command()
@click.option("--owner", required=True, help="Whose alerts (the watches' owner).")
@click.argument("url")
@click.option(
    "--kinds",
    default="price_at_or_below,new_listing,order_book,failed,subscription_paused",
    show_default=True,
    help="Event kinds to send, comma-separated, or 'all'. Known: " + ", ".join(NOTIFY_KINDS),
)
@click.option("--task", "task_id", type=int, help="Only this watch's events (default: all).")
@click.option(
    "--template",
    help="Message text with {names}: " + ", ".join(f"{{{n}}}" for n in TEMPLATE_FIELDS),
)
@click.option("--json", "as_json", is_flag=True, help="Print the subscription as JSON.")
def add(
    owner: str, url: str, kinds: str, task_id: int | None, template: str | None, as_json: bool
) -> None:
    """Send OWNER's events to URL (an Apprise URL; quote it in the shell)."""
    settings = settings_or_exit()
    try:
        spec = parse_subscription(
            owner=owner, url=url, kinds=kinds, task_id=task_id, template=template
        )
        check_outside(spec.destination, allow_private=settings.notify_allow_private)
    except SubscriptionError as e:
        fail(f"{_flag(e.field)}: {e.reason}")
    except DestinationError as e:
        fail(f"URL: {e.reason}")
    box = secret_box_of(settings)

    async def work(db: Database) -> Subscription:
        try:
            async with db.session_scope() as session:
                return await add_subscription(session, spec, box)
        except SubscriptionConflict as e:
            raise NotifyError(f"URL: {e.reason} (see `steamwatch notify list`)") from None
        except SubscriptionError as e:
            raise NotifyError(f"{_flag(e.field)}: {e.reason}") from None

    sub = _on_database(settings, work)
    if as_json:
        echo_json(_subscription_json(sub))
        return
    scope = f"watch {sub.task_id}" if sub.task_id else "all watches"
    click.echo(
        f"subscription {sub.id} added: {sub.owner} ({scope}) -> {sub.url_masked} "
        f"[{spec.destination.service}], kinds: {', '.join(sub.kinds)}"
    )


def _flag(field: str) -> str:
    return {"url": "URL", "task": "--task"}.get(field, f"--{field}")


@notify.command("list")
@click.option("--owner", help="Only this owner's subscriptions.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(owner: str | None, as_json: bool) -> None:
    """List subscriptions (destinations masked) with their deliveries so far."""
    settings = settings_or_exit()

    async def work(db: Database) -> list[tuple[Subscription, dict[str, int]]]:
        async with db.session_scope() as session:
            query = select(Subscription).order_by(Subscription.id)
            if owner is not None:
                query = query.where(Subscription.owner == owner)
            subs = list(await session.scalars(query))
            rows = await session.execute(
                select(Delivery.subscription_id, Delivery.status, func.count())
                .where(Delivery.subscription_id.in_([s.id for s in subs]))
                .group_by(Delivery.subscription_id, Delivery.status)
            )
            counts: dict[int, dict[str, int]] = {s.id: {} for s in subs}
            for sub_id, status, count in rows:
                counts[sub_id][status] = count
            return [(s, counts[s.id]) for s in subs]

    found = _on_database(settings, work)
    if as_json:
        echo_json([_subscription_json(s, c) for s, c in found])
        return
    if not found:
        click.echo("no subscriptions", err=True)
        return
    headers = ("id", "owner", "watch", "destination", "kinds", "status", "sent", "waiting", "dead")
    table = Table(*[Column(h, overflow="fold") for h in headers])
    for sub, counts in found:
        status = sub.status + (f": {sub.paused_reason}" if sub.paused_reason else "")
        table.add_row(
            str(sub.id),
            sub.owner,
            str(sub.task_id or "all"),
            sub.url_masked,
            ", ".join(sub.kinds),
            status,
            str(counts.get("sent", 0)),
            str(counts.get("pending", 0) + counts.get("sending", 0)),
            str(counts.get("dead", 0)),
        )
    console().print(table)


_ID = click.argument("subscription_id", metavar="ID", type=int)


async def _get(db: Database, subscription_id: int) -> Subscription:
    async with db.session_scope() as session:
        sub = await session.get(Subscription, subscription_id)
        if sub is None:
            raise NotifyError(f"no such subscription: {subscription_id}")
        return sub


@notify.command()
@_ID
def test(subscription_id: int) -> None:
    """Send a test message to a subscription's destination now, and say what came of it."""
    from services.notifier.send import install_response_observer, send_blocking

    settings = settings_or_exit()
    box = secret_box_of(settings)
    sub = _on_database(settings, lambda db: _get(db, subscription_id))
    try:
        url = box.open(sub.url_cipher)
        destination = parse_destination(url)
        check_outside(destination, allow_private=settings.notify_allow_private)
    except (SealedURLUnreadable, DestinationError) as e:
        fail(f"subscription {sub.id}: {e}", code=1)
    event = Event(
        id=f"test:{sub.id}:{datetime.now(UTC).timestamp():.0f}",
        kind="price_at_or_below",
        task_id=sub.task_id or 0,
        owner=sub.owner,
        item=Item(730, "AK-47 | Redline (Field-Tested)", 3),
        at=datetime.now(UTC),
        data={"price": 950, "price_text": "9,50€", "max_price": 1000, "max_price_text": "10,--€"},
    )
    title, body = render(event, sub.template)
    install_response_observer()
    result = send_blocking(
        url, title=f"[steamwatch test] {title}", body=body, timeout=settings.notify_timeout
    )
    if result.verdict == "sent":
        click.echo(f"test message sent to {sub.url_masked} [{destination.service}]")
        return
    wait = f", retry after {result.retry_after:.0f}s" if result.retry_after is not None else ""
    fail(f"test message to {sub.url_masked} failed: {result.error}{wait}", code=1)


def _set_status(subscription_id: int, values: dict[str, Any], done: str) -> None:
    settings = settings_or_exit()

    async def work(db: Database) -> Subscription:
        async with db.session_scope() as session:
            sub = await session.get(Subscription, subscription_id, with_for_update=True)
            if sub is None:
                raise NotifyError(f"no such subscription: {subscription_id}")
            for key, value in values.items():
                setattr(sub, key, value)
            return sub

    sub = _on_database(settings, work)
    click.echo(f"subscription {sub.id} {done} ({sub.url_masked})")


@notify.command()
@_ID
def pause(subscription_id: int) -> None:
    """Stop sending to this subscription (events meanwhile are not sent later)."""
    _set_status(subscription_id, {"status": "paused", "paused_reason": "paused by hand"}, "paused")


@notify.command()
@_ID
def resume(subscription_id: int) -> None:
    """Send to this subscription again (`notify dlq retry --subscription ID` resends misses)."""
    _set_status(subscription_id, {"status": "active", "paused_reason": None}, "resumed")


@notify.command()
@_ID
def rm(subscription_id: int) -> None:
    """Delete a subscription and its delivery records."""
    settings = settings_or_exit()

    async def work(db: Database) -> str:
        async with db.session_scope() as session:
            sub = await session.get(Subscription, subscription_id)
            if sub is None:
                raise NotifyError(f"no such subscription: {subscription_id}")
            masked = sub.url_masked
            await session.execute(delete(Subscription).where(Subscription.id == subscription_id))
            return masked

    masked = _on_database(settings, work)
    click.echo(f"subscription {subscription_id} removed ({masked})")


@notify.command()
def keygen() -> None:
    """Print a new key for STEAMWATCH_SECRET_KEY (put it first to rotate; then `notify rekey`)."""
    click.echo(generate_key())


@notify.command()
def rekey() -> None:
    """Seal every stored destination with the first key of STEAMWATCH_SECRET_KEY."""
    settings = settings_or_exit()
    box = secret_box_of(settings)

    async def work(db: Database) -> int:
        async with db.session_scope() as session:
            subs = list(await session.scalars(select(Subscription).with_for_update()))
            for sub in subs:
                try:
                    sub.url_cipher = box.reseal(sub.url_cipher)
                except SealedURLUnreadable as e:
                    raise NotifyError(f"subscription {sub.id}: {e}") from None
            return len(subs)

    count = _on_database(settings, work)
    click.echo(f"{count} destination(s) sealed with the first key")


@notify.group()
def dlq() -> None:
    """Deliveries that gave up: list them, or send them again."""


@dlq.command("list")
@click.option("--owner", help="Only this owner's.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def dlq_list(owner: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first, with their last error."""
    settings = settings_or_exit()

    async def work(db: Database) -> list[tuple[Delivery, str]]:
        async with db.session_scope() as session:
            query = (
                select(Delivery, Subscription.url_masked)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(Delivery.status == "dead")
                .order_by(Delivery.id.desc())
                .limit(limit)
            )
            if owner is not None:
                query = query.where(Delivery.owner == owner)
            return [(row[0], row[1]) for row in await session.execute(query)]

    found = _on_database(settings, work)
    if as_json:
        echo_json(
            [
                {
                    "id": d.id,
                    "subscription_id": d.subscription_id,
                    "destination": masked,
                    "event_id": d.event_id,
                    "kind": d.event.get("kind"),
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "created_at": d.created_at,
                }
                for d, masked in found
            ]
        )
        return
    if not found:
        click.echo("no dead letters", err=True)
        return
    headers = ("id", "sub", "destination", "event", "attempts", "last error", "since (UTC)")
    table = Table(*[Column(h, overflow="fold") for h in headers])
    for d, masked in found:
        table.add_row(
            str(d.id),
            str(d.subscription_id),
            masked,
            f"{d.event.get('kind')} {d.event_id}",
            str(d.attempts),
            d.last_error or "",
            when(d.created_at, short=True),
        )
    console().print(table)


@dlq.command("retry")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--subscription", "subscription_id", type=int, help="All of one subscription's.")
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
def dlq_retry(ids: tuple[int, ...], subscription_id: int | None, everything: bool) -> None:
    """Send dead letters again (by id, by subscription, or --all), from a fresh attempt count."""
    if not ids and subscription_id is None and not everything:
        fail("name dead letters by ID, or use --subscription ID or --all")
    settings = settings_or_exit()

    async def work(db: Database) -> list[int]:
        async with db.session_scope() as session:
            query = update(Delivery).where(Delivery.status == "dead")
            if ids:
                query = query.where(Delivery.id.in_(ids))
            if subscription_id is not None:
                query = query.where(Delivery.subscription_id == subscription_id)
            result = await session.execute(
                query.values(status="pending", attempts=0, next_attempt_at=func.now()).returning(
                    Delivery.id
                )
            )
            retried = [row[0] for row in result]
            if ids and set(ids) - set(retried):
                missing = sorted(set(ids) - set(retried))
                raise NotifyError(f"no such dead letter: {', '.join(map(str, missing))}")
            return retried

    retried = _on_database(settings, work)
    click.echo(f"{len(retried)} dead letter(s) queued again")
