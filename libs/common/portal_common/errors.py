"""Errors that carry their HTTP status, rendered as Django REST Framework bodies.

Services raise these (or their own subclasses) from anywhere below the router;
`install_error_handlers` renders them as `{"detail": …}` or `{"field": [...]}`
exactly as the portal's existing clients parse them. Anything else that escapes
is a bug: it is logged once here and answered with a plain 500.
"""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("errors")


class PortalError(Exception):
    """Base of every error the API answers on purpose."""

    status_code = 400
    default_detail = "Bad request."

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = self.default_detail if detail is None else detail
        self.headers = headers or {}
        super().__init__(str(self.detail))

    def body(self) -> Any:
        return {"detail": self.detail}


class ValidationFailed(PortalError):
    """400 with field errors: `{"field": ["message", …]}` or `non_field_errors`."""

    status_code = 400

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)

    def body(self) -> Any:
        return self.detail

    @classmethod
    def field(cls, name: str, message: str) -> "ValidationFailed":
        return cls({name: [message]})

    @classmethod
    def non_field(cls, message: str) -> "ValidationFailed":
        return cls({"non_field_errors": [message]})


class ParseError(PortalError):
    status_code = 400
    default_detail = "Malformed request."


class NotAuthenticated(PortalError):
    status_code = 401
    default_detail = "Authentication credentials were not provided."

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Token"})


class AuthenticationFailed(NotAuthenticated):
    default_detail = "Invalid token."


class PermissionDenied(PortalError):
    status_code = 403
    default_detail = "You do not have permission to perform this action."


class NotFound(PortalError):
    status_code = 404
    default_detail = "Not found."


class MethodNotAllowed(PortalError):
    status_code = 405

    def __init__(self, method: str) -> None:
        super().__init__(f'Method "{method}" not allowed.')


class Conflict(PortalError):
    status_code = 409
    default_detail = "The current state does not allow this action."


class PayloadTooLarge(PortalError):
    status_code = 413
    default_detail = "Request body is too large."


class UnsupportedMediaType(PortalError):
    status_code = 415

    def __init__(self, media_type: str) -> None:
        super().__init__(f'Unsupported media type "{media_type}" in request.')


class Throttled(PortalError):
    status_code = 429

    def __init__(self, wait_seconds: int) -> None:
        wait_seconds = max(1, int(wait_seconds))
        unit = "second" if wait_seconds == 1 else "seconds"
        super().__init__(
            f"Request was throttled. Expected available in {wait_seconds} {unit}.",
            headers={"Retry-After": str(wait_seconds)},
        )


class ServiceUnavailable(PortalError):
    status_code = 503
    default_detail = "Service temporarily unavailable, try again later."


def error_response(error: PortalError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def _query_error_body(exc: RequestValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for item in exc.errors():
        name = str(item["loc"][-1]) if item.get("loc") else "non_field_errors"
        errors.setdefault(name, []).append(item.get("msg", "Invalid value."))
    return errors


def install_error_handlers(app: FastAPI) -> None:
    """Render every error the DRF way; never leak a traceback to the caller."""

    @app.exception_handler(PortalError)
    async def portal_error(_: Request, exc: PortalError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_query_error_body(exc), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound())
        if exc.status_code == 405:
            response = error_response(MethodNotAllowed(request.method))
            if exc.headers and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        detail = exc.detail if isinstance(exc.detail, str) else "Error."
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    app.add_middleware(UnexpectedErrorMiddleware)


class UnexpectedErrorMiddleware:
    """Answer any exception that escaped the handlers, and keep the connection.

    Starlette's own last-resort handler re-raises after answering, which
    makes the server drop the keep-alive connection; the gateway would then
    fail the next request it sends on it. Here the error is logged once and
    answered (503 when the database is out of reach, else 500), and nothing
    propagates.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                log.exception("response.failed", error_type=type(exc).__name__)
                return
            if is_database_unavailable(exc):
                log.warning("database.unavailable", error_type=type(exc).__name__)
                response = error_response(ServiceUnavailable())
            else:
                log.exception("request.failed", error_type=type(exc).__name__)
                response = JSONResponse({"detail": "A server error occurred."}, status_code=500)
            await response(scope, receive, send)


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be reached or took no more clients.

    That is a passing outage (503, try again), not a bug in the request.
    """
    import asyncpg
    from sqlalchemy.exc import (
        DBAPIError,
        InterfaceError,
        OperationalError,
        TimeoutError,
    )

    if isinstance(exc, OperationalError | InterfaceError | TimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return isinstance(
            cause,
            asyncpg.TooManyConnectionsError
            | asyncpg.CannotConnectNowError
            | asyncpg.ConnectionDoesNotExistError
            | asyncpg.InterfaceError
            | OSError,
        ) or "too many clients" in str(exc)
    return False
