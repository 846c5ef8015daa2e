"""Real HTTP forward proxies on loopback, each seen upstream from its own source address.

Each `LocalProxy` binds its upstream connections to its own loopback address
(127.0.0.2, 127.0.0.3, ...; all of 127/8 is loopback on Linux), so the simulator, which
keys rate limits on the TCP peer address, sees every proxy as a different client, just
as Steam sees different proxy exits. Absolute-form requests (`GET http://host/path`,
what aiohttp sends through an HTTP proxy) are forwarded; CONNECT is refused with 501.

Why not the `proxy.py` package (2.4.10)? Tried first: upstream source binding exists
only through a plugin's `resolve_dns` hook, and its connection helper drops the source
address whenever the upstream host is an IP literal (the simulator is 127.0.0.1), so
every proxy looked like 127.0.0.1; per-instance settings go through a process-global
flag registry; acceptors run in separate processes outside our event loop; and its
407 carries no realm. This aiohttp proxy does what the tests need and nothing more.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType

import aiohttp
from aiohttp import web

from simulator.server import SHUTDOWN_TIMEOUT_S, bind_socket

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_CHUNK = 64 * 1024


class LocalProxy:
    """One forward proxy: listens on `host` (a free port by default), exits from `source_address`.

    Use as `async with LocalProxy(source_address="127.0.0.2") as proxy: proxy.url`.
    With `username` and `password`, requests need matching Basic proxy credentials.
    """

    def __init__(
        self,
        *,
        source_address: str = "127.0.0.2",
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        realm: str = "steamwatch-sim",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.source_address = source_address
        self.username = username
        self.password = password
        self.realm = realm
        self.forwarded = 0
        self.refused = 0
        self._host, self._port = host, port
        self._url: str | None = None
        self._stack: AsyncExitStack | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The proxy's URL without credentials, e.g. "http://127.0.0.1:40123"."""
        if self._url is None:
            raise RuntimeError("the proxy is not running")
        return self._url

    @property
    def url_with_credentials(self) -> str:
        """The URL with `user:password@` when the proxy requires them."""
        if self.username is None or self.password is None:
            return self.url
        return self.url.replace("http://", f"http://{self.username}:{self.password}@", 1)

    async def __aenter__(self) -> LocalProxy:
        stack = AsyncExitStack()
        try:
            connector = aiohttp.TCPConnector(local_addr=(self.source_address, 0), limit=0)
            self._session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=connector,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                )
            )
            sock = bind_socket(self._host, self._port)
            stack.callback(sock.close)  # runs after runner.cleanup: exit callbacks are LIFO
            runner = web.ServerRunner(
                web.Server(self._handle, handler_cancellation=True),
                shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            )
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.SockSite(runner, sock).start()
            host, port = sock.getsockname()[:2]
            self._url = f"http://{host}:{port}"
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._url = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def _authorized(self, request: web.BaseRequest) -> bool:
        if self.username is None or self.password is None:
            return True
        scheme, _, encoded = request.headers.get("Proxy-Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.username}:{self.password}".encode()
        return hmac.compare_digest(given, expected)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if not self._authorized(request):
            self.refused += 1
            return web.Response(
                status=407,
                text="Proxy Authentication Required",
                headers={"Proxy-Authenticate": f'Basic realm="{self.realm}"'},
            )
        if request.method == "CONNECT":
            return web.Response(status=501, text="CONNECT is not supported by this proxy")
        if not request.raw_path.startswith("http://"):
            return web.Response(status=400, text="expected an absolute-form http:// request")
        assert self._session is not None
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        body = await request.read() if request.body_exists else None
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            ) as upstream:
                self.forwarded += 1
                return await self._relay(request, upstream)
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"Bad Gateway: {exc.__class__.__name__}")

    @staticmethod
    async def _relay(
        request: web.BaseRequest, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(_CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response


@asynccontextmanager
async def local_proxies(
    count: int,
    *,
    first_source: str = "127.0.0.2",
    username: str | None = None,
    password: str | None = None,
    host: str = "127.0.0.1",
) -> AsyncIterator[list[LocalProxy]]:
    """Start `count` proxies exiting from consecutive addresses after `first_source`."""
    start = ipaddress.IPv4Address(first_source)
    async with AsyncExitStack() as stack:
        proxies = [
            await stack.enter_async_context(
                LocalProxy(
                    source_address=str(start + i),
                    username=username,
                    password=password,
                    host=host,
                )
            )
            for i in range(count)
        ]
        yield proxies
