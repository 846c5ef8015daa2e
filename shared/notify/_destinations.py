"""Where a notification goes: an Apprise URL, read, masked and checked to be an outside service.

The URL holds the service's token (a Telegram bot token, a Discord webhook secret), so what
leaves this module for display is only the masked form Apprise itself prints. A destination
must be an outside service: a URL whose host is (or resolves to) a loopback, private, link-local
or otherwise non-public address, the cluster's own stores or a cloud's metadata endpoint, is
refused unless the operator allows it, and so is a scheme that only acts on the local machine.
It is checked when the subscription is made and again before each send, after resolving the
name, so a name that later resolves inside is refused too.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import apprise

#: Schemes that act on the notifier's own machine (desktop popups, the local syslog).
LOCAL_SCHEMES = frozenset({"dbus", "kde", "qt", "glib", "gnome", "macosx", "windows", "syslog"})
#: Every scheme Apprise knows, for "did you mean" and the error listing a few.
_EXAMPLES = "tgram://, discord://, json://, jsons://, mailto://, ntfy://, slack://"


class DestinationError(ValueError):
    """Raised when a destination URL cannot be used; says why without repeating the URL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DestinationRefused(DestinationError):
    """Raised when a destination reaches inside the network or the notifier's own machine."""


class DestinationUnresolved(DestinationError):
    """Raised when a destination's host name does not resolve (now: it may later)."""


@dataclass(frozen=True)
class Destination:
    """A readable Apprise URL: the secret itself, its masked form, and what it reaches."""

    url: str = field(repr=False)
    scheme: str
    service: str  # Apprise's name for it: "Telegram", "Discord", "JSON", "E-Mail"
    masked: str
    url_hash: str  # SHA-256 of the URL: keys duplicates and rate limits without showing it
    account_hash: str  # SHA-256 of scheme and authority (a bot token): the per-account limit
    hosts: tuple[str, ...]  # the network hosts the URL names (empty: the service's own cloud)

    def __str__(self) -> str:
        return self.masked


def _scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise DestinationError(f"is not an Apprise URL (scheme://...); for example {_EXAMPLES}")
    return scheme.lower()


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def parse_destination(url: str) -> Destination:
    """Read an Apprise URL; :class:`DestinationError` says what is wrong, never the URL."""
    url = url.strip()
    if not url:
        raise DestinationError(f"is empty; give an Apprise URL such as {_EXAMPLES}")
    if any(c.isspace() for c in url):
        raise DestinationError("contains whitespace")
    scheme = _scheme_of(url)
    if scheme in LOCAL_SCHEMES:
        raise DestinationRefused(
            f"uses {scheme}://, which notifies the notifier's own machine, not an outside service"
        )
    known = set(apprise.manager_plugins.NotificationManager().schemas())
    if scheme not in known:
        raise DestinationError(
            f"uses scheme {scheme!r}, which Apprise does not know; for example {_EXAMPLES}"
        )
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise DestinationError(
            f"is not a valid {scheme}:// URL (Apprise cannot read its parts; see "
            f"https://github.com/caronc/apprise/wiki for the {scheme}:// form)"
        )
    hosts: list[str] = []
    templates: tuple[str, ...] = tuple(plugin.templates)
    if plugin.host and any("{host}" in t for t in templates):
        hosts.append(str(plugin.host))
    smtp_host = getattr(plugin, "smtp_host", None)
    if smtp_host and smtp_host not in hosts:
        hosts.append(str(smtp_host))
    return Destination(
        url=url,
        scheme=scheme,
        service=str(plugin.service_name),
        masked=_masked(plugin),
        url_hash=url_hash(url),
        account_hash=url_hash(f"{scheme}://{url.split('://', 1)[1].split('/', 1)[0]}"),
        hosts=tuple(hosts),
    )


def _masked(plugin: apprise.plugins.NotifyBase) -> str:
    """Apprise's privacy form, without the query of defaults it appends."""
    shown = str(plugin.url(privacy=True))
    return shown.split("?", 1)[0]


def _refusal(address: str) -> str | None:
    """Why an address is not an outside service's, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return "not a public"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata lives here)"
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "not a public"
    return None


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_addresses(host: str, addresses: list[str]) -> None:
    """Refuse the destination when any address ``host`` resolved to is not public."""
    for address in addresses:
        why = _refusal(address)
        if why is not None:
            shown = host if _literal(host) else f"{host} ({address})"
            raise DestinationRefused(
                f"reaches {shown}, a {why} address inside the network; destinations must be "
                "outside services (an operator can allow it: STEAMWATCH_NOTIFY_ALLOW_PRIVATE=true)"
            )


def _resolve_sync(host: str) -> list[str]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise DestinationUnresolved(
            f"names host {host!r}, which does not resolve ({e.args[-1]})"
        ) from None
    return sorted({str(info[4][0]) for info in infos})


def check_outside(destination: Destination, *, allow_private: bool) -> None:
    """Resolve the destination's hosts (blocking) and refuse one that reaches inside."""
    if allow_private:
        return
    for host in destination.hosts:
        check_addresses(host, _resolve_sync(host))


async def check_outside_async(destination: Destination, *, allow_private: bool) -> None:
    """:func:`check_outside` for the event loop: the resolution runs off the loop."""
    if allow_private:
        return
    for host in destination.hosts:
        addresses = await asyncio.to_thread(_resolve_sync, host)
        check_addresses(host, addresses)


def host_of(url: str) -> str:
    """The host part of a URL for messages that must not show the rest (may be empty)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
