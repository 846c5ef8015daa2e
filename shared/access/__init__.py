"""Who may use the HTTP API: per-owner bearer tokens, made once, kept hashed, revocable."""

from shared.access._tokens import (
    TOKEN_PREFIX,
    BadToken,
    Principal,
    authenticate,
    create_token,
    list_tokens,
    parse_token,
    revoke_token,
    secret_hash,
)

__all__ = [
    "BadToken",
    "Principal",
    "TOKEN_PREFIX",
    "authenticate",
    "create_token",
    "list_tokens",
    "parse_token",
    "revoke_token",
    "secret_hash",
]
