"""The workflows service's tables.

`workflow` is a client's n8n workflow as the portal knows it. `execution_record`
holds one row per workflow and calendar day with that day's counts (unique per
workflow and date). `n8n_execution` remembers every finished n8n execution the
service has taken in, keyed by n8n's execution id, so an execution is counted
once however often it is delivered; `is_counted` is false while its n8n
workflow is not registered yet (the execution waits there and is counted when
the workflow appears). `workflow_alert` remembers which health conditions have
been reported, so each episode is reported once.
"""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from portal_common.clients_copy import client_copy_table
from portal_common.events import outbox_table, processed_events_table

metadata = MetaData()

WORKFLOW_STATUSES = ("active", "paused", "error")
# n8n's ids are short (16 characters today); room for other instances' forms.
N8N_ID_LENGTH = 255
NAME_LENGTH = 255
URL_LENGTH = 500
INTEGER_MAX = 2147483647

workflows = Table(
    "workflow",
    metadata,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("client_id", Uuid, nullable=False),
    Column("workflow_name", String(NAME_LENGTH), nullable=False),
    Column("n8n_workflow_id", String(N8N_ID_LENGTH), nullable=False, unique=True),
    Column("n8n_workflow_url", String(URL_LENGTH), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("last_execution", DateTime(timezone=True), nullable=True),
    Column("execution_count", Integer, nullable=False, server_default=text("0")),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    Column(
        "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    CheckConstraint(
        "status IN ('active', 'paused', 'error')", name="ck_workflow_status"
    ),
    Index("ix_workflow_created_at_id", "created_at", "id"),
    Index("ix_workflow_client_id_created_at", "client_id", "created_at"),
    Index("ix_workflow_status", "status"),
    Index("ix_workflow_workflow_name", "workflow_name"),
    Index("ix_workflow_last_execution", "last_execution"),
)

execution_records = Table(
    "execution_record",
    metadata,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("client_id", Uuid, nullable=False),
    Column(
        "workflow_id",
        Uuid,
        ForeignKey("workflow.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("execution_date", Date, nullable=False),
    Column("total_count", Integer, nullable=False, server_default=text("0")),
    Column("success_count", Integer, nullable=False, server_default=text("0")),
    Column("error_count", Integer, nullable=False, server_default=text("0")),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    Column(
        "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()
    ),
    # Also the index behind "the workflow's last 30 records" and the
    # `workflow` filter.
    UniqueConstraint(
        "workflow_id", "execution_date", name="uq_execution_record_workflow_date"
    ),
    Index("ix_execution_record_execution_date_id", "execution_date", "id"),
    Index(
        "ix_execution_record_client_id_execution_date", "client_id", "execution_date"
    ),
)

n8n_executions = Table(
    "n8n_execution",
    metadata,
    Column("execution_id", String(N8N_ID_LENGTH), primary_key=True),
    Column("n8n_workflow_id", String(N8N_ID_LENGTH), nullable=False),
    # Null while the n8n workflow is unknown, and again once the workflow is
    # deleted: the row stays, so a replay does not count the execution again.
    Column(
        "workflow_id",
        Uuid,
        ForeignKey("workflow.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("status", String(20), nullable=False),
    Column("execution_date", Date, nullable=False),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
    Column("is_counted", Boolean, nullable=False),
    Column(
        "received_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
    ),
    Index(
        "ix_n8n_execution_pending",
        "n8n_workflow_id",
        postgresql_where=text("NOT is_counted"),
    ),
    Index("ix_n8n_execution_workflow_id", "workflow_id"),
)

workflow_alerts = Table(
    "workflow_alert",
    metadata,
    Column(
        "workflow_id",
        Uuid,
        ForeignKey("workflow.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("condition", String(30), primary_key=True),
    Column(
        "reported_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
    ),
)

# When the health check last ran, so replicas share one round per interval.
health_check_runs = Table(
    "health_check_run",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("last_run_at", DateTime(timezone=True), nullable=False),
)

clients = client_copy_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
