"""Invoices: issuing, changing, deleting, and the overdue and reminder rules.

Every change records its event in the outbox in the same transaction
(`billing.events` describes them). Nothing here commits: the router or the
consumer that opened the transaction does.

Overdue, on read and in the sweep. An unpaid invoice whose due date is
before today (in PORTAL_TIME_ZONE) is overdue from the first moment of the
next day: reads compute that (`effective_status`), so the API is right even
before the sweep has run. The sweep then stores the status and publishes
`invoice.overdue` once per invoice; a write that makes an invoice overdue
does the same at once.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import structlog
from sqlalchemy import (
    Executable,
    RowMapping,
    Select,
    and_,
    delete,
    false,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from billing import events
from billing.clock import Clock
from billing.exceptions import UnknownClient
from billing.models import clients, invoices
from billing.numbering import format_invoice_number, take_next_number
from billing.schemas import InvoiceWrite
from portal_common.clients_copy import ClientDirectory
from portal_common.errors import NotFound, ValidationFailed
from portal_common.events import record_event
from portal_common.fields import does_not_exist, iso_date, iso_datetime, money
from portal_common.identity import Identity

log = structlog.get_logger("billing")
SOURCE = "billing"

UNPAID = ("pending", "overdue")
# A pending invoice due within this many days (today included) is reminded.
DUE_SOON_DAYS = 3


async def _all(session: AsyncSession, statement: Executable) -> Sequence[RowMapping]:
    return (await session.execute(statement)).mappings().all()


async def _first(session: AsyncSession, statement: Executable) -> RowMapping | None:
    return (await session.execute(statement)).mappings().first()




def effective_status(row: Any, today: date) -> str:
    """The status as the API shows it: pending turns overdue after its due date."""
    if row["status"] == "pending" and row["due_date"] < today:
        return "overdue"
    return row["status"]


def is_overdue(row: Any, today: date) -> bool:
    return row["status"] in UNPAID and row["due_date"] < today


def invoice_body(row: Any, today: date) -> dict[str, Any]:
    """An invoice as the API answers it, fields in the reference's order."""
    return {
        "id": str(row["id"]),
        "client": str(row["client_id"]),
        "client_name": row["client_name"],
        "invoice_number": row["invoice_number"],
        "amount": money(row["amount"]),
        "type": row["type"],
        "status": effective_status(row, today),
        "due_date": iso_date(row["due_date"]),
        "paid_date": iso_date(row["paid_date"]),
        "is_overdue": is_overdue(row, today),
        "stripe_invoice_id": row["stripe_invoice_id"],
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }


def invoices_with_clients() -> Select[Any]:
    """Invoices with their client's name and contact from the local copy."""
    return select(
        invoices,
        clients.c.company_name.label("client_name"),
        clients.c.contact_name.label("client_contact_name"),
    ).outerjoin(clients, clients.c.id == invoices.c.client_id)


def visible_to(statement: Select[Any], identity: Identity) -> Select[Any]:
    """Staff see every invoice; a client's user their client's; anyone else none."""
    if identity.is_staff:
        return statement
    if identity.client_id is None:
        return statement.where(false())
    return statement.where(invoices.c.client_id == identity.client_id)


async def get_invoice(
    session: AsyncSession, invoice_id: UUID, identity: Identity
) -> dict[str, Any]:
    """One invoice the caller may see; another client's is "Not found." too."""
    query = visible_to(invoices_with_clients(), identity)
    row = await _first(session, query.where(invoices.c.id == invoice_id))
    if row is None:
        raise NotFound()
    return dict(row)


async def validate_invoice(
    session: AsyncSession,
    directory: ClientDirectory,
    body: Any,
    *,
    partial: bool,
) -> dict[str, Any]:
    """The body's values, or one 400 with every field's errors, the client's included.

    The client must exist: the local copy is asked first, then the clients
    service once (ClientDirectory), as DRF's PrimaryKeyRelatedField would.
    """
    errors: dict[str, Any] = {}
    try:
        data = InvoiceWrite.validate(body, partial=partial)
    except ValidationFailed as failure:
        errors = dict(failure.detail)
        if "non_field_errors" in errors:
            raise
        data = {}
        if "client" not in errors and "client" in body:
            data["client_id"] = InvoiceWrite.fields["client"].clean(body["client"])

    client_id = data.get("client_id")
    if (
        client_id is not None
        and await directory.find_client(session, client_id) is None
    ):
        errors["client"] = [does_not_exist(client_id)]
    if errors:
        raise ValidationFailed(
            {name: errors[name] for name in InvoiceWrite.fields if name in errors}
        )
    return data


