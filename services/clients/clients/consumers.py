"""Other services' events the clients service acts on; safe to handle twice.

The workflow counts of a client come from `workflow_state`, one row per
workflow with the `occurred_at` of the last event applied to it. An event
changes the row only when it is newer than that, so a duplicate or a late
older event does nothing; a deletion leaves a tombstone that no later
(or late) event brings back, since workflow ids are never reused. The counts
are derived from those rows when a client is read, never kept as numbers
that a replayed event could increment twice.
"""

from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clients.models import workflow_states
from portal_common.events import Envelope, PermanentEventError

log = structlog.get_logger("clients.consumers")

WORKFLOW_CREATED = "workflow.created"
WORKFLOW_UPDATED = "workflow.updated"
WORKFLOW_DELETED = "workflow.deleted"
COUNTED_EVENTS = (WORKFLOW_CREATED, WORKFLOW_UPDATED, WORKFLOW_DELETED)
STATUS_LENGTH = workflow_states.c.status.type.length


def _uuid(data: dict[str, Any], name: str) -> UUID:
    try:
        return UUID(str(data[name]))
    except (KeyError, ValueError):
        raise PermanentEventError(f"workflow event without a valid {name!r}") from None


def _status(data: dict[str, Any]) -> str:
    status = data.get("status") or ""
    if not isinstance(status, str) or len(status) > STATUS_LENGTH:
        raise PermanentEventError("workflow event with an invalid 'status'")
    return status


async def on_workflow_event(session: AsyncSession, envelope: Envelope) -> None:
    """Keep each workflow's last known client and status, for the counts."""
    if envelope.event_type not in COUNTED_EVENTS:
        return  # workflow.health_alert and the like do not change the counts
    deleted = envelope.event_type == WORKFLOW_DELETED
    data = envelope.data
    values: dict[str, Any] = {
        "workflow_id": _uuid(data, "id"),
        "status": _status(data),
        "is_deleted": deleted,
        "source_updated_at": envelope.occurred_at,
    }
    # A deletion needs only the id: its tombstone may come before anything else.
    if not deleted or data.get("client_id") is not None:
        values["client_id"] = _uuid(data, "client_id")

    statement = insert(workflow_states).values(**values)
    incoming = statement.excluded
    stored = workflow_states.c
    # A tombstone stays; a deletion wins whatever its timestamp; anything
    # else only replaces an older state.
    applies = stored.is_deleted.is_(False) & or_(
        incoming.is_deleted.is_(True),
        stored.source_updated_at < incoming.source_updated_at,
    )
    result = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[stored.workflow_id],
            set_={name: incoming[name] for name in values if name != "workflow_id"},
            where=applies,
        ).returning(stored.workflow_id)
    )
    if result.first() is None:
        # An older event than the state we hold, or news of a deleted workflow.
        log.warning(
            "workflow_state.stale_skipped",
            workflow_id=str(values["workflow_id"]),
            event_type=envelope.event_type,
        )
