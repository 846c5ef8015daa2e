"""The process's one HTTP session to Steam, made on the loop that uses it and closed with it."""

from __future__ import annotations

import asyncio

import aiohttp

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"


def create_http_session(*, timeout: float, limit: int = 200) -> aiohttp.ClientSession:
    """The process's one HTTP session; call on the event loop that will use it.

    ``limit`` caps its open connections: a fetcher passes the checks it may run at once (its
    threads times the claims of a message), since each check has one request out at a time.
    """
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0)),
        connector=aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300),
        # Cookies are set per request (bMarketOptOut); nothing should stick between proxies.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json, text/javascript, */*"},
    )


async def close_quietly(http: aiohttp.ClientSession) -> None:
    await http.close()
    # Lets the connector's transports finish closing before the loop goes away.
    await asyncio.sleep(0)
