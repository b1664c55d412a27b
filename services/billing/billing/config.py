from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from portal_common.settings import PortalSettings, load_settings


class BillingSettings(PortalSettings):
    billing_database_url: str
    clients_url: str = ""
    # Seconds between two runs of the overdue and reminder sweep. The sweep is
    # idempotent, so running it hourly for a daily rule is fine; rarer than
    # daily would break the rule.
    billing_sweep_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # Test hook only: when set (ISO 8601; no offset means UTC), the service's
    # clock stands still at this moment. See `billing.clock`.
    billing_fake_now: datetime | None = None

    @field_validator("time_zone")
    @classmethod
    def known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def get_settings() -> BillingSettings:
    return load_settings(BillingSettings)
