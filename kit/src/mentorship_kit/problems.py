"""RFC 9457 problem+json errors: a clear message, never a stack trace."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from a use case or route to answer with problem+json."""

    def __init__(self, status: int, title: str, detail: str = "", *, type_: str = "about:blank", **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.extra = extra


class NotFound(Problem):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(404, f"{what} not found", f"no {what} with id {ident!r}")


class Conflict(Problem):
    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(409, "Conflict", detail, **extra)


class Unprocessable(Problem):
    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        errors = [{"field": field, "message": detail}] if field else []
        super().__init__(422, "Invalid request", detail, errors=errors, **extra)


class Forbidden(Problem):
    def __init__(self, detail: str = "you may not do this") -> None:
        super().__init__(403, "Forbidden", detail)


class Unauthorized(Problem):
    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(401, "Unauthorized", detail)


def problem_response(
    status: int,
    title: str,
    detail: str,
    instance: str,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, "instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.title, exc.detail, request.url.path, exc.type, headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
        return problem_response(422, "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(ValidationError)
    async def _model_limits(request: Request, exc: ValidationError) -> JSONResponse:
        # A value that passed the request model but not a model built from it (an event contract's
        # limits, for instance): the caller's input, so 422 rather than 500, and nothing was written.
        structlog.get_logger().warning(
            "value refused by a model", path=request.url.path, model=exc.title, errors=exc.error_count()
        )
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors(include_input=False)
        ]
        detail = f"{exc.title}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
        return problem_response(422, "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code, str(exc.detail), str(exc.detail), request.url.path, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(ConnectionFailure)
    async def _store_unavailable(request: Request, exc: ConnectionFailure) -> JSONResponse:
        # The store is unreachable (restarting, failing over): the request may be retried as is.
        structlog.get_logger().warning("store unavailable", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            503,
            "Service unavailable",
            "the service's store is not reachable; retry shortly",
            request.url.path,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        structlog.get_logger().exception("unhandled error", path=request.url.path)
        return problem_response(500, "Internal error", "the request could not be completed", request.url.path)