async def _hold_client(session: AsyncSession, client_id: UUID) -> None:
    """Keep the client from being deleted until this transaction ends.

    A `client.deleted` handled meanwhile waits for us, then removes what we
    wrote too; one handled just before makes this a 400.
    """
    held = await session.scalar(
        select(clients.c.id)
        .where(clients.c.id == client_id, clients.c.is_deleted.is_(False))
        .with_for_update(read=True)
    )
    if held is None:
        raise UnknownClient(client_id)


async def issue_invoice(
    session: AsyncSession, clock: Clock, data: dict[str, Any]
) -> dict[str, Any]:
    """Create an invoice with the next number of this year; `data` is validated."""
    client_id = data["client_id"]
    await _hold_client(session, client_id)
    now, today = clock.now(), clock.today()

    status = data.get("status") or "pending"
    paid_date = data.get("paid_date")
    if status == "paid" and paid_date is None:
        paid_date = today
    sequence = await take_next_number(session, today.year)
    values = {
        "id": uuid4(),
        "client_id": client_id,
        "invoice_number": format_invoice_number(today.year, sequence),
        "invoice_year": today.year,
        "invoice_sequence": sequence,
        "amount": data["amount"],
        "type": data["type"],
        "status": status,
        "due_date": data["due_date"],
        "paid_date": paid_date,
        "stripe_invoice_id": data.get("stripe_invoice_id"),
        "created_at": now,
        "updated_at": now,
    }
    [row] = await _all(session, invoices.insert().values(**values).returning(invoices))

    payload = events.invoice_payload(
        row, status=effective_status(row, today), previous_status=None
    )
    await record_event(session, events.INVOICE_CREATED, payload, source=SOURCE)
    await _announce_if_overdue(session, clock, row, previous_status=None)
    log.info(
        "invoice.issued",
        invoice_id=str(row["id"]),
        invoice_number=row["invoice_number"],
        invoice_client_id=str(client_id),
    )
    return await _reread(session, row["id"])


