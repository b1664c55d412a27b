"""Support ticket endpoints; thin: parse, call the service, shape the reply."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.http import path_uuid, read_object
from portal_common.identity import CurrentUser, Identity, StaffUser
from portal_common.listing import ChoiceFilter, ListSpec, UUIDFilter, paginate
from support.models import TICKET_PRIORITIES, TICKET_STATUSES, tickets
from support.runtime import runtime
from support.tickets import service
from support.tickets.schemas import (
    ClientTicketCreate,
    TicketCreate,
    TicketUpdate,
    ticket_read,
)

router = APIRouter(prefix="/api/support-tickets", tags=["support-tickets"])


async def _known_client(
    session: AsyncSession, client_id: UUID, identity: Identity | None
) -> bool:
    return await runtime.directory.find_client(session, client_id) is not None


TICKETS = ListSpec(
    filters=(
        ChoiceFilter("status", tickets.c.status, TICKET_STATUSES),
        ChoiceFilter("priority", tickets.c.priority, TICKET_PRIORITIES),
        UUIDFilter(
            "client", tickets.c.client_id, exists=_known_client, owner_scoped=True
        ),
    ),
    search=(tickets.c.subject, tickets.c.description),
    ordering={
        "created_at": tickets.c.created_at,
        "updated_at": tickets.c.updated_at,
        "priority": tickets.c.priority,
        "status": tickets.c.status,
    },
    default_ordering=("-created_at",),
    tiebreak=tickets.c.id,
)




def _read(ticket: Any) -> dict[str, Any]:
    return ticket_read(ticket, zone=runtime.settings.zone)


@router.get("/", openapi_extra={"parameters": TICKETS.query_parameters()})
async def list_tickets(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """List support tickets: staff see all, a client's user their own."""
    async with runtime.transaction() as session:
        statement = service.visible_tickets(identity)
        page = await paginate(session, request, statement, TICKETS, identity=identity)
    return page.body(_read)


@router.post("/", status_code=201, openapi_extra=TicketCreate.openapi_extra())
async def create_ticket(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """Open a ticket; staff name the client, a client user's ticket is their own."""
    service.check_may_open(identity)
    body = await read_object(request)
    data = (TicketCreate if identity.is_staff else ClientTicketCreate).validate(body)
    async with runtime.transaction() as session:
        ticket = await service.open_ticket(session, runtime.directory, identity, data)
    return _read(ticket)


@router.get("/{ticket_id}/")
async def read_ticket(ticket_id: str, identity: CurrentUser) -> dict[str, Any]:
    """Read one ticket."""
    async with runtime.transaction() as session:
        ticket = await service.get_ticket(session, identity, path_uuid(ticket_id))
    return _read(ticket)


async def _change(
    request: Request, ticket_id: str, identity: Identity, *, partial: bool
) -> dict[str, Any]:
    ticket_uuid = path_uuid(ticket_id)
    async with runtime.transaction() as session:
        # As in DRF, a missing ticket is 404 before the body is even read.
        await service.get_ticket(session, identity, ticket_uuid)
        data = TicketUpdate.validate(await read_object(request), partial=partial)
        ticket = await service.change_ticket(
            session, runtime.directory, identity, ticket_uuid, data
        )
    return _read(ticket)


@router.patch("/{ticket_id}/", openapi_extra=TicketUpdate.openapi_extra())
async def patch_ticket(
    request: Request, ticket_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Change some of a ticket's fields (staff only); resolving sets `resolved_at`."""
    return await _change(request, ticket_id, identity, partial=True)


@router.put("/{ticket_id}/", openapi_extra=TicketUpdate.openapi_extra())
async def put_ticket(
    request: Request, ticket_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Replace a ticket's fields (staff only)."""
    return await _change(request, ticket_id, identity, partial=False)


@router.delete("/{ticket_id}/", status_code=204)
async def delete_ticket(ticket_id: str, identity: StaffUser) -> Response:
    """Delete a ticket (staff only)."""
    async with runtime.transaction() as session:
        await service.delete_ticket(session, path_uuid(ticket_id))
    return Response(status_code=204)
