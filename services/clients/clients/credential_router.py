"""HTTP endpoints for API credentials; thin: parse, call the service, shape it."""

from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from sqlalchemy import false

from clients import credential_service as service
from clients.models import clients, credentials
from clients.runtime import runtime
from clients.schemas import (
    CREDENTIAL_STATUSES,
    CREDENTIAL_TYPES,
    CredentialCreate,
    CredentialUpdate,
    credential_read,
    credential_read_limited,
)
from portal_common.errors import NotFound
from portal_common.http import path_uuid, read_object
from portal_common.identity import CurrentUser, Identity, StaffUser
from portal_common.listing import ChoiceFilter, ListSpec, UUIDFilter, paginate

router = APIRouter(prefix="/api/credentials", tags=["credentials"])
log = structlog.get_logger("clients.credentials")

CREDENTIALS = ListSpec(
    filters=(
        ChoiceFilter(
            "credential_type", credentials.c.credential_type, CREDENTIAL_TYPES
        ),
        ChoiceFilter("status", credentials.c.status, CREDENTIAL_STATUSES),
        UUIDFilter(
            "client", credentials.c.client_id, exists=clients.c.id, owner_scoped=True
        ),
    ),
    search=(credentials.c.service_name,),
    ordering={
        "created_at": credentials.c.created_at,
        "service_name": credentials.c.service_name,
    },
    default_ordering=("-created_at",),
    tiebreak=credentials.c.id,
)


def _shape(identity: Identity):
    read = credential_read if identity.is_staff else credential_read_limited
    return lambda row: read(row, status=service.reported_status(runtime.cipher, row))


@router.get("/", openapi_extra={"parameters": CREDENTIALS.query_parameters()})
async def list_credentials(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """List credentials: staff all (with encrypted_data), a client's user their own."""
    statement = service.credential_query()
    if not identity.is_staff:
        own = credentials.c.client_id == identity.client_id
        statement = statement.where(own if identity.client_id else false())
    async with runtime.transaction() as session:
        page = await paginate(
            session, request, statement, CREDENTIALS, identity=identity
        )
    if not identity.is_staff and page.rows:
        log.info(
            "credential.viewed", credential_ids=[str(row["id"]) for row in page.rows]
        )
    return page.body(_shape(identity))


@router.post("/", status_code=201, openapi_extra=CredentialCreate.openapi_extra())
async def create_credential(request: Request, identity: StaffUser) -> dict[str, Any]:
    """Store a credential (staff only): send `data` or `encrypted_data`."""
    data = CredentialCreate.validate(await read_object(request))
    async with runtime.transaction() as session:
        row = await service.create_credential(session, runtime.cipher, data)
    return _shape(identity)(row)


@router.get("/{credential_id}/")
async def read_credential(credential_id: str, identity: CurrentUser) -> dict[str, Any]:
    """Read one credential: staff any, a client's user only their own."""
    wanted = path_uuid(credential_id)
    async with runtime.transaction() as session:
        if identity.is_staff:
            row = await service.get_credential(session, wanted)
        elif identity.client_id is None:
            raise NotFound()
        else:
            row = await service.get_credential(
                session, wanted, client_id=identity.client_id
            )
    if not identity.is_staff:
        log.info("credential.viewed", credential_ids=[str(row["id"])])
    return _shape(identity)(row)


async def _update(
    request: Request, credential_id: str, identity: Identity, *, partial: bool
) -> dict[str, Any]:
    wanted = path_uuid(credential_id)
    data = CredentialUpdate.validate(await read_object(request), partial=partial)
    async with runtime.transaction() as session:
        row = await service.update_credential(
            session, runtime.cipher, wanted, data, partial=partial
        )
    return _shape(identity)(row)


@router.patch("/{credential_id}/", openapi_extra=CredentialUpdate.openapi_extra())
async def patch_credential(
    request: Request, credential_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Change some fields of a credential (staff only); new secret data re-encrypts."""
    return await _update(request, credential_id, identity, partial=True)


@router.put("/{credential_id}/", openapi_extra=CredentialUpdate.openapi_extra())
async def put_credential(
    request: Request, credential_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Replace a credential (staff only); send `data` or `encrypted_data`."""
    return await _update(request, credential_id, identity, partial=False)


@router.delete("/{credential_id}/", status_code=204)
async def delete_credential(credential_id: str, identity: StaffUser) -> Response:
    """Delete a credential (staff only)."""
    async with runtime.transaction() as session:
        await service.delete_credential(session, path_uuid(credential_id))
    return Response(status_code=204)
