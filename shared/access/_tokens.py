"""API tokens: ``swt_<id>_<secret>``, the secret 32 random bytes, only its SHA-256 stored.

The id in the token finds the row by its key; the secret's hash is compared with
:func:`hmac.compare_digest`, so the time a wrong token takes says nothing about the right one.
A revoked token is refused from the next request on: nothing is cached.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import ApiToken

TOKEN_PREFIX = "swt_"
_TOKEN = re.compile(r"^swt_([1-9][0-9]{0,18})_([A-Za-z0-9_-]{43})$")

Reason = Literal["missing", "malformed", "unknown", "revoked"]


class BadToken(Exception):
    """Raised when a request's token is not a live one; ``reason`` is safe to count and log."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: one owner, or every owner with ``admin``."""

    token_id: int
    owner: str
    admin: bool

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.owner


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[int, str]:
    """The id and the secret of a token as given; :class:`BadToken` if it is not one."""
    match = _TOKEN.match(token)
    if match is None:
        raise BadToken(
            "malformed", f"the bearer token is not a steamwatch token ({TOKEN_PREFIX}<id>_<secret>)"
        )
    return int(match.group(1)), match.group(2)


async def create_token(
    session: AsyncSession, *, owner: str, admin: bool = False, note: str | None = None
) -> tuple[ApiToken, str]:
    """A new token's row and the token itself: the only time it exists outside a client."""
    secret = secrets.token_urlsafe(32)
    row = (
        await session.scalars(
            insert(ApiToken)
            .values(owner=owner, admin=admin, note=note, secret_hash=secret_hash(secret))
            .returning(ApiToken)
        )
    ).one()
    return row, f"{TOKEN_PREFIX}{row.id}_{secret}"


async def list_tokens(session: AsyncSession, *, owner: str | None = None) -> Sequence[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if owner is not None:
        query = query.where(ApiToken.owner == owner)
    return list(await session.scalars(query))


async def revoke_token(session: AsyncSession, token_id: int) -> ApiToken | None:
    """Revoke it (again is fine); None if there is no such token."""
    row = await session.get(ApiToken, token_id, with_for_update=True)
    if row is not None and row.revoked_at is None:
        await session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=func.now())
        )
        await session.refresh(row)
    return row


# Built once: a request binds only the id.
_LOOKUP = select(ApiToken.owner, ApiToken.admin, ApiToken.secret_hash, ApiToken.revoked_at).where(
    ApiToken.id == bindparam("token_id")
)


async def authenticate(session: AsyncSession, token: str) -> Principal:
    """The principal a token stands for; :class:`BadToken` for anything but a live token."""
    token_id, secret = parse_token(token)
    connection = await session.connection()  # Core, not the ORM: this runs on every request
    row = (await connection.execute(_LOOKUP, {"token_id": token_id})).one_or_none()
    # Compare even when there is no row, so an unknown id takes as long as a wrong secret.
    stored = row.secret_hash if row is not None else "0" * 64
    if not hmac.compare_digest(secret_hash(secret), stored) or row is None:
        raise BadToken("unknown", "the bearer token is not known")
    if row.revoked_at is not None:
        raise BadToken("revoked", "the bearer token was revoked")
    return Principal(token_id=token_id, owner=row.owner, admin=row.admin)
