"""``/v1/status`` (services, queues, lag; an owner's own task counts) and the health paths."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from services.api.deps import PrincipalDep, StateDep
from services.api.problems import responses
from services.api.schemas import Health
from shared.bus.status import read_snapshot
from shared.observability import probe_all, render_metrics
from shared.steam import ProxyPool

router = APIRouter(tags=["status"])
SERVICE = "api"
PUBLIC: dict[str, Any] = {"security": []}  # no token: probes and Prometheus


@router.get("/v1/status", responses=responses(401, 429))
async def status(who: PrincipalDep, state: StateDep) -> dict[str, Any]:
    """Services alive, queues, the schedule's lag; task counts: an owner's own, an admin's all;
    for an admin also each proxy's budget (requests in the window, cool-downs) per endpoint."""
    snap = await read_snapshot(
        db=state.db,
        client=state.redis,
        beat_client=state.beat_client,
        owner=None if who.admin else who.owner,
    )
    report = snap.to_dict()
    if who.admin:
        pool = ProxyPool.from_urls(
            state.redis,
            state.settings.proxies,
            budgets=state.settings.budgets,
            cooldowns=state.settings.cooldowns,
            slack=state.settings.budget_slack,
        )
        report["budget"] = {endpoint: await pool.state(endpoint) for endpoint in pool.budgets}
    return report


@router.get("/healthz", openapi_extra=PUBLIC, response_model=Health, tags=["health"])
async def healthz() -> dict[str, Any]:
    """Alive: the event loop answers."""
    return {"status": "ok", "service": SERVICE}


@router.get(
    "/readyz",
    openapi_extra=PUBLIC,
    response_model=Health,
    tags=["health"],
    responses={503: {"model": Health}},
)
async def readyz(request: Request, state: StateDep) -> Any:
    """Ready: PostgreSQL and Redis answer."""

    async def database() -> None:
        async with state.db.session_scope() as s:
            await s.execute(text("SELECT 1"))

    async def redis() -> None:
        await state.redis.ping()

    checks = await probe_all({"database": database, "redis": redis}, within=2.0)
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ok else "not ready", "service": SERVICE, "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", openapi_extra=PUBLIC, tags=["health"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (every worker's, when there are several)."""
    folder = request.app.state.multiprocess_dir
    return Response(render_metrics(multiprocess_dir=folder), media_type=CONTENT_TYPE_LATEST)
