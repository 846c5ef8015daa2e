"""Serving the simulator on a real socket: `run_simulator` for tests and in-process use.

The socket is bound before the runner starts, so port 0 gives a free port whose number
is known at once; handlers are cancelled when their client goes away, and held requests
are woken on shutdown, so stopping never waits on a `timeout` fault.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from simulator.app import create_app
from simulator.clock import Clock, system_clock
from simulator.config import SimulatorConfig

SHUTDOWN_TIMEOUT_S = 2.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def serve_app(app: web.Application, *, host: str, port: int) -> AsyncIterator[str]:
    """Serve any aiohttp app on (host, port) and yield its base URL; stop on exit."""
    runner = web.AppRunner(
        app, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None
    )
    await runner.setup()
    sock = bind_socket(host, port)
    try:
        await web.SockSite(runner, sock).start()
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()
        sock.close()


@asynccontextmanager
async def run_simulator(
    *,
    config: SimulatorConfig | None = None,
    clock: Clock = system_clock,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[str]:
    """Start a simulator on a free loopback port and yield its base URL, e.g. for a test."""
    app = create_app(config=config or SimulatorConfig(), clock=clock)
    async with serve_app(app, host=host, port=port) as url:
        yield url
