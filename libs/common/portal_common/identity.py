"""The caller's identity, as the gateway vouches for it.

The gateway checks the token, then forwards who the caller is in the
`X-Portal-Identity` header: a small JSON claim set and an Ed25519 signature
over it. Only the gateway holds the private key; services hold the public key
and trust nothing else. The claims name the HTTP method and path and expire
after a few seconds, so a captured assertion cannot be replayed against
another route or later. Anonymous callers get an assertion too (with no user),
which is how a service tells "came through the gateway" from "came around it".
"""

import base64
import json
import time
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from fastapi import Depends, Request

from portal_common.errors import NotAuthenticated, PermissionDenied

IDENTITY_HEADER = "x-portal-identity"
ASSERTION_LIFETIME_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a user (staff or a client's user) or nobody."""

    user_id: int | None
    is_staff: bool = False
    client_id: UUID | None = None
    # The SHA-256 of the token the caller used (logout revokes exactly it)
    # and the caller's network address (login throttling), both as the
    # gateway saw them.
    token_hash: str | None = None
    address: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Identity(user_id=None)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) pair, each base64 of the raw 32 bytes."""
    private = Ed25519PrivateKey.generate()
    private_raw = private.private_bytes_raw()
    public_raw = private.public_key().public_bytes_raw()
    return base64.b64encode(private_raw).decode(), base64.b64encode(public_raw).decode()


class IdentitySigner:
    """Held by the gateway only."""

    def __init__(self, private_key_b64: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64))

    def sign(self, identity: Identity, *, method: str, path: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "sub": identity.user_id,
            "staff": identity.is_staff,
            "client": str(identity.client_id) if identity.client_id else None,
            "tok": identity.token_hash,
            "ip": identity.address,
            "m": method.upper(),
            "p": path,
            "exp": issued + ASSERTION_LIFETIME_SECONDS,
        }
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64encode(self._key.sign(payload.encode()))
        return f"{payload}.{signature}"


class IdentityVerifier:
    """Held by every service: checks the gateway's signature and the claims."""

    def __init__(self, public_key_b64: str) -> None:
        self._key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))

    def verify(self, assertion: str, *, method: str, path: str, now: float | None = None) -> Identity | None:
        """The identity in `assertion`, or None when it is forged, altered, stale or misdirected."""
        try:
            payload, signature = assertion.split(".")
            self._key.verify(_b64decode(signature), payload.encode())
            claims = json.loads(_b64decode(payload))
        except (ValueError, InvalidSignature, UnicodeDecodeError):
            return None
        if claims.get("m") != method.upper() or claims.get("p") != path:
            return None
        if claims.get("exp", 0) < (now if now is not None else time.time()):
            return None
        client = claims.get("client")
        return Identity(
            user_id=claims.get("sub"),
            is_staff=bool(claims.get("staff")),
            client_id=UUID(client) if client else None,
            token_hash=claims.get("tok"),
            address=claims.get("ip"),
        )


class GatewayOnlyMiddleware:
    """Refuse `/api/` requests that did not come through the gateway.

    Health checks, the OpenAPI document and `/internal/` (which has its own
    shared-secret check) stay reachable without an assertion.
    """

    def __init__(self, app, verifier: IdentityVerifier) -> None:
        self.app = app
        self.verifier = verifier
        self.log = structlog.get_logger("identity")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        assertion = headers.get(IDENTITY_HEADER.encode(), b"").decode("latin-1")
        identity = (
            self.verifier.verify(assertion, method=scope["method"], path=scope["path"])
            if assertion
            else None
        )
        if identity is None:
            self.log.warning("identity.refused", reason="missing" if not assertion else "invalid")
            body = b'{"detail":"Requests must come through the portal gateway."}'
            await send({
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            })
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["identity"] = identity
        if identity.user_id is not None:
            structlog.contextvars.bind_contextvars(
                user_id=identity.user_id,
                client_id=str(identity.client_id) if identity.client_id else None,
            )
        await self.app(scope, receive, send)


async def current_identity(request: Request) -> Identity:
    return request.scope.get("state", {}).get("identity", ANONYMOUS)


async def authenticated(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    """Dependency: any logged-in user; 401 otherwise."""
    if not identity.is_authenticated:
        raise NotAuthenticated()
    return identity


async def staff(identity: Annotated[Identity, Depends(authenticated)]) -> Identity:
    """Dependency: staff only; 403 for anyone else, before any look-up."""
    if not identity.is_staff:
        raise PermissionDenied()
    return identity


CurrentUser = Annotated[Identity, Depends(authenticated)]
StaffUser = Annotated[Identity, Depends(staff)]


def can_see_client(identity: Identity, client_id: UUID | None) -> bool:
    """Staff see every client's data; a client's user sees only their own."""
    return identity.is_staff or (client_id is not None and identity.client_id == client_id)
