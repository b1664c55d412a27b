"""The auth service's tables: users, token hashes, failed logins, a copy of clients."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
)

from portal_common.clients_copy import client_copy_table
from portal_common.events import outbox_table, processed_events_table

metadata = MetaData()

users = Table(
    "user",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("email", String(254), nullable=False, server_default=""),
    Column("password_hash", String(255), nullable=False),
    Column("is_staff", Boolean, nullable=False, server_default="false"),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    Column("client_id", Uuid, nullable=True, index=True),
    Column("last_login_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_user_created_at_id", "created_at", "id"),
)

# Only a SHA-256 of each key is stored; the key itself exists only in the
# login answer. 160 random bits make a plain hash as good as a slow one here.
tokens = Table(
    "token",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

login_failures = Table(
    "login_failure",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("scope", String(300), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_login_failure_scope_failed_at", "scope", "failed_at"),
)

clients = client_copy_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
