"""The events billing publishes: its public contract (CONTRACT.md §5).

Every invoice event carries the same payload, the invoice as the API shows
it at that moment:

    {"id", "client_id", "invoice_number", "amount": "299.00", "type",
     "status", "due_date", "paid_date", "previous_status"}

- `invoice.created`: a new invoice; `previous_status` is null.
- `invoice.updated`: every change made through the API, with the status the
  API showed before it in `previous_status`.
- `invoice.overdue`: the invoice became overdue (its due date passed while it
  was unpaid, or staff set it so); once per invoice. The sweep that persists
  an overdue status the API already showed publishes only this one.
- `invoice.due_soon`: the reminder for a pending invoice due within three
  days; once per invoice.
- `invoice.deleted`: staff deleted the invoice, or its client was deleted.
"""

from typing import Any

from portal_common.fields import iso_date, money

INVOICE_CREATED = "invoice.created"
INVOICE_UPDATED = "invoice.updated"
INVOICE_OVERDUE = "invoice.overdue"
INVOICE_DUE_SOON = "invoice.due_soon"
INVOICE_DELETED = "invoice.deleted"


def invoice_payload(
    row: Any, *, status: str, previous_status: str | None
) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "client_id": str(row["client_id"]),
        "invoice_number": row["invoice_number"],
        "amount": money(row["amount"]),
        "type": row["type"],
        "status": status,
        "due_date": iso_date(row["due_date"]),
        "paid_date": iso_date(row["paid_date"]),
        "previous_status": previous_status,
    }
