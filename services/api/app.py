"""The API application: resources under ``/v1``, the OpenAPI document, health and metrics.

:func:`create_app` builds it from settings passed down by the composition root
(:mod:`services.api.main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api import metrics
from services.api.problems import add_schemas, install, problem_response
from services.api.routes import events, history, subscriptions, system, watches
from services.api.state import State
from shared.config import Settings
from shared.db import Database, create_sessionmaker
from shared.notify import SecretBox, parse_keys
from shared.runtime import Heart, async_client, beat_forever, sync_client

log = structlog.get_logger("steamwatch.api")
SERVICE = "api"
RATE_PREFIX = "steamwatch:api-rate"


def limits_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


class Guard:
    """Pure ASGI: a request id, the body size limit (413 before a byte too many is read), and
    the request metrics by route template (the route is known only once routing ran)."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = {"code": 500}
        method = scope["method"]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await self._too_large(scope, receive, send_with_id)
                return
            if declared is None and method in ("POST", "PUT", "PATCH"):
                # No length given (chunked): read it here, up to the limit, then hand it on.
                # (An error raised while FastAPI reads a body becomes its own 400.)
                buffered = await self._read_capped(receive)
                if buffered is None:
                    await self._too_large(scope, receive, send_with_id)
                    return
                receive = _replay(buffered, receive)
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "unmatched"
            metrics.REQUESTS.labels(template, method, str(status["code"])).inc()
            metrics.LATENCY.labels(template, method).observe(time.perf_counter() - started)

    async def _read_capped(self, receive: Receive) -> list[Message] | None:
        """The body's messages, or None once more than ``max_body`` bytes arrived."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                return messages

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Request(scope),
            413,
            f"the request body is larger than {self.max_body} bytes (STEAMWATCH_API_MAX_BODY)",
            [("body", f"at most {self.max_body} bytes")],
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def create_app(
    settings: Settings,
    *,
    database_url: str,
    redis_url: str,
    multiprocess_dir: str | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.create(
            url=database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            application_name="steamwatch-api",
        )
        client = async_client(redis_url)
        beat_client = sync_client(redis_url)
        storage = RedisStorage(
            limits_uri(redis_url), implementation="redispy", key_prefix=RATE_PREFIX
        )
        box = None
        if settings.secret_key is not None:
            box = SecretBox(parse_keys(settings.secret_key.get_secret_value()))
        app.state.steamwatch = State(
            settings=settings,
            db=db,
            redis=client,
            beat_client=beat_client,
            limiter=SlidingWindowCounterRateLimiter(storage),
            box=box,
            reads=create_sessionmaker(db.engine.execution_options(isolation_level="AUTOCOMMIT")),
        )
        heart = Heart(service=SERVICE)
        heart.state = "ready"  # connections open on first use; /readyz tells when they fail
        beating = asyncio.create_task(beat_forever(heart, client))
        # What start-up made lives as long as the process: out of the collector's way, so its
        # passes over each request's garbage stay short (fewer, shorter pauses at p99).
        gc.collect()
        gc.freeze()
        log.info("api ready", pid=os.getpid())
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(Exception):
                await heart.clear_async(client)
            await client.aclose()
            beat_client.close()
            await db.dispose()

    app = FastAPI(
        title="steamwatch",
        version="1",
        summary="Watches, subscriptions, events and price history of Steam Community Market items.",
        description=(
            "Every /v1 path needs `Authorization: Bearer <token>` (`steamwatch tokens create`)."
            " A token acts for one owner (an admin token for all): another owner's watch or"
            " subscription answers 404, as one that does not exist. Errors are RFC 9457"
            " problem details naming the field at fault."
        ),
        lifespan=lifespan,
    )
    app.state.multiprocess_dir = multiprocess_dir
    install(app)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", path=request.url.path, error=type(exc).__name__)
        return problem_response(request, 500, "the API failed on this request; it is logged")

    for module in (watches, history, subscriptions, events, system):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            document["security"] = [{"bearer": []}]
            # The page size's bound is a setting (STEAMWATCH_API_PAGE_MAX): say the real one.
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("name") == "limit":
                            parameter["schema"]["maximum"] = settings.api_page_max
            app.openapi_schema = add_schemas(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    metrics.seed()
    return Guard(app, max_body=settings.api_max_body)  # type: ignore[return-value]
