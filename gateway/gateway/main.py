"""The gateway: the portal's one HTTP entry point.

For every request under `/api/` it gives the request an id, checks the token
(asking the auth service, then caching the answer briefly), signs the
caller's identity for the owning service and forwards the request there.
It keeps no data of its own; `token.revoked` and `user.updated` events drop
cached identities at once, on every gateway replica.
"""

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware

from gateway.config import ROUTES, GatewaySettings, get_settings
from gateway.proxy import Upstreams, read_limited_body
from gateway.tokens import TokenCache, identity_from_auth, parse_authorization
from portal_common.bus import (
    is_connected,
    make_broker,
    start_bus,
    stop_bus,
    subscribe_broadcast,
)
from portal_common.errors import (
    AuthenticationFailed,
    NotFound,
    PortalError,
    ServiceUnavailable,
    install_error_handlers,
)
from portal_common.events import Envelope
from portal_common.identity import ANONYMOUS, IDENTITY_HEADER, Identity, IdentitySigner
from portal_common.internal import internal_headers
from portal_common.logging import RequestLogMiddleware, configure_logging

log = structlog.get_logger("gateway")
SERVICES = sorted(set(ROUTES.values()))


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.signer = IdentitySigner(settings.identity_private_key)
        self.cache = TokenCache(settings.token_cache_seconds)
        self.upstreams = Upstreams(
            {name: settings.service_urls(name) for name in SERVICES},
            timeout=settings.upstream_timeout_seconds,
        )
        self.broker = make_broker(settings.nats_url, name="gateway", on_reconnect=self._reconnected)
        subscribe_broadcast(self.broker, ["token.revoked", "user.updated"], self._on_revocation)
        self._schema: tuple[float, dict[str, Any]] | None = None

    async def start(self) -> None:
        await start_bus(self.broker, replicas=self.settings.nats_replicas)

    async def stop(self) -> None:
        await stop_bus(self.broker)
        await self.upstreams.close()

    async def _reconnected(self) -> None:
        # Revocations sent while we were away were missed: forget everything.
        self.cache.clear()
        log.warning("nats.reconnected", cache="cleared")

    async def _on_revocation(self, envelope: Envelope) -> None:
        for key_hash in envelope.data.get("token_hashes") or []:
            self.cache.drop_token(str(key_hash))
        user_id = envelope.data.get("user_id")
        if isinstance(user_id, int):
            self.cache.drop_user(user_id)
        log.info("identity_cache.dropped", subject=envelope.subject, user_id=user_id)

    async def authenticate(self, request: Request) -> Identity:
        credentials = parse_authorization(request.headers.get("authorization"))
        address = self.client_address(request)
        if credentials is None:
            return dataclasses.replace(ANONYMOUS, address=address)
        key_hash = credentials.key_hash
        cached = self.cache.get(key_hash)
        if cached is not None:
            return dataclasses.replace(cached, address=address)

        answer = await self._ask_auth(credentials.key)
        if answer is None:
            raise AuthenticationFailed("Invalid token.")
        if not answer["is_active"]:
            raise AuthenticationFailed("User inactive or deleted.")
        identity = identity_from_auth(answer, key_hash, address)
        self.cache.put(key_hash, identity)
        return identity

    def client_address(self, request: Request) -> str | None:
        """The caller's address: the peer, or what a trusted proxy says it saw."""
        peer = request.client.host if request.client else None
        trusted = self.settings.trusted_proxy_set()
        if peer not in trusted:
            return peer
        hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in trusted:
                return hop[:64]
        return peer

    async def _ask_auth(self, key: str) -> dict[str, Any] | None:
        for base in self.upstreams.replicas("auth"):
            try:
                response = await self.upstreams.http.post(
                    f"{base}/internal/tokens/verify",
                    json={"token": key},
                    headers=internal_headers(self.settings.internal_token),
                    timeout=5.0,
                )
            except httpx.HTTPError:
                continue
            if response.status_code == 404:
                return None
            if response.status_code == 200:
                return response.json()
        raise ServiceUnavailable("The auth service is not available.")

    async def merged_schema(self) -> dict[str, Any]:
        if self._schema and self._schema[0] > time.monotonic():
            return self._schema[1]
        merged: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": "Monoliet Client Portal API", "version": "1.0.0"},
            "paths": {},
            "components": {"schemas": {}, "securitySchemes": {
                "Token": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "`Token <40-hex key>` from POST /api/auth/token/"},
            }},
            "security": [{"Token": []}],
        }
        for service in SERVICES:
            for base in self.upstreams.replicas(service)[:1]:
                try:
                    document = (await self.upstreams.http.get(f"{base}/openapi.json", timeout=5.0)).json()
                except (httpx.HTTPError, ValueError):
                    log.warning("schema.unavailable", service=service)
                    continue
                merged["paths"].update(document.get("paths", {}))
                merged["components"]["schemas"].update(document.get("components", {}).get("schemas", {}))
        self._schema = (time.monotonic() + 60, merged)
        return merged


