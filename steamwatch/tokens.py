"""``steamwatch tokens``: the HTTP API's bearer tokens: create (shown once), list, revoke."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from shared.access import create_token, list_tokens, revoke_token
from shared.db import ApiToken, Database
from shared.tasks import OWNER_MAX
from steamwatch.common import database_url_of, echo_json, fail, settings_or_exit
from steamwatch.taskviews import console, when

T = TypeVar("T")


def _on_database(work: Callable[[Database], Awaitable[T]]) -> T:
    settings = settings_or_exit()
    with database_url_of(settings) as url:

        async def run() -> T:
            db = Database.create(url=url, pool_size=1, max_overflow=0)
            try:
                return await work(db)
            finally:
                await db.dispose()

        try:
            return asyncio.run(run())
        except (OSError, DBAPIError) as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            missing = reason.startswith('relation "') and "does not exist" in reason
            fail(f"database: {reason}{' (run `steamwatch db upgrade`)' if missing else ''}", code=1)


def _token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner": row.owner,
        "admin": row.admin,
        "note": row.note,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@click.group()
def tokens() -> None:
    """Bearer tokens for the HTTP API: create, list, revoke.

    A token acts for one owner: it sees and changes that owner's watches and subscriptions
    only. An --admin token acts for every owner. Only a hash is stored: a token is shown once.
    """


@tokens.command()
@click.option("--owner", required=True, metavar="NAME", help="Whose watches the token acts on.")
@click.option("--admin", is_flag=True, help="Act for every owner (operators' scripts).")
@click.option("--note", metavar="TEXT", help="What it is for, shown by `tokens list`.")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its row as JSON.")
def create(owner: str, admin: bool, note: str | None, as_json: bool) -> None:
    """Make a token for OWNER and print it (once: it cannot be shown again)."""
    name = owner.strip()
    if not name or len(name) > OWNER_MAX or any(not c.isprintable() for c in name):
        fail(f"--owner: {owner!r} is not an owner name (1-{OWNER_MAX} printable characters)")
    if note is not None and (len(note) > 200 or any(not c.isprintable() for c in note)):
        fail("--note: at most 200 printable characters")

    async def work(db: Database) -> tuple[ApiToken, str]:
        async with db.session_scope() as session:
            return await create_token(session, owner=name, admin=admin, note=note)

    row, token = _on_database(work)
    if as_json:
        echo_json({**_token_json(row), "token": token})
        return
    click.echo(token)
    scope = "every owner (admin)" if admin else repr(name)
    click.echo(
        f"token {row.id} for {scope}; it is shown only now: send it as "
        "'Authorization: Bearer <token>'",
        err=True,
    )


@tokens.command("list")
@click.option("--owner", metavar="NAME", help="Only this owner's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(owner: str | None, as_json: bool) -> None:
    """List tokens (never the tokens themselves)."""

    async def work(db: Database) -> list[ApiToken]:
        async with db.session_scope() as session:
            return list(await list_tokens(session, owner=owner))

    rows = _on_database(work)
    if as_json:
        echo_json([_token_json(r) for r in rows])
        return
    if not rows:
        click.echo("no tokens", err=True)
        return
    table = Table("id", "owner", "admin", "note", "created (UTC)", "revoked (UTC)")
    for r in rows:
        table.add_row(
            str(r.id),
            r.owner,
            "yes" if r.admin else "",
            r.note or "",
            when(r.created_at, short=True),
            when(r.revoked_at, short=True) if r.revoked_at else "",
        )
    console().print(table)


@tokens.command()
@click.argument("token_id", metavar="ID", type=click.IntRange(1, 2**63 - 1))
def revoke(token_id: int) -> None:
    """Revoke token ID: refused from its next request on."""

    async def work(db: Database) -> ApiToken | None:
        async with db.session_scope() as session:
            return await revoke_token(session, token_id)

    row = _on_database(work)
    if row is None:
        fail(f"no such token: {token_id}")
    click.echo(f"revoked {row.id} ({row.owner})")
