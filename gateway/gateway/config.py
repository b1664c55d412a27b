from pydantic import field_validator

from portal_common.settings import PortalSettings, load_settings

# The first path segment under /api/ names the service that owns it.
ROUTES: dict[str, str] = {
    "auth": "auth",
    "clients": "clients",
    "credentials": "clients",
    "workflows": "workflows",
    "executions": "workflows",
    "invoices": "billing",
    "support-tickets": "support",
    "notifications": "support",
}


class GatewaySettings(PortalSettings):
    identity_private_key: str
    auth_url: str = ""
    clients_url: str = ""
    workflows_url: str = ""
    billing_url: str = ""
    support_url: str = ""
    cors_origins: str = ""
    # Peers whose X-Forwarded-For is believed (a load balancer in front of us).
    trusted_proxies: str = ""
    token_cache_seconds: float = 30.0
    upstream_timeout_seconds: float = 30.0

    @field_validator("identity_private_key")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be set (base64 of an Ed25519 private key)")
        return value

    def service_urls(self, service: str) -> list[str]:
        raw = getattr(self, f"{service}_url", "") or ""
        return [url.rstrip("/") for url in raw.split(",") if url.strip()]

    def trusted_proxy_set(self) -> set[str]:
        return {address.strip() for address in self.trusted_proxies.split(",") if address.strip()}

    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


def get_settings() -> GatewaySettings:
    return load_settings(GatewaySettings)
