"""Passwords and tokens.

Passwords are hashed with argon2id in a worker thread, so a login never
blocks the event loop. Tokens are 40 hex characters (160 random bits), as the
existing clients expect; only their SHA-256 is stored.
"""

import asyncio
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def new_token() -> str:
    return secrets.token_hex(20)


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
