"""Values that carry credentials: they print with the secret masked and give it up only on request.

Database URLs, Redis URLs and proxy URLs may hold a password. Wrapping them keeps that password
out of every repr, log line and error message by construction rather than by care at each call.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK = "***"

# Catches credentials in free text: "scheme://user:password@" or "scheme://password@".
_CREDENTIALS_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """The URL with any password (and a bare token in the user part) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return redact_text(url)
    if port is not None:
        host = f"{host}:{port}"
    if parts.password is not None:
        userinfo = f"{parts.username}:{MASK}"
    else:
        # "redis://token@host" carries the secret in the user part.
        userinfo = MASK
    masked = SplitResult(
        parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment
    )
    return urlunsplit(masked)


def redact_text(text: str) -> str:
    """Any ``scheme://user:password@`` inside free text, with the credentials masked."""

    def mask(match: re.Match[str]) -> str:
        userinfo = match.group("userinfo")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        shown = f"{user}:{MASK}" if user else MASK
        return f"{match.group('scheme')}{shown}@"

    return _CREDENTIALS_IN_TEXT.sub(mask, text)


class SecretURL:
    """A URL that may hold credentials: ``str()`` and ``repr()`` show it masked.

    Call :meth:`reveal` where the real value must go to a driver, and nowhere else.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return redact_url(self._value)

    @property
    def scheme(self) -> str:
        return urlsplit(self._value).scheme

    @property
    def has_credentials(self) -> bool:
        parts = urlsplit(self._value)
        return parts.username is not None or parts.password is not None

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"SecretURL({self.masked!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretURL) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
