"""The clients service's tables: clients, their API credentials, workflow states."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
)

from portal_common.events import outbox_table, processed_events_table

metadata = MetaData()

clients = Table(
    "client",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("company_name", String(255), nullable=False),
    Column("contact_name", String(255), nullable=False),
    Column("email", String(254), nullable=False),
    Column("phone", String(20), nullable=False, server_default=""),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("plan_tier", String(100), nullable=False),
    Column("setup_fee", Numeric(10, 2), nullable=False, server_default="0.00"),
    Column("monthly_fee", Numeric(10, 2), nullable=False, server_default="0.00"),
    Column("billing_cycle", String(20), nullable=False, server_default="monthly"),
    Column("next_billing_date", Date, nullable=True),
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_client_created_at_id", "created_at", "id"),
    Index("ix_client_company_name_id", "company_name", "id"),
    Index("ix_client_monthly_fee_id", "monthly_fee", "id"),
    Index("ix_client_status", "status"),
    Index("ix_client_plan_tier", "plan_tier"),
    Index("ix_client_billing_cycle", "billing_cycle"),
)
# E-mail addresses are unique whatever their case (jane@x and JANE@x).
Index("uq_client_email_lower", func.lower(clients.c.email), unique=True)

# `encrypted_data` is a Fernet token (see clients.encryption); the plaintext
# is never stored.
credentials = Table(
    "credential",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "client_id",
        Uuid,
        ForeignKey("client.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("service_name", String(100), nullable=False),
    Column("credential_type", String(20), nullable=False),
    Column("encrypted_data", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("last_verified", DateTime(timezone=True), nullable=True),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    Column(
        "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    Index("ix_credential_created_at_id", "created_at", "id"),
    Index("ix_credential_service_name_id", "service_name", "id"),
    Index("ix_credential_credential_type", "credential_type"),
    Index("ix_credential_status", "status"),
)

# The last known state of every workflow, from workflow.* events, so the
# counts survive duplicates and out-of-order delivery: a row changes only for
# a newer event, and a deleted workflow stays as a tombstone.
workflow_states = Table(
    "workflow_state",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=True),
    Column("status", String(20), nullable=False, server_default=""),
    Column("is_deleted", Boolean, nullable=False, server_default="false"),
    Column("source_updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_workflow_state_client_id", "client_id"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
