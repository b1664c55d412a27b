"""HTTP endpoints of the billing service; thin: parse, call the service, shape the reply."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import BigInteger, ColumnElement, and_, cast, or_
from sqlalchemy.ext.asyncio import AsyncSession

from billing import service
from billing.models import INVOICE_STATUSES, INVOICE_TYPES, invoices
from billing.pdf import InvoiceDocument, render_invoice_pdf
from billing.runtime import runtime
from billing.schemas import InvoiceWrite
from portal_common.fields import iso_date, money
from portal_common.http import path_uuid, read_object
from portal_common.identity import CurrentUser, Identity, StaffUser
from portal_common.listing import ChoiceFilter, ListSpec, UUIDFilter, paginate

router = APIRouter(prefix="/api/invoices", tags=["invoices"])
log = structlog.get_logger("billing.router")

PDF_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, eq=False)
class StatusFilter:
    """`?status=overdue` matches what the API shows, stored or computed on read."""

    param: str = "status"

    async def condition(
        self, raw: str, session: AsyncSession, identity: Identity | None
    ) -> ColumnElement[bool]:
        choice = ChoiceFilter(self.param, invoices.c.status, INVOICE_STATUSES)
        stored = await choice.condition(raw, session, identity)
        today = runtime.clock.today()
        if raw == "overdue":
            past_due = and_(invoices.c.status == "pending", invoices.c.due_date < today)
            return or_(stored, past_due)
        if raw == "pending":
            return and_(stored, invoices.c.due_date >= today)
        return stored


async def _client_exists(
    session: AsyncSession, client_id, identity: Identity | None
) -> bool:
    return await runtime.directory.find_client(session, client_id) is not None


INVOICES = ListSpec(
    filters=(
        StatusFilter(),
        ChoiceFilter("type", invoices.c.type, INVOICE_TYPES),
        UUIDFilter(
            "client", invoices.c.client_id, exists=_client_exists, owner_scoped=True
        ),
    ),
    search=(invoices.c.invoice_number,),
    ordering={
        "created_at": invoices.c.created_at,
        "due_date": invoices.c.due_date,
        "amount": invoices.c.amount,
        # Numerically, so INV-2024-999 comes before INV-2024-1000.
        "invoice_number": cast(invoices.c.invoice_year, BigInteger) * 1_000_000_000
        + invoices.c.invoice_sequence,
    },
    default_ordering=("-created_at",),
    tiebreak=invoices.c.id,
)
WRITE_BODY = InvoiceWrite.openapi_extra()


@router.get("/", openapi_extra={"parameters": INVOICES.query_parameters()})
async def list_invoices(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """List invoices: staff see all, a client's users their own."""
    today = runtime.clock.today()
    statement = service.visible_to(service.invoices_with_clients(), identity)
    async with runtime.transaction() as session:
        page = await paginate(session, request, statement, INVOICES, identity=identity)
    return page.body(lambda row: service.invoice_body(row, today))


@router.post("/", status_code=201, openapi_extra=WRITE_BODY)
async def create_invoice(request: Request, identity: StaffUser) -> dict[str, Any]:
    """Create an invoice (staff only); its number is given by the portal."""
    body = await read_object(request)
    async with runtime.transaction() as session:
        data = await service.validate_invoice(
            session, runtime.directory, body, partial=False
        )
        row = await service.issue_invoice(session, runtime.clock, data)
    return service.invoice_body(row, runtime.clock.today())


@router.get("/{invoice_id}/")
async def read_invoice(invoice_id: str, identity: CurrentUser) -> dict[str, Any]:
    """Read one invoice."""
    async with runtime.transaction() as session:
        row = await service.get_invoice(
            session, path_uuid(invoice_id), identity
        )
    return service.invoice_body(row, runtime.clock.today())


async def _update(
    request: Request, invoice_id: str, identity: Identity, *, partial: bool
) -> dict[str, Any]:
    parsed_id = path_uuid(invoice_id)
    async with runtime.transaction() as session:
        # As in DRF: the object is looked up before the body is read.
        await service.get_invoice(session, parsed_id, identity)
        body = await read_object(request)
        data = await service.validate_invoice(
            session, runtime.directory, body, partial=partial
        )
        row = await service.update_invoice(session, runtime.clock, parsed_id, data)
    return service.invoice_body(row, runtime.clock.today())


@router.put("/{invoice_id}/", openapi_extra=WRITE_BODY)
async def put_invoice(
    request: Request, invoice_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Replace an invoice's fields (staff only)."""
    return await _update(request, invoice_id, identity, partial=False)


@router.patch("/{invoice_id}/", openapi_extra=WRITE_BODY)
async def patch_invoice(
    request: Request, invoice_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Change some of an invoice's fields (staff only); paid without a date is paid today."""
    return await _update(request, invoice_id, identity, partial=True)


@router.delete("/{invoice_id}/", status_code=204)
async def delete_invoice(invoice_id: str, identity: StaffUser) -> Response:
    """Delete an invoice (staff only)."""
    parsed_id = path_uuid(invoice_id)
    async with runtime.transaction() as session:
        await service.delete_invoice(session, runtime.clock, parsed_id)
    return Response(status_code=204)


@router.get(
    "/{invoice_id}/download/",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def download_invoice(invoice_id: str, identity: CurrentUser) -> StreamingResponse:
    """Download the invoice as a PDF."""
    async with runtime.transaction() as session:
        row = await service.get_invoice(
            session, path_uuid(invoice_id), identity
        )
    today = runtime.clock.today()
    document = InvoiceDocument(
        invoice_number=row["invoice_number"],
        company_name=row["client_name"] or "",
        contact_name=row["client_contact_name"] or "",
        invoice_type=row["type"].capitalize(),
        amount=money(row["amount"]) or "",
        due_date=iso_date(row["due_date"]) or "",
        status=service.effective_status(row, today).capitalize(),
        paid_date=iso_date(row["paid_date"]) or "Not paid",
        issued_on=row["created_at"]
        .astimezone(runtime.clock.time_zone)
        .date()
        .isoformat(),
    )
    content = await asyncio.to_thread(render_invoice_pdf, document)

    # Who fetched which invoice, for the audit trail (STYLE.md, Logging).
    log.info(
        "invoice.downloaded",
        invoice_id=str(row["id"]),
        invoice_client_id=str(row["client_id"]),
        actor_user_id=identity.user_id,
        actor_client_id=str(identity.client_id) if identity.client_id else None,
        actor_is_staff=identity.is_staff,
    )
    filename = f"{row['invoice_number']}.pdf"
    return StreamingResponse(
        _chunks(content),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(len(content)),
        },
    )


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), PDF_CHUNK_BYTES):
        yield content[start : start + PDF_CHUNK_BYTES]
