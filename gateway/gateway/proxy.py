"""Forwarding a request to the service that owns its path.

The body is read (at most 1 MiB) before anything is forwarded; the answer is
streamed back as it arrives, so a large download is never held in memory.
An unreachable service is 503 and a slow one 504, each with a `detail`;
every other upstream answer passes through unchanged.
"""

import itertools

import httpx
import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from portal_common.errors import PayloadTooLarge, PortalError, ServiceUnavailable
from portal_common.http import MAX_BODY_BYTES

log = structlog.get_logger("gateway.proxy")

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway alone sets.
DROPPED_REQUEST_HEADERS = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "authorization",
    "x-portal-identity", "x-portal-internal", "x-forwarded-for", "x-forwarded-host",
    "x-forwarded-proto", "x-request-id",
}
# `date` and `server` are set again by the gateway's own server.
DROPPED_RESPONSE_HEADERS = {
    "connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "x-request-id",
    "date", "server",
}
# Safe to send again when a kept-alive connection turns out to be closed.
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


class GatewayTimeout(PortalError):
    status_code = 504
    default_detail = "The service took too long to answer."


async def read_limited_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
    return bytes(body)


class Upstreams:
    """The replicas of each service, taken in turn; a refused connection tries the next."""

    def __init__(self, urls: dict[str, list[str]], *, timeout: float) -> None:
        self.urls = urls
        self._turns = {name: itertools.cycle(range(len(found))) for name, found in urls.items() if found}
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=3.0),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
        )

    def replicas(self, service: str) -> list[str]:
        found = self.urls.get(service) or []
        if not found:
            return []
        start = next(self._turns[service])
        return found[start:] + found[:start]

    async def close(self) -> None:
        await self.http.aclose()

    async def _send(self, upstream_request: httpx.Request) -> httpx.Response:
        try:
            return await self.http.send(upstream_request, stream=True)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # The service closed a kept-alive connection as we reused it;
            # a request that is safe to repeat gets one fresh attempt.
            if upstream_request.method not in IDEMPOTENT_METHODS:
                raise
            log.warning("upstream.retried", method=upstream_request.method)
            return await self.http.send(upstream_request, stream=True)

    async def forward(
        self, service: str, request: Request, body: bytes, headers: dict[str, str]
    ) -> StreamingResponse:
        replicas = self.replicas(service)
        if not replicas:
            raise ServiceUnavailable(f"The {service} service is not available.")
        for base in replicas:
            query = f"?{request.url.query}" if request.url.query else ""
            upstream_request = self.http.build_request(
                request.method, base + request.url.path + query, headers=headers, content=body
            )
            try:
                upstream = await self._send(upstream_request)
            except httpx.ConnectError:
                log.warning("upstream.unreachable", service=service, upstream=base)
                continue
            except httpx.TimeoutException:
                log.warning("upstream.timeout", service=service, upstream=base)
                raise GatewayTimeout() from None
            except httpx.HTTPError as error:
                log.warning("upstream.failed", service=service, upstream=base, error=type(error).__name__)
                continue
            response_headers = {
                key: value
                for key, value in upstream.headers.multi_items()
                if key.lower() not in DROPPED_RESPONSE_HEADERS
            }
            return StreamingResponse(
                upstream.aiter_raw(),
                status_code=upstream.status_code,
                headers=response_headers,
                background=BackgroundTask(upstream.aclose),
            )
        raise ServiceUnavailable(f"The {service} service is not available.")
