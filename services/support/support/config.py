from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from portal_common.fields import is_valid_email
from portal_common.settings import PortalSettings, load_settings


class SupportSettings(PortalSettings):
    support_database_url: str
    clients_url: str = ""

    # Staff mails (new tickets, workflow alerts) go to PORTAL_SUPPORT_EMAIL,
    # else to the bootstrap admin's address (CONTRACT.md §4).
    support_email: str = ""
    admin_email: str = "admin@localhost"
    mail_from: str = "noreply@localhost"
    mail_from_name: str = "Monoliet Portal"

    # An empty host means "no SMTP server configured": mails wait as pending
    # rows. `make run` starts a local sink and sets the host (mailsink.py).
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    # Implicit TLS from the first byte (usually port 465).
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    # A failed mail is retried after base * 2**(attempts - 1) seconds, at
    # most max seconds later, for as long as the failure is temporary.
    mail_retry_seconds: float = Field(default=30.0, gt=0)
    mail_max_retry_seconds: float = Field(default=3600.0, gt=0)
    mail_poll_seconds: float = Field(default=1.0, gt=0)
    mail_batch_size: int = Field(default=20, ge=1, le=500)
    # How long a sender may hold a claimed mail before another replica may
    # take it over (only after a crash); longer than one batch can take.
    mail_lease_seconds: float = Field(default=300.0, gt=0)

    @field_validator("support_email", "admin_email", "mail_from")
    @classmethod
    def must_be_an_address(cls, value: str) -> str:
        if value and not is_valid_email(value):
            raise PydanticCustomError("email", "not a valid e-mail address")
        return value

    @field_validator("time_zone")
    @classmethod
    def must_be_a_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("time_zone", "unknown time zone") from None
        return value

    @property
    def staff_email(self) -> str:
        return self.support_email or self.admin_email

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def get_settings() -> SupportSettings:
    return load_settings(SupportSettings)
