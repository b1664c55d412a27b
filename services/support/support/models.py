"""The support service's tables: tickets, notifications (owed mails), client copy."""

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)

from portal_common.clients_copy import client_copy_table
from portal_common.events import outbox_table, processed_events_table

metadata = MetaData()

TICKET_STATUSES = ("open", "in_progress", "resolved")
TICKET_PRIORITIES = ("low", "medium", "high")

tickets = Table(
    "ticket",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("priority", String(10), nullable=False, server_default="medium"),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    Column(
        "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    # One index per default order, ordering field and filter of the list.
    Index("ix_ticket_created_at_id", "created_at", "id"),
    Index("ix_ticket_updated_at_id", "updated_at", "id"),
    Index("ix_ticket_client_id_created_at", "client_id", "created_at", "id"),
    Index("ix_ticket_status_created_at", "status", "created_at"),
    Index("ix_ticket_priority_created_at", "priority", "created_at"),
)

# pending: not tried yet; retrying: failed for a passing reason, tried again
# at next_attempt_at; sent; failed: refused for good (a 5xx for the
# recipient or the content), never tried again.
NOTIFICATION_STATUSES = ("pending", "retrying", "sent", "failed")
DUE_STATUSES = ("pending", "retrying")

notifications = Table(
    "notification",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", String(500), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    # Set while one sender holds the mail; another may take it only once
    # this has passed (the holder crashed). Also the holder's fencing token.
    Column("leased_until", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    # `<entity id>:<event type>:<recipient role>`: a redelivered or
    # re-published event, or a second replica, can never owe a second mail.
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("event_id", String(255), nullable=False),
    Index("ix_notification_created_at_id", "created_at", "id"),
    Index("ix_notification_status_created_at", "status", "created_at"),
    Index("ix_notification_kind_created_at", "kind", "created_at"),
    Index(
        "ix_notification_due",
        "next_attempt_at",
        postgresql_where=text("status IN ('pending', 'retrying')"),
    ),
)

client_copy = client_copy_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
