"""Request bodies are capped before they are read.

An ASGI middleware (installed by `create_app`) answers 413 problem+json:
- at once when `Content-Length` is above the route's cap, before routing, authentication or
  any read (a 50 MB body without a token costs nothing);
- while streaming (chunked bodies, or a `Content-Length` that lies) as soon as the bytes
  received pass the cap, so a body is never held whole when it is too large.

The cap is `HTTP_MAX_BODY_BYTES` (1 MiB); a service names larger caps for some routes with
`ServiceSettings.body_limits()` (e.g. the profile service's bulk import).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` inside the app; FastAPI's HTTPException, which its body parsing re-raises as is."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")
        self.limit = limit


def too_large_response(path: str, limit: int) -> JSONResponse:
    return problem_response(
        413, "Content too large", f"the request body is larger than {limit} bytes", path, limit=limit
    )


class BodyLimit:
    """ASGI middleware: `default` bytes per request body, `per_route` {(method, path): bytes} above it."""

    def __init__(self, app: ASGIApp, *, default: int, per_route: Mapping[tuple[str, str], int]) -> None:
        self.app = app
        self.default = default
        self.per_route = {(m.upper(), p): n for (m, p), n in per_route.items()}

    def limit_for(self, method: str, path: str) -> int:
        return self.per_route.get((method.upper(), path.rstrip("/") or "/"), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await too_large_response(scope["path"], limit)(scope, receive, send)
            return

        received = 0
        exceeded = False  # once set, whatever the app answers is replaced by the 413
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def answer_too_large() -> None:
            nonlocal started
            started = True
            await too_large_response(scope["path"], limit)(scope, receive, send)

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # Layers between us and the body reader (FastAPI's body parsing, BaseHTTPMiddleware)
                # may turn the exception into another answer (400, 500): ours goes out instead.
                if not started:
                    await answer_too_large()
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            if not started:
                await answer_too_large()
