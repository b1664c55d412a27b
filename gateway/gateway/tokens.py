"""Turning an `Authorization` header into an identity, the way DRF does.

Parsing follows Django REST Framework's TokenAuthentication byte for byte
(see the cases C05): the header is split on ASCII whitespace only, the
keyword is case-insensitive (`Token`, and `Bearer` as CONTRACT.md adds), a
header with another keyword is no credentials at all, and a key that is not
valid UTF-8 is "invalid characters".

Verified identities are cached for a short time, keyed by the SHA-256 of the
key (the key itself is never kept or logged), and dropped the moment a
`token.revoked` or `user.updated` event names them.
"""

import hashlib
import time
from dataclasses import dataclass
from uuid import UUID

from portal_common.errors import AuthenticationFailed
from portal_common.identity import Identity

KEYWORDS = (b"token", b"bearer")


@dataclass(frozen=True)
class Credentials:
    key: str

    @property
    def key_hash(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()


def parse_authorization(header: str | None) -> Credentials | None:
    """The key in the header; None for no (or another scheme's) credentials."""
    if not header:
        return None
    parts = header.encode("latin-1").split()
    if not parts or parts[0].lower() not in KEYWORDS:
        return None
    if len(parts) == 1:
        raise AuthenticationFailed("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
    try:
        key = parts[1].decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationFailed(
            "Invalid token header. Token string should not contain invalid characters."
        ) from None
    return Credentials(key)


class TokenCache:
    """Identities by token hash, for a few seconds; dropped on revocation events."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Identity]] = {}
        self._by_user: dict[int, set[str]] = {}

    def get(self, key_hash: str) -> Identity | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires, identity = entry
        if expires < time.monotonic():
            self.drop_token(key_hash)
            return None
        return identity

    def put(self, key_hash: str, identity: Identity) -> None:
        if len(self._entries) > 100_000:
            self.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, identity)
        if identity.user_id is not None:
            self._by_user.setdefault(identity.user_id, set()).add(key_hash)

    def drop_token(self, key_hash: str) -> None:
        entry = self._entries.pop(key_hash, None)
        if entry is not None and entry[1].user_id is not None:
            self._by_user.get(entry[1].user_id, set()).discard(key_hash)

    def drop_user(self, user_id: int) -> None:
        for key_hash in self._by_user.pop(user_id, set()):
            self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self._entries.clear()
        self._by_user.clear()


def identity_from_auth(answer: dict, key_hash: str, address: str | None) -> Identity:
    client = answer.get("client_id")
    return Identity(
        user_id=int(answer["user_id"]),
        is_staff=bool(answer["is_staff"]),
        client_id=UUID(client) if client else None,
        token_hash=key_hash,
        address=address,
    )
