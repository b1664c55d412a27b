"""The billing service's one clock: "now" and "today" in PORTAL_TIME_ZONE.

Everything that depends on the time of day reads it here: the year of an
invoice number, a paid invoice's date, `is_overdue`, the sweep. "Today" is the
calendar date in the configured zone, so an invoice due on the 15th is
overdue from midnight in Amsterdam, not from midnight in UTC.

Test hook: `PORTAL_BILLING_FAKE_NOW` (an ISO 8601 moment) makes the clock
stand still at that moment. Tests use it for year rollover and the edges of
the day; it is never set in production, and nothing else reads the time.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Clock:
    time_zone: ZoneInfo
    fake_now: datetime | None = None

    @classmethod
    def configured(cls, time_zone: str, fake_now: datetime | None = None) -> "Clock":
        if fake_now is not None and fake_now.tzinfo is None:
            fake_now = fake_now.replace(tzinfo=UTC)
        return cls(ZoneInfo(time_zone), fake_now)

    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        if self.fake_now is not None:
            return self.fake_now.astimezone(UTC)
        return datetime.now(UTC)

    def today(self) -> date:
        """The calendar date in the portal's time zone."""
        return self.now().astimezone(self.time_zone).date()