async def update_invoice(
    session: AsyncSession,
    clock: Clock,
    invoice_id: UUID,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Change an invoice (PUT or PATCH values); paid without a date is paid today."""
    if "client_id" in data:
        await _hold_client(session, data["client_id"])
    locked = select(invoices).where(invoices.c.id == invoice_id).with_for_update()
    current = await _first(session, locked)
    if current is None:
        raise NotFound()
    now, today = clock.now(), clock.today()

    values = dict(data)
    merged = {**current, **values}
    if merged["status"] == "paid" and merged["paid_date"] is None:
        values["paid_date"] = today
    values["updated_at"] = now
    change = update(invoices).where(invoices.c.id == invoice_id).values(**values)
    [row] = await _all(session, change.returning(invoices))

    previous_status = effective_status(current, today)
    payload = events.invoice_payload(
        row, status=effective_status(row, today), previous_status=previous_status
    )
    await record_event(session, events.INVOICE_UPDATED, payload, source=SOURCE)
    await _announce_if_overdue(session, clock, row, previous_status=previous_status)
    log.info(
        "invoice.updated",
        invoice_id=str(invoice_id),
        fields=sorted(data),
        status=payload["status"],
        previous_status=previous_status,
    )
    return await _reread(session, invoice_id)


async def delete_invoice(session: AsyncSession, clock: Clock, invoice_id: UUID) -> None:
    removal = delete(invoices).where(invoices.c.id == invoice_id)
    row = await _first(session, removal.returning(invoices))
    if row is None:
        raise NotFound()

    await _record_deleted(session, row, clock.today())
    log.info("invoice.deleted", invoice_id=str(invoice_id))


async def remove_client_invoices(
    session: AsyncSession, clock: Clock, client_id: UUID
) -> int:
    """A deleted client's invoices go with it; the number of invoices removed."""
    removal = delete(invoices).where(invoices.c.client_id == client_id)
    rows = await _all(session, removal.returning(invoices))
    today = clock.today()
    for row in rows:
        await _record_deleted(session, row, today)
    return len(rows)


async def _record_deleted(session: AsyncSession, row: Any, today: date) -> None:
    payload = events.invoice_payload(
        row, status=effective_status(row, today), previous_status=None
    )
    await record_event(session, events.INVOICE_DELETED, payload, source=SOURCE)


async def _reread(session: AsyncSession, invoice_id: UUID) -> dict[str, Any]:
    [row] = await _all(
        session, invoices_with_clients().where(invoices.c.id == invoice_id)
    )
    return dict(row)


async def _announce_if_overdue(
    session: AsyncSession, clock: Clock, row: Any, *, previous_status: str | None
) -> None:
    """Store and publish "overdue" the first time a write makes an invoice so."""
    if row["overdue_notified_at"] is not None:
        return
    if effective_status(row, clock.today()) != "overdue":
        return
    change = (
        update(invoices)
        .where(invoices.c.id == row["id"])
        .values(status="overdue", overdue_notified_at=clock.now())
    )
    [marked] = await _all(session, change.returning(invoices))
    payload = events.invoice_payload(
        marked, status="overdue", previous_status=previous_status
    )
    await record_event(session, events.INVOICE_OVERDUE, payload, source=SOURCE)
    log.info("invoice.overdue", invoice_id=str(row["id"]))


async def _claim(session: AsyncSession, *conditions: Any) -> list[Any]:
    """Lock the matching invoices, skipping any a request is changing right now.

    A skipped invoice is simply handled by the next sweep; taking rows in id
    order without waiting means a sweep never deadlocks with a request or the
    `client.deleted` handler.
    """
    query = (
        select(invoices.c.id, invoices.c.status)
        .where(*conditions)
        .order_by(invoices.c.id)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).all())


async def mark_overdue_invoices(session: AsyncSession, clock: Clock) -> int:
    """Store "overdue" for unpaid invoices past due; publish each one's notice once.

    The number of `invoice.overdue` events recorded.
    """
    now, today = clock.now(), clock.today()
    past_due = and_(invoices.c.status == "pending", invoices.c.due_date < today)
    unannounced = await _claim(
        session,
        invoices.c.overdue_notified_at.is_(None),
        or_(past_due, invoices.c.status == "overdue"),
    )
    previous = {claimed.id: claimed.status for claimed in unannounced}
    change = (
        update(invoices)
        .where(invoices.c.id.in_(previous))
        .values(status="overdue", overdue_notified_at=now)
    )
    rows = await _all(session, change.returning(invoices)) if previous else []
    for row in rows:
        payload = events.invoice_payload(
            row, status="overdue", previous_status=previous[row["id"]]
        )
        await record_event(session, events.INVOICE_OVERDUE, payload, source=SOURCE)
        log.info("invoice.overdue", invoice_id=str(row["id"]))

    # Announced before (staff set it back to pending): the status is stored
    # again, without a second notice.
    announced = await _claim(session, past_due)
    if announced:
        await session.execute(
            update(invoices)
            .where(invoices.c.id.in_([claimed.id for claimed in announced]))
            .values(status="overdue")
        )
    return len(rows)


async def remind_due_soon_invoices(session: AsyncSession, clock: Clock) -> int:
    """Publish `invoice.due_soon` once for each pending invoice due within 3 days."""
    now, today = clock.now(), clock.today()
    claimed = await _claim(
        session,
        invoices.c.status == "pending",
        invoices.c.due_soon_notified_at.is_(None),
        invoices.c.due_date >= today,
        invoices.c.due_date <= today + timedelta(days=DUE_SOON_DAYS),
    )
    if not claimed:
        return 0
    change = (
        update(invoices)
        .where(invoices.c.id.in_([row.id for row in claimed]))
        .values(due_soon_notified_at=now)
    )
    rows = await _all(session, change.returning(invoices))
    for row in rows:
        payload = events.invoice_payload(row, status="pending", previous_status=None)
        await record_event(session, events.INVOICE_DUE_SOON, payload, source=SOURCE)
        log.info("invoice.due_soon", invoice_id=str(row["id"]))
    return len(rows)
