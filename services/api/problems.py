"""Errors as RFC 9457 problem details (``application/problem+json``), each naming the field.

Every refusal the API makes goes through :class:`Problem`; FastAPI's own validation errors and
Starlette's HTTP errors are rewritten into the same shape, so a client reads one format.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


class FieldError(BaseModel):
    field: str = Field(description="The field as the request spelt it (a body or query name).")
    reason: str


class ProblemBody(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class Problem(Exception):
    """Raise to answer with a problem; ``errors`` name the fields at fault."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    @classmethod
    def invalid(cls, field: str, reason: str) -> Problem:
        return cls(422, f"{field}: {reason}", errors=[(field, reason)])


def problem_response(
    request: Request,
    status: int,
    detail: str,
    errors: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "errors": [{"field": f, "reason": r} for f, r in (errors or [])],
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def _field_of(loc: tuple[Any, ...]) -> str:
    # ("body", "appid") -> "appid"; ("query", "limit") -> "limit"; ("body",) -> "body"
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            field = _field_of(tuple(err.get("loc", ())))
            reason = str(err.get("msg", "is invalid"))
            if err.get("type") == "extra_forbidden":
                reason = "is not a field of this request"
            elif err.get("type") == "missing":
                reason = "is required"
            errors.append((field, reason))
        detail = "; ".join(f"{f}: {r}" for f, r in errors) or "the request is invalid"
        return problem_response(request, 422, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such path: {request.url.path}"
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; name every method.
            allowed = _allowed(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        return problem_response(request, exc.status_code, detail, headers=headers or None)


def _allowed(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


_REF = {"$ref": "#/components/schemas/ProblemBody"}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Problems a route may answer, for the OpenAPI document."""
    return {
        status: {
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_TYPE: {"schema": _REF}},
        }
        for status in statuses
    }


def add_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put ProblemBody (and FieldError) in the document's components, where ``responses`` point."""
    schema = ProblemBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ProblemBody"] = schema
    return openapi
