"""Secrets the launcher generates once into the data folder and reuses.

Each can be given by its environment variable instead; what is generated is
written with mode 0600 under `$PORTAL_DATA_DIR/secrets/`.
"""

import base64
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

from portal_common.identity import generate_keypair


def _stored(folder: Path, name: str, make) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def load_or_create(data_dir: Path) -> dict[str, str]:
    """The secrets every process is started with, as environment variables."""
    folder = data_dir / "secrets"
    keypair: tuple[str, str] | None = None

    def private_key() -> str:
        nonlocal keypair
        keypair = keypair or generate_keypair()
        return keypair[0]

    private = os.environ.get("PORTAL_IDENTITY_PRIVATE_KEY") or _stored(folder, "identity_ed25519", private_key)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = base64.b64encode(
        Ed25519PrivateKey.from_private_bytes(base64.b64decode(private)).public_key().public_bytes_raw()
    ).decode()
    return {
        "PORTAL_IDENTITY_PRIVATE_KEY": private,
        "PORTAL_IDENTITY_PUBLIC_KEY": public,
        "PORTAL_INTERNAL_TOKEN": os.environ.get("PORTAL_INTERNAL_TOKEN")
        or _stored(folder, "internal_token", lambda: secrets.token_hex(32)),
        "PORTAL_ENCRYPTION_KEYS": os.environ.get("PORTAL_ENCRYPTION_KEYS")
        or _stored(folder, "encryption_keys", lambda: Fernet.generate_key().decode()),
    }


def admin_password(data_dir: Path) -> tuple[str, bool]:
    """The bootstrap admin's password and whether it was generated (and so printed)."""
    given = os.environ.get("PORTAL_ADMIN_PASSWORD")
    if given:
        return given, False
    return _stored(data_dir / "secrets", "admin_password", lambda: secrets.token_urlsafe(12)), True
