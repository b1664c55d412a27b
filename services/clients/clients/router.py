"""HTTP endpoints for clients; thin: parse, call the service, shape the reply."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from clients import service
from clients.exceptions import NoClientForUser
from clients.models import clients
from clients.runtime import runtime
from clients.schemas import (
    BILLING_CYCLES,
    CLIENT_STATUSES,
    STAFF_ONLY_CLIENT_FIELDS,
    ClientCreate,
    ClientOwnUpdate,
    ClientUpdate,
    client_internal,
    client_read,
    client_read_limited,
)
from portal_common.errors import MethodNotAllowed, NotFound, PermissionDenied
from portal_common.http import path_uuid, read_object
from portal_common.identity import CurrentUser, Identity, StaffUser, can_see_client
from portal_common.listing import ChoiceFilter, ExactFilter, ListSpec, paginate

router = APIRouter(prefix="/api/clients", tags=["clients"])
internal = APIRouter(prefix="/internal", include_in_schema=False)

CLIENTS = ListSpec(
    filters=(
        ChoiceFilter("status", clients.c.status, CLIENT_STATUSES),
        ExactFilter("plan_tier", clients.c.plan_tier),
        ChoiceFilter("billing_cycle", clients.c.billing_cycle, BILLING_CYCLES),
    ),
    search=(clients.c.company_name, clients.c.contact_name, clients.c.email),
    ordering={
        "company_name": clients.c.company_name,
        "created_at": clients.c.created_at,
        "monthly_fee": clients.c.monthly_fee,
    },
    default_ordering=("-created_at",),
    tiebreak=clients.c.id,
)




def _visible_client_id(identity: Identity, raw: str) -> UUID:
    client_id = path_uuid(raw)
    if not can_see_client(identity, client_id):
        raise NotFound()
    return client_id


async def _client_body(session, row, identity: Identity) -> dict[str, Any]:
    counts = await service.workflow_counts(session, [row["id"]])
    shape = client_read if identity.is_staff else client_read_limited
    return shape(row, counts.get(row["id"], service.NO_WORKFLOWS))


@router.get("/", openapi_extra={"parameters": CLIENTS.query_parameters()})
async def list_clients(request: Request, identity: StaffUser) -> dict[str, Any]:
    """List clients (staff only), with filters, search and ordering."""
    async with runtime.transaction() as session:
        page = await paginate(
            session, request, select(clients), CLIENTS, identity=identity
        )
        counts = await service.workflow_counts(
            session, [row["id"] for row in page.rows]
        )
    return page.body(
        lambda row: client_read(row, counts.get(row["id"], service.NO_WORKFLOWS))
    )


@router.post("/", status_code=201, openapi_extra=ClientCreate.openapi_extra())
async def create_client(request: Request, identity: StaffUser) -> dict[str, Any]:
    """Create a client (staff only)."""
    data = ClientCreate.validate(await read_object(request))
    async with runtime.transaction() as session:
        row = await service.create_client(session, data)
    return client_read(row, service.NO_WORKFLOWS)


@router.get("/me/")
async def my_client(identity: CurrentUser) -> dict[str, Any]:
    """The caller's own client; 404 for a user without one."""
    if identity.client_id is None:
        raise NoClientForUser()
    async with runtime.transaction() as session:
        try:
            row = await service.get_client(session, identity.client_id)
        except NotFound:
            raise NoClientForUser() from None
        return await _client_body(session, row, identity)


@router.api_route(
    "/me/", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def my_client_other_methods(request: Request, identity: CurrentUser) -> None:
    # Without this, "me" would reach the /{client_id}/ routes and answer 404.
    raise MethodNotAllowed(request.method)


@router.get("/{client_id}/")
async def read_client(client_id: str, identity: CurrentUser) -> dict[str, Any]:
    """Read one client: staff any, a client's user only their own."""
    visible_id = _visible_client_id(identity, client_id)
    async with runtime.transaction() as session:
        row = await service.get_client(session, visible_id)
        return await _client_body(session, row, identity)


async def _update(
    request: Request, client_id: str, identity: Identity, *, partial: bool
) -> dict[str, Any]:
    visible_id = _visible_client_id(identity, client_id)
    body = await read_object(request)
    if identity.is_staff:
        data = ClientUpdate.validate(body, partial=partial)
    elif STAFF_ONLY_CLIENT_FIELDS.intersection(body):
        raise PermissionDenied()
    else:
        data = ClientOwnUpdate.validate(body, partial=partial)
    async with runtime.transaction() as session:
        row = await service.update_client(session, visible_id, data)
        return await _client_body(session, row, identity)


@router.patch("/{client_id}/", openapi_extra=ClientUpdate.openapi_extra())
async def patch_client(
    request: Request, client_id: str, identity: CurrentUser
) -> dict[str, Any]:
    """Change some fields; a client's user only contact_name, email, phone."""
    return await _update(request, client_id, identity, partial=True)


@router.put("/{client_id}/", openapi_extra=ClientUpdate.openapi_extra())
async def put_client(
    request: Request, client_id: str, identity: CurrentUser
) -> dict[str, Any]:
    """Replace a client's fields; a client's user only contact_name, email, phone."""
    return await _update(request, client_id, identity, partial=False)


@router.delete("/{client_id}/", status_code=204)
async def delete_client(client_id: str, identity: StaffUser) -> Response:
    """Delete a client and its credentials (staff only); its users lose access."""
    async with runtime.transaction() as session:
        await service.delete_client(session, path_uuid(client_id))
    return Response(status_code=204)


@internal.get("/clients/{client_id}", dependencies=[Depends(runtime.check_internal)])
async def look_up_client(client_id: str) -> dict[str, Any]:
    """For other services: one client's shared fields; 404 when there is none."""
    async with runtime.transaction() as session:
        row = await service.get_client(session, path_uuid(client_id))
    return client_internal(row)
