"""Payloads of the events the clients service publishes: its public contract.

Every other service keeps its own copy of the clients it needs from these
(`portal_common.clients_copy`), so each payload carries the client's current
state, not only what changed. The envelope's `occurred_at` equals the
client's `updated_at`, which lets consumers drop an older event that arrives
after a newer one.
"""

from typing import Any
from uuid import UUID

CLIENT_CREATED = "client.created"
CLIENT_UPDATED = "client.updated"
CLIENT_DELETED = "client.deleted"

# What every client.created / client.updated carries, in this order.
CLIENT_EVENT_FIELDS = ("company_name", "contact_name", "email", "status", "plan_tier")


def client_state(client: dict[str, Any]) -> dict[str, Any]:
    state = {"id": str(client["id"])}
    state.update({name: client[name] for name in CLIENT_EVENT_FIELDS})
    return state


def client_created(client: dict[str, Any]) -> dict[str, Any]:
    return client_state(client)


def client_updated(client: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    return {**client_state(client), "changed": changed}


def client_deleted(client_id: UUID) -> dict[str, Any]:
    return {"id": str(client_id)}
