"""Ticket bodies: what callers may send, and how a ticket is shown."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from portal_common.fields import (
    CharField,
    ChoiceField,
    ReadOnly,
    RelatedIdField,
    Serializer,
    iso_datetime,
)
from support.models import TICKET_PRIORITIES, TICKET_STATUSES


class TicketCreate(Serializer):
    """A ticket as staff open it: they name the client."""

    id = ReadOnly()
    client = RelatedIdField(source="client_id")
    client_name = ReadOnly()
    subject = CharField(max_length=200)
    description = CharField()
    status = ChoiceField(TICKET_STATUSES, default="open")
    priority = ChoiceField(TICKET_PRIORITIES, default="medium")
    days_open = ReadOnly()
    resolved_at = ReadOnly()
    created_at = ReadOnly()
    updated_at = ReadOnly()


class ClientTicketCreate(TicketCreate):
    """A ticket as a client's user opens it: always their own client's, and open."""

    client = ReadOnly()
    status = ReadOnly()


class TicketUpdate(TicketCreate):
    """A change by staff; `resolved_at` follows `status` and is never taken.

    `status` and `priority` have no default here: a PUT that leaves them out
    keeps the stored values, as DRF does for model fields with a default.
    """

    status = ChoiceField(TICKET_STATUSES, required=False)
    priority = ChoiceField(TICKET_PRIORITIES, required=False)


def days_open(ticket: Any, *, now: datetime, zone: ZoneInfo) -> int:
    """Calendar days from creation to resolution (or to today), in the portal's zone."""
    resolved_at = ticket["resolved_at"] if ticket["status"] == "resolved" else None
    end = resolved_at or now
    days = (
        end.astimezone(zone).date() - ticket["created_at"].astimezone(zone).date()
    ).days
    return max(days, 0)


def ticket_read(
    ticket: Any, *, zone: ZoneInfo, now: datetime | None = None
) -> dict[str, Any]:
    """The API's ticket object, fields in the reference's order."""
    return {
        "id": str(ticket["id"]),
        "client": str(ticket["client_id"]),
        "client_name": ticket["client_name"],
        "subject": ticket["subject"],
        "description": ticket["description"],
        "status": ticket["status"],
        "priority": ticket["priority"],
        "days_open": days_open(ticket, now=now or datetime.now(UTC), zone=zone),
        "resolved_at": iso_datetime(ticket["resolved_at"]),
        "created_at": iso_datetime(ticket["created_at"]),
        "updated_at": iso_datetime(ticket["updated_at"]),
    }
