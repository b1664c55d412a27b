"""Request bodies (validated the Django REST Framework way) and response shapes."""

from decimal import Decimal
from typing import Any

from portal_common.fields import (
    CharField,
    ChoiceField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    JSONObjectField,
    ReadOnly,
    RelatedIdField,
    Serializer,
    iso_date,
    iso_datetime,
    money,
)

CLIENT_STATUSES = ("active", "paused", "churned")
BILLING_CYCLES = ("monthly", "yearly")
CREDENTIAL_TYPES = ("oauth", "api_key", "basic_auth")
CREDENTIAL_STATUSES = ("active", "expired", "invalid")

ZERO = Decimal("0.00")


def _money_field() -> DecimalField:
    return DecimalField(max_digits=10, decimal_places=2, min_value=ZERO, default=ZERO)


class ClientCreate(Serializer):
    id = ReadOnly()
    company_name = CharField(max_length=255)
    contact_name = CharField(max_length=255)
    email = EmailField(max_length=254)
    phone = CharField(max_length=20, required=False, allow_blank=True, default="")
    status = ChoiceField(CLIENT_STATUSES, default="active")
    plan_tier = CharField(max_length=100)
    setup_fee = _money_field()
    monthly_fee = _money_field()
    billing_cycle = ChoiceField(BILLING_CYCLES, default="monthly")
    next_billing_date = DateField(required=False, allow_null=True, default=None)
    notes = CharField(required=False, allow_blank=True, default="")
    workflows_count = ReadOnly()
    active_workflows_count = ReadOnly()
    created_at = ReadOnly()
    updated_at = ReadOnly()


class ClientUpdate(ClientCreate):
    pass


class ClientOwnUpdate(Serializer):
    """What a client's own user may change about their company."""

    contact_name = CharField(max_length=255)
    email = EmailField(max_length=254)
    phone = CharField(max_length=20, required=False, allow_blank=True, default="")


# Writable fields a client's user may not send at all (CONTRACT.md §3).
STAFF_ONLY_CLIENT_FIELDS = (
    frozenset(ClientCreate.fields)
    - frozenset(ClientOwnUpdate.fields)
    - {"id", "workflows_count", "active_workflows_count", "created_at", "updated_at"}
)


def client_read(row: Any, counts: tuple[int, int]) -> dict[str, Any]:
    """The staff view of a client (reference: GET /api/clients/)."""
    workflows_count, active_workflows_count = counts
    return {
        "id": str(row["id"]),
        "company_name": row["company_name"],
        "contact_name": row["contact_name"],
        "email": row["email"],
        "phone": row["phone"],
        "status": row["status"],
        "plan_tier": row["plan_tier"],
        "setup_fee": money(row["setup_fee"]),
        "monthly_fee": money(row["monthly_fee"]),
        "billing_cycle": row["billing_cycle"],
        "next_billing_date": iso_date(row["next_billing_date"]),
        "notes": row["notes"],
        "workflows_count": workflows_count,
        "active_workflows_count": active_workflows_count,
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }


def client_read_limited(row: Any, counts: tuple[int, int]) -> dict[str, Any]:
    """A client's user's view (reference: GET /api/clients/me/)."""
    return {
        "id": str(row["id"]),
        "company_name": row["company_name"],
        "contact_name": row["contact_name"],
        "email": row["email"],
        "phone": row["phone"],
        "status": row["status"],
        "plan_tier": row["plan_tier"],
        "billing_cycle": row["billing_cycle"],
        "workflows_count": counts[0],
        "created_at": iso_datetime(row["created_at"]),
    }


def client_internal(row: Any) -> dict[str, Any]:
    """What other services store of a client (GET /internal/clients/{id})."""
    return {
        "id": str(row["id"]),
        "company_name": row["company_name"],
        "contact_name": row["contact_name"],
        "email": row["email"],
        "status": row["status"],
        "plan_tier": row["plan_tier"],
        "updated_at": iso_datetime(row["updated_at"]),
    }


class CredentialCreate(Serializer):
    """`data` (a JSON object, encrypted here) or `encrypted_data` (a Fernet token)."""

    id = ReadOnly()
    client = RelatedIdField(source="client_id")
    client_name = ReadOnly()
    service_name = CharField(max_length=100)
    credential_type = ChoiceField(CREDENTIAL_TYPES)
    data = JSONObjectField(
        required=False,
        help_text="The secret as a JSON object; the service encrypts it.",
    )
    encrypted_data = CharField(
        required=False,
        help_text="A Fernet token made with a configured key, instead of `data`.",
    )
    status = ChoiceField(CREDENTIAL_STATUSES, default="active")
    last_verified = DateTimeField(required=False, allow_null=True, default=None)
    created_at = ReadOnly()
    updated_at = ReadOnly()


class CredentialUpdate(CredentialCreate):
    pass


def credential_read(row: Any, *, status: str) -> dict[str, Any]:
    """The staff view of a credential; `status` is the one to report."""
    return {
        "id": str(row["id"]),
        "client": str(row["client_id"]),
        "client_name": row["client_name"],
        "service_name": row["service_name"],
        "credential_type": row["credential_type"],
        "encrypted_data": row["encrypted_data"],
        "status": status,
        "last_verified": iso_datetime(row["last_verified"]),
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }


def credential_read_limited(row: Any, *, status: str) -> dict[str, Any]:
    """A client's user's view: never the encrypted data."""
    return {
        "id": str(row["id"]),
        "client_name": row["client_name"],
        "service_name": row["service_name"],
        "credential_type": row["credential_type"],
        "status": status,
        "last_verified": iso_datetime(row["last_verified"]),
        "created_at": iso_datetime(row["created_at"]),
    }
