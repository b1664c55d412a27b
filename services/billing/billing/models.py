"""The billing service's tables: invoices, the per-year number counter, a copy of clients."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)

from portal_common.clients_copy import client_copy_table
from portal_common.events import outbox_table, processed_events_table

metadata = MetaData()

INVOICE_TYPES = ("setup", "monthly", "additional")
INVOICE_STATUSES = ("pending", "paid", "overdue")

invoices = Table(
    "invoice",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("invoice_number", String(32), nullable=False, unique=True),
    # The parts of the number, so it orders as a number (INV-2024-999 before
    # INV-2024-1000) and the pair stays unique whatever the format.
    Column("invoice_year", Integer, nullable=False),
    Column("invoice_sequence", Integer, nullable=False),
    Column("amount", Numeric(10, 2), nullable=False),
    Column("type", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("paid_date", Date, nullable=True),
    Column("stripe_invoice_id", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When the reminder and the overdue notice were published: each goes out
    # once per invoice, however often the sweep runs.
    Column("due_soon_notified_at", DateTime(timezone=True), nullable=True),
    Column("overdue_notified_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint(
        "invoice_year", "invoice_sequence", name="uq_invoice_year_sequence"
    ),
    CheckConstraint("amount >= 0", name="ck_invoice_amount_not_negative"),
    CheckConstraint(f"type IN {INVOICE_TYPES!r}", name="ck_invoice_type"),
    CheckConstraint(f"status IN {INVOICE_STATUSES!r}", name="ck_invoice_status"),
    Index("ix_invoice_created_at_id", "created_at", "id"),
    Index("ix_invoice_client_id_created_at_id", "client_id", "created_at", "id"),
    Index("ix_invoice_status_due_date", "status", "due_date"),
    Index("ix_invoice_type", "type"),
)

# One row per year; `last_number` is the last number issued in that year.
invoice_counter = Table(
    "invoice_counter",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last_number", Integer, nullable=False),
)

clients = client_copy_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
