"""Building a service's FastAPI application the same way everywhere.

`create_service_app` wires what every service needs: DRF-style error bodies,
request logging with the request id, the gateway-only guard on `/api/`,
`/healthz` and `/readyz`, and start-up/shut-down of the service's own
background parts (database engine, NATS broker, outbox relay, consumers).
"""

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from portal_common.errors import install_error_handlers
from portal_common.identity import GatewayOnlyMiddleware, IdentityVerifier
from portal_common.logging import RequestLogMiddleware

ReadinessCheck = Callable[[], Awaitable[None]]

log = structlog.get_logger("app")


def create_service_app(
    *,
    name: str,
    title: str,
    routers: Sequence[APIRouter],
    identity_public_key: str | None,
    lifespan: Callable[[FastAPI], Any] | None = None,
    readiness_checks: dict[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """A FastAPI app for one service.

    `identity_public_key` is the gateway's verifying key; with None the
    gateway-only guard is left out (only the gateway itself does that).
    `readiness_checks` are awaited by `/readyz`; each raises when its
    dependency is unreachable.
    """
    checks = readiness_checks or {}
    if identity_public_key == "":
        # Without the gateway's key no request could ever be trusted.
        print(
            "configuration error: PORTAL_IDENTITY_PUBLIC_KEY: must be set "
            "(base64 of the gateway's Ed25519 public key)",
            file=sys.stderr,
        )
        raise SystemExit(2)

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        log.info("service.starting", service=name)
        if lifespan is None:
            yield
        else:
            async with lifespan(app):
                yield
        log.info("service.stopped", service=name)

    app = FastAPI(title=title, lifespan=run, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        failures: dict[str, str] = {}
        for check_name, check in checks.items():
            try:
                await check()
            except Exception as error:  # any failure means "not ready", with its reason
                failures[check_name] = type(error).__name__
        if failures:
            return JSONResponse({"status": "unavailable", "failing": failures}, status_code=503)
        return JSONResponse({"status": "ok"})

    if identity_public_key is not None:
        app.add_middleware(GatewayOnlyMiddleware, verifier=IdentityVerifier(identity_public_key))
    app.add_middleware(RequestLogMiddleware)
    return app
