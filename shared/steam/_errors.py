"""Typed failures of Steam market access, one class per way a request can go wrong.

Every error keeps its data as attributes, names the endpoint in `str()`, and survives
`pickle` (dramatiq and multiprocessing move exceptions between processes).
"""

from __future__ import annotations

from typing import Any

from shared.steam._proxies import proxy_label

EXCERPT_LIMIT = 200

# Only the start of a body is collapsed: an HTML error page can be hundreds of kilobytes.
_EXCERPT_SCAN = EXCERPT_LIMIT * 20


def body_excerpt(body: bytes | str, limit: int = EXCERPT_LIMIT) -> str:
    """At most `limit` characters of `body`, whitespace collapsed, for messages and logs."""
    text = body[:_EXCERPT_SCAN].decode("utf-8", "replace") if isinstance(body, bytes) else body
    collapsed = " ".join(text[:_EXCERPT_SCAN].split())
    if len(collapsed) <= limit:
        return collapsed
    return collapsed[: limit - 1] + "…"


def looks_like_html(body: bytes | str) -> bool:
    """Tell whether `body` is an HTML page (starts with `<`, or contains `<html`)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.lstrip("\ufeff \t\r\n")
    return stripped.startswith("<") or "<html" in text.lower()


def _rebuild(cls: type[SteamError], fields: dict[str, Any]) -> SteamError:
    return cls(**fields)


class SteamError(Exception):
    """Raised when a Steam market request fails; the base of this tree."""

    def __init__(self, message: str = "", *, endpoint: str | None = None) -> None:
        self.message = message
        self.endpoint = endpoint
        super().__init__(self._describe())

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "endpoint": self.endpoint}

    def _describe(self) -> str:
        return f"{self._where()}: {self.message or 'request failed'}"

    def _where(self) -> str:
        return f"steam {self.endpoint}" if self.endpoint else "steam"

    def __str__(self) -> str:
        # Computed live: a caller may fill in an attribute (say `status`) after construction.
        return self._describe()

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce calls cls(*args), which keyword-only constructors cannot take.
        return (_rebuild, (type(self), self._fields()))


class RateLimited(SteamError):
    """Raised when Steam answers HTTP 429 to a request made through `proxy`."""

    def __init__(self, *, endpoint: str | None = None, proxy: str | None = None) -> None:
        self.proxy = proxy_label(proxy) if proxy is not None else None
        super().__init__(endpoint=endpoint)

    def _fields(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "proxy": self.proxy}

    def _describe(self) -> str:
        via = f" via proxy {self.proxy}" if self.proxy else ""
        return f"{self._where()}: rate limited (HTTP 429){via}"


class ItemNotFound(SteamError):
    """Raised when Steam says it does not know the item `appid` / `market_hash_name`.

    ``confirmed``: Steam's market search, asked for the exact name, does not list it either
    (after a second proxy said the same, when there is one): not a passing mistake; the item
    does not exist, and asking again will not change that.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        appid: int,
        market_hash_name: str,
        confirmed: bool = False,
    ) -> None:
        self.appid = appid
        self.market_hash_name = market_hash_name
        self.confirmed = confirmed
        super().__init__(endpoint=endpoint)

    def _fields(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "appid": self.appid,
            "market_hash_name": self.market_hash_name,
            "confirmed": self.confirmed,
        }

    def _describe(self) -> str:
        how = " (confirmed: the market search does not list it)" if self.confirmed else ""
        return (
            f"{self._where()}: item not found{how}: "
            f"appid={self.appid} market_hash_name={self.market_hash_name!r}"
        )


class BadResponse(SteamError):
    """Raised when a body is not the payload the endpoint promises (HTML, `null`, wrong types)."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        reason: str,
        excerpt: str = "",
        status: int | None = None,
        is_html: bool = False,
    ) -> None:
        self.reason = reason
        self.excerpt = excerpt
        self.status = status
        self.is_html = is_html
        super().__init__(endpoint=endpoint)

    @classmethod
    def from_body(
        cls,
        body: bytes | str,
        *,
        endpoint: str | None,
        reason: str,
        status: int | None = None,
        is_html: bool | None = None,
    ) -> BadResponse:
        """Build the error from the raw body; `is_html=None` means detect it from the body."""
        return cls(
            endpoint=endpoint,
            reason=reason,
            excerpt=body_excerpt(body),
            status=status,
            is_html=looks_like_html(body) if is_html is None else is_html,
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "reason": self.reason,
            "excerpt": self.excerpt,
            "status": self.status,
            "is_html": self.is_html,
        }

    def _describe(self) -> str:
        notes = [f"HTTP {self.status}"] if self.status is not None else []
        if self.is_html:
            notes.append("HTML")
        context = f" ({', '.join(notes)})" if notes else ""
        return f"{self._where()}: bad response{context}: {self.reason}; body: {self.excerpt!r}"


class WrongCurrency(BadResponse):
    """Raised when Steam priced an answer in another currency than the watch's (the new market
    prices in the caller's region's currency): its amounts cannot be held against the limits."""


class Unavailable(SteamError):
    """Raised when Steam cannot be reached or fails on its side (5xx, timeout, refused)."""

    def __init__(
        self, *, endpoint: str | None = None, status: int | None = None, reason: str
    ) -> None:
        self.status = status
        self.reason = reason
        super().__init__(endpoint=endpoint)

    def _fields(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "status": self.status, "reason": self.reason}

    def _describe(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self._where()}: unavailable{status}: {self.reason}"


class ProxyAuthFailed(SteamError):
    """Raised when a proxy answers HTTP 407: its credentials were refused."""

    def __init__(self, *, endpoint: str | None = None, proxy: str) -> None:
        self.proxy = proxy_label(proxy)
        super().__init__(endpoint=endpoint)

    def _fields(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "proxy": self.proxy}

    def _describe(self) -> str:
        return f"{self._where()}: proxy {self.proxy} refused its credentials (HTTP 407)"
