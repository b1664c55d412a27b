"""Request bodies of the invoices API, validated the Django REST Framework way."""

import uuid
from decimal import Decimal
from typing import Any

from billing.models import INVOICE_STATUSES, INVOICE_TYPES
from portal_common.fields import (
    CharField,
    ChoiceField,
    DateField,
    DecimalField,
    Field,
    Invalid,
    ReadOnly,
    Serializer,
)


class ClientField(Field):
    """A client id, with DRF's PrimaryKeyRelatedField messages for a UUID key.

    Whether the client exists is checked by the service, which knows the
    clients; the message for an unknown one is DRF's `does_not_exist`.
    """

    openapi = {"type": "string", "format": "uuid"}

    def to_internal(self, data: Any) -> uuid.UUID:
        if isinstance(data, bool) or not isinstance(data, str | int):
            kind = type(data).__name__
            raise Invalid(f"Incorrect type. Expected pk value, received {kind}.")
        try:
            # Django's UUIDField reads an integer as the UUID's 128-bit value.
            if isinstance(data, int):
                return uuid.UUID(int=data)
            return uuid.UUID(data)
        except ValueError:
            raise Invalid(f"\u201c{data}\u201d is not a valid UUID.") from None


def client_does_not_exist(client_id: Any) -> str:
    return f'Invalid pk "{client_id}" - object does not exist.'


class InvoiceWrite(Serializer):
    """POST (all required fields), PUT (the same) and PATCH (any of them)."""

    id = ReadOnly()
    client = ClientField(source="client_id")
    client_name = ReadOnly()
    invoice_number = ReadOnly()
    amount = DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0.00"))
    type = ChoiceField(INVOICE_TYPES)
    # Optional without a default: a PUT that leaves it out keeps the stored
    # status, as DRF does for a model field with a default; a new invoice
    # is pending.
    status = ChoiceField(INVOICE_STATUSES, required=False)
    due_date = DateField()
    paid_date = DateField(required=False, allow_null=True)
    stripe_invoice_id = CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True
    )
    is_overdue = ReadOnly()
    created_at = ReadOnly()
    updated_at = ReadOnly()