def routable_path(path: str) -> bool:
    """False for a (decoded) path a service must never see.

    `.` and `..` segments would be resolved on the way and land on another
    route or service; control characters are not valid in a URL at all.
    """
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in path):
        return False
    return not any(segment in (".", "..") for segment in path.split("/"))


def forwarded_headers(request: Request, identity: Identity, gateway: Gateway) -> dict[str, str]:
    headers = {
        key: value
        for key, value in request.headers.items()
        if key.lower() not in {
            "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host",
            "content-length", "authorization", "x-portal-identity", "x-portal-internal",
            "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-request-id",
        }
    }
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip() or request.url.scheme
    host = request.headers.get("x-forwarded-host", "").split(",")[0].strip() or request.headers.get("host", "")
    headers.update({
        "x-forwarded-proto": proto,
        "x-forwarded-host": host,
        "x-forwarded-for": identity.address or "",
        "x-request-id": request.scope["state"]["request_id"],
        IDENTITY_HEADER: gateway.signer.sign(identity, method=request.method, path=request.url.path),
    })
    return headers


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("gateway", log_format=settings.log_format, level=settings.log_level)
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        log.info("gateway.started", services={name: len(gateway.upstreams.urls[name]) for name in SERVICES})
        yield
        await gateway.stop()

    app = FastAPI(title="Monoliet Client Portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        failing: dict[str, str] = {}
        if not is_connected(gateway.broker):
            failing["nats"] = "disconnected"
        for service in SERVICES:
            urls = gateway.upstreams.urls.get(service) or []
            if not urls:
                continue
            try:
                answer = await gateway.upstreams.http.get(f"{urls[0]}/readyz", timeout=3.0)
                if answer.status_code != 200:
                    failing[service] = f"status {answer.status_code}"
            except httpx.HTTPError as error:
                failing[service] = type(error).__name__
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/api/schema/", include_in_schema=False)
    async def schema() -> JSONResponse:
        return JSONResponse(await gateway.merged_schema())

    @app.get("/api/docs/", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/schema/", title="Monoliet Client Portal API")

    @app.api_route(
        "/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def forward(request: Request, rest: str) -> Response:
        service = ROUTES.get(rest.split("/", 1)[0])
        # The path as decoded by the server: `request.url` would silently drop
        # some control characters (urllib strips tabs and newlines).
        if service is None or not routable_path(request.scope["path"]):
            raise NotFound()
        try:
            identity = await gateway.authenticate(request)
        except PortalError as error:
            log.info("auth.refused", detail=error.detail if error.status_code == 401 else None)
            raise
        body = await read_limited_body(request)
        response = await gateway.upstreams.forward(service, request, body, forwarded_headers(request, identity, gateway))
        if (
            request.method == "POST"
            and request.url.path == "/api/auth/logout/"
            and response.status_code == 200
            and identity.token_hash
        ):
            gateway.cache.drop_token(identity.token_hash)
        return response

    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Content-Disposition"],
            max_age=600,
        )
    app.add_middleware(RequestLogMiddleware)
    return app


app = create_app()
