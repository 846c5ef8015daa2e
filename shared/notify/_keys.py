"""The key that seals destination URLs at rest: Fernet tokens, several keys for rotation.

``STEAMWATCH_SECRET_KEY`` holds one or more Fernet keys, comma-separated, newest first. New
URLs are sealed with the first; any of them opens a stored one, so a rotation is: put the new
key first, run ``steamwatch notify rekey``, then drop the old key.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(ValueError):
    """Raised when the secret key setting cannot be used (the message never repeats it)."""


class SealedURLUnreadable(ValueError):
    """Raised when a stored URL opens with none of the configured keys (a key was dropped)."""

    def __init__(self) -> None:
        super().__init__(
            "the stored destination opens with none of the keys in STEAMWATCH_SECRET_KEY "
            "(was the key that sealed it removed?)"
        )


def generate_key() -> str:
    """A new random key, in the form ``STEAMWATCH_SECRET_KEY`` takes."""
    return Fernet.generate_key().decode()


def parse_keys(text: str) -> tuple[str, ...]:
    """The keys in ``STEAMWATCH_SECRET_KEY``; :class:`SecretKeyError` says which is wrong."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise SecretKeyError("is empty; generate a key with `steamwatch notify keygen`")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64 "
                "bytes); generate one with `steamwatch notify keygen`"
            ) from None
    if len(set(keys)) != len(keys):
        raise SecretKeyError("lists the same key twice")
    return keys


class SecretBox:
    """Seals and opens destination URLs with the configured keys (the first one seals)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyError("is empty; generate a key with `steamwatch notify keygen`")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def __repr__(self) -> str:
        return "<SecretBox keys=***>"

    def seal(self, url: str) -> str:
        return self._fernet.encrypt(url.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SealedURLUnreadable() from None

    def reseal(self, token: str) -> str:
        """The same URL sealed with the first key (a no-op in meaning; the rotation step)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SealedURLUnreadable() from None
