"""Request bodies of the invoices API, validated the Django REST Framework way."""

from decimal import Decimal

from billing.models import INVOICE_STATUSES, INVOICE_TYPES
from portal_common.fields import (
    CharField,
    ChoiceField,
    DateField,
    DecimalField,
    ReadOnly,
    RelatedIdField,
    Serializer,
)


class InvoiceWrite(Serializer):
    """POST (all required fields), PUT (the same) and PATCH (any of them)."""

    id = ReadOnly()
    client = RelatedIdField(source="client_id")
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
