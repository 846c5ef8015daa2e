"""The local forward proxies: credentials, pass-through, and a distinct source per proxy."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import aiohttp
import pytest

from simulator import LocalProxy, local_proxies
from tests.fixtures.simulator import KEY, QUERY_ACTION, REDLINE


def _overview(sim: str) -> str:
    return f"{sim}/market/priceoverview/?appid=440&currency=1&market_hash_name={quote(KEY)}"


async def test_each_proxy_is_a_different_client_to_the_simulator(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with local_proxies(3, first_source="127.0.0.5") as proxies:
        for proxy in proxies:
            async with session.get(_overview(sim), proxy=proxy.url) as response:
                assert response.status == 200
    async with session.get(f"{sim}/__sim/stats") as response:
        clients = set((await response.json())["clients"])
    assert clients == {"127.0.0.5", "127.0.0.6", "127.0.0.7"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        aiohttp.encode_basic_auth("user", "wrong"),
        aiohttp.encode_basic_auth("other", "secret"),
        "Basic !!not-base64!!",
        "Bearer user:secret",
    ],
    ids=["missing", "wrong-password", "wrong-user", "garbled", "wrong-scheme"],
)
async def test_bad_credentials_get_407_with_a_realm(
    sim: str, session: aiohttp.ClientSession, authorization: str | None
) -> None:
    headers = {"Proxy-Authorization": authorization} if authorization else None
    async with LocalProxy(username="user", password="secret") as proxy:
        async with session.get(_overview(sim), proxy=proxy.url, proxy_headers=headers) as r:
            assert r.status == 407
            assert r.headers["Proxy-Authenticate"] == 'Basic realm="steamwatch-sim"'
        assert (proxy.refused, proxy.forwarded) == (1, 0)


async def test_good_credentials_pass_through_unchanged(
    sim: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(_overview(sim)) as response:
        direct = await response.read()
    async with LocalProxy(username="user", password="secret") as proxy:
        assert proxy.url_with_credentials.startswith("http://user:secret@127.0.0.1:")
        async with session.get(_overview(sim), proxy=proxy.url_with_credentials) as response:
            assert response.status == 200
            assert response.headers["Server"] == "nginx"
            assert await response.read() == direct
        assert proxy.forwarded == 1


async def test_status_codes_headers_and_cookies_pass_both_ways(
    sim: str, session: aiohttp.ClientSession
) -> None:
    url = f"{sim}/market/orderbook?q=Load&qp={quote(json.dumps([730, REDLINE, 1]))}"
    async with LocalProxy() as proxy:
        async with session.get(url, proxy=proxy.url, headers=QUERY_ACTION) as response:
            etag = response.headers["ETag"]
        conditional = {**QUERY_ACTION, "If-None-Match": etag}
        async with session.get(url, proxy=proxy.url, headers=conditional) as response:
            assert (response.status, await response.read()) == (304, b"")
        render = f"{sim}/market/listings/440/{quote(KEY)}/render/?count=1&currency=1&format=json"
        async with session.get(render, proxy=proxy.url, allow_redirects=False) as response:
            assert response.status == 302
        cookies = {"bMarketOptOut": "1"}
        async with session.get(render, proxy=proxy.url, cookies=cookies) as response:
            assert (await response.json())["success"] is True


async def test_connect_and_origin_form_requests_are_refused() -> None:
    async with LocalProxy() as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        for request_line, status in (
            (b"CONNECT example.invalid:443 HTTP/1.1\r\nHost: example.invalid:443\r\n\r\n", b"501"),
            (b"GET /market/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"400"),
        ):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request_line)
            await writer.drain()
            first_line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            assert first_line.split()[1] == status


async def test_an_unreachable_upstream_is_a_502(session: aiohttp.ClientSession) -> None:
    async with LocalProxy() as proxy:
        # Port 9 (discard) on loopback: nothing listens there, the connection is refused.
        async with session.get("http://127.0.0.1:9/", proxy=proxy.url) as response:
            assert response.status == 502


def test_credentials_come_in_pairs() -> None:
    with pytest.raises(ValueError):
        LocalProxy(username="user")


def test_url_is_unavailable_before_start() -> None:
    with pytest.raises(RuntimeError):
        _ = LocalProxy().url
