"""Credential encryption at rest: Fernet tokens under rotating keys.

How it works. `PORTAL_ENCRYPTION_KEYS` holds one or more Fernet keys,
comma-separated, newest first. They form a `MultiFernet`: the newest key
encrypts, and every key is tried in turn to decrypt, so a new key can be put
in front while the stored tokens are still under older ones. The rotation
command (`python -m clients.rotate_credentials`) then re-encrypts every
stored credential under the newest key, after which the old key can go.

What a credential holds is a JSON object (`{"api_key": "…"}`); it is
serialised, encrypted and stored as the token's text. The plaintext exists
only inside the calls below: it is never returned, logged or published.

What this does not do: it does not hide which credentials exist or when
they were written (a Fernet token carries its creation time in clear), and
a token made with a key that is no longer configured cannot be read at all;
such a row is reported with status `invalid` instead of failing the request.
"""

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class EncryptionKeyError(ValueError):
    """The configured keys are not usable; the message names the problem only."""


def parse_keys(text: str) -> list[Fernet]:
    """The Fernet keys of a comma-separated list, newest first.

    Raises EncryptionKeyError with cryptography's own message (never the key)
    for a malformed key, or when the list is empty.
    """
    raw_keys = [part.strip() for part in text.split(",") if part.strip()]
    if not raw_keys:
        raise EncryptionKeyError("at least one Fernet key is required.")
    keys = []
    for position, raw_key in enumerate(raw_keys, start=1):
        try:
            keys.append(Fernet(raw_key))
        except (ValueError, TypeError) as error:
            where = f"key {position} of {len(raw_keys)}: " if len(raw_keys) > 1 else ""
            raise EncryptionKeyError(f"{where}{error}") from None
    return keys


class CredentialCipher:
    """Encrypts credential data under the newest key; reads it under any key."""

    def __init__(self, keys_text: str) -> None:
        keys = parse_keys(keys_text)
        self._newest = keys[0]
        self._all = MultiFernet(keys)

    def encrypt(self, data: dict[str, Any]) -> str:
        plaintext = json.dumps(data, separators=(",", ":")).encode()
        return self._all.encrypt(plaintext).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """The stored JSON object; raises InvalidToken when no key reads it."""
        return json.loads(self._all.decrypt(token.encode()))

    def is_readable(self, token: str) -> bool:
        try:
            self._all.decrypt(token.encode())
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def is_current(self, token: str) -> bool:
        """True when the newest key alone reads the token (nothing to rotate)."""
        try:
            self._newest.decrypt(token.encode())
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same plaintext under the newest key; InvalidToken if unreadable."""
        try:
            return self._all.rotate(token.encode()).decode()
        except UnicodeEncodeError:
            raise InvalidToken from None


__all__ = ["CredentialCipher", "EncryptionKeyError", "InvalidToken", "parse_keys"]
