"""Support tickets: who may open, see and change them, and what each change announces.

A client's user opens tickets for their own client only; staff name the
client and alone may change or delete a ticket. `resolved_at` follows the
status: set when a ticket becomes resolved, cleared when it is reopened, set
anew when it is resolved again. Every change records its event in the same
transaction (`ticket.created`, `ticket.resolved` for a resolution,
`ticket.updated` for anything else, `ticket.deleted`); the notifier of this
service mails from those events, never from here, so a request never waits
for (or fails because of) the mail server.
"""

import uuid
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import Select, delete, false, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.clients_copy import ClientDirectory
from portal_common.errors import (
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from portal_common.events import record_event
from portal_common.identity import Identity
from support.models import client_copy, outbox, tickets
from support.tickets.events import (
    TICKET_CREATED,
    TICKET_DELETED,
    TICKET_RESOLVED,
    TICKET_UPDATED,
    ticket_deleted,
    ticket_state,
)

log = structlog.get_logger("support.tickets")
SOURCE = "support"
RESOLVED = "resolved"
# The order of `changed` in events: the API's field order.
CHANGEABLE = ("client_id", "subject", "description", "status", "priority")


def ticket_query() -> Select[Any]:
    """Tickets with their client's name from this service's copy of clients."""
    joined = tickets.outerjoin(client_copy, client_copy.c.id == tickets.c.client_id)
    return select(tickets, client_copy.c.company_name.label("client_name")).select_from(
        joined
    )


def visible_tickets(identity: Identity) -> Select[Any]:
    """Staff see every ticket; a client's user their client's; anyone else none."""
    query = ticket_query()
    if identity.is_staff:
        return query
    if identity.client_id is None:
        return query.where(false())
    return query.where(tickets.c.client_id == identity.client_id)


async def get_ticket(
    session: AsyncSession, identity: Identity, ticket_id: UUID
) -> dict[str, Any]:
    query = visible_tickets(identity).where(tickets.c.id == ticket_id)
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


async def _check_client(
    session: AsyncSession, directory: ClientDirectory, client_id: UUID
) -> None:
    if await directory.find_client(session, client_id) is None:
        raise ValidationFailed.field(
            "client", f'Invalid pk "{client_id}" - object does not exist.'
        )


def check_may_open(identity: Identity) -> None:
    """Staff and client users open tickets; a user without a client has none to open."""
    if not identity.is_staff and identity.client_id is None:
        raise PermissionDenied()


async def open_ticket(
    session: AsyncSession,
    directory: ClientDirectory,
    identity: Identity,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Open a ticket; a client user's ticket is their client's, whatever they sent."""
    check_may_open(identity)
    if identity.is_staff:
        client_id = data["client_id"]
        await _check_client(session, directory, client_id)
    else:
        client_id = identity.client_id
        # Only to have the client's name at hand: the gateway vouches for the
        # user's client, so a clients service that is away must not stop the
        # ticket (the notifier asks again before it mails).
        with suppress(ServiceUnavailable):
            await directory.find_client(session, client_id)

    now = datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "client_id": client_id,
        "subject": data["subject"],
        "description": data["description"],
        "status": data.get("status", "open"),
        "priority": data["priority"],
        "resolved_at": now if data.get("status") == RESOLVED else None,
        "created_at": now,
        "updated_at": now,
    }
    await session.execute(insert(tickets).values(**values))

    await record_event(
        session, TICKET_CREATED, ticket_state(values, []), source=SOURCE, outbox=outbox
    )
    log.info(
        "ticket.opened",
        ticket_id=str(values["id"]),
        client_id=str(client_id),
        priority=values["priority"],
    )
    return await get_ticket(session, identity, values["id"])


async def _locked_ticket(session: AsyncSession, ticket_id: UUID) -> dict[str, Any]:
    query = select(tickets).where(tickets.c.id == ticket_id).with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


async def change_ticket(
    session: AsyncSession,
    directory: ClientDirectory,
    identity: Identity,
    ticket_id: UUID,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Apply a staff change; resolving stamps `resolved_at`, reopening clears it."""
    current = await _locked_ticket(session, ticket_id)
    changes = {
        name: data[name]
        for name in CHANGEABLE
        if name in data and data[name] != current[name]
    }
    if "client_id" in changes:
        await _check_client(session, directory, changes["client_id"])
    if not changes:
        return await get_ticket(session, identity, ticket_id)

    now = datetime.now(UTC)
    resolves = changes.get("status") == RESOLVED
    if resolves:
        changes["resolved_at"] = now
    elif "status" in changes and current["status"] == RESOLVED:
        changes["resolved_at"] = None
    await session.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id)
        .values(**changes, updated_at=now)
    )

    changed = list(changes)
    event_type = TICKET_RESOLVED if resolves else TICKET_UPDATED
    state = ticket_state({**current, **changes}, changed)
    await record_event(session, event_type, state, source=SOURCE, outbox=outbox)
    log.info(
        "ticket.resolved" if resolves else "ticket.updated",
        ticket_id=str(ticket_id),
        changed=changed,
    )
    return await get_ticket(session, identity, ticket_id)


async def delete_ticket(session: AsyncSession, ticket_id: UUID) -> None:
    statement = delete(tickets).where(tickets.c.id == ticket_id).returning(tickets)
    deleted = (await session.execute(statement)).mappings().first()
    if deleted is None:
        raise NotFound()

    await record_event(
        session, TICKET_DELETED, ticket_deleted(deleted), source=SOURCE, outbox=outbox
    )
    log.info("ticket.deleted", ticket_id=str(ticket_id))


async def delete_client_tickets(session: AsyncSession, client_id: UUID) -> int:
    """A deleted client's tickets go with it (the client's deletion is the event)."""
    result = await session.execute(
        delete(tickets).where(tickets.c.client_id == client_id).returning(tickets.c.id)
    )
    return len(result.all())
