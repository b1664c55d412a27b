"""Configuration from environment variables (and `.env`), read once at start-up.

Every part of the portal reads its settings through a subclass of
`PortalSettings`. A missing or malformed variable stops the process with one
line that names the variable, instead of a traceback.
"""

import base64
import binascii
import sys
from typing import TypeVar

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class PortalSettings(BaseSettings):
    """Settings shared by every service; variables are prefixed `PORTAL_`."""

    model_config = SettingsConfigDict(
        env_prefix="PORTAL_",
        env_file=".env",
        extra="ignore",
    )

    data_dir: str = "./var"
    nats_url: str = "nats://127.0.0.1:4222"
    # JetStream replicas of the portal's streams: 1 on one server, 3 on a cluster.
    nats_replicas: int = 1
    time_zone: str = "UTC"
    log_format: str = "console"
    log_level: str = "INFO"
    # Connections each process keeps to its database (and as many again at peaks).
    db_pool_size: int = 10
    # Public half of the gateway's Ed25519 key, base64 of the raw 32 bytes.
    identity_public_key: str = ""
    # Shared secret for service-to-service look-ups under /internal/.
    internal_token: str = ""

    @field_validator("identity_public_key")
    @classmethod
    def _raw_ed25519_key(cls, value: str) -> str:
        if value:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("not base64") from None
            if len(raw) != 32:
                raise ValueError("must be the 32 raw bytes of an Ed25519 public key, base64")
        return value


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Build `settings_class` from the environment or exit with one clear line."""
    try:
        return settings_class()
    except ValidationError as error:
        prefix = settings_class.model_config.get("env_prefix", "")
        first = error.errors()[0]
        name = (prefix + "_".join(str(part) for part in first["loc"])).upper()
        print(f"configuration error: {name}: {first['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
