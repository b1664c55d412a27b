"""Payloads of the ticket events this service publishes: its public contract.

`ticket.created`, `ticket.updated` and `ticket.resolved` carry the ticket's
current state plus the names of the fields the change touched, so a consumer
never needs to ask for the rest. `ticket.resolved` replaces `ticket.updated`
for the change that resolves a ticket; reopening one is a `ticket.updated`.
"""

from typing import Any

from portal_common.fields import iso_datetime

TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"
TICKET_RESOLVED = "ticket.resolved"
TICKET_DELETED = "ticket.deleted"


def ticket_state(ticket: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    return {
        "id": str(ticket["id"]),
        "client_id": str(ticket["client_id"]),
        "subject": ticket["subject"],
        "description": ticket["description"],
        "priority": ticket["priority"],
        "status": ticket["status"],
        "resolved_at": iso_datetime(ticket["resolved_at"]),
        "changed": changed,
    }


def ticket_deleted(ticket: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(ticket["id"]), "client_id": str(ticket["client_id"])}
