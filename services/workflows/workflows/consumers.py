"""Events the workflows service acts on; each handler is safe to run twice."""

from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.clients_copy import apply_client_event
from portal_common.consumer import RawMessage
from portal_common.events import Envelope, PermanentEventError
from workflows import service
from workflows.ingest import InvalidExecution, parse_execution, record_executions
from workflows.models import clients
from workflows.runtime import runtime

log = structlog.get_logger("workflows.consumers")


async def on_client_event(session: AsyncSession, envelope: Envelope) -> None:
    """Keep client names for the lists; a deleted client's workflows go with it."""
    try:
        UUID(str(envelope.data.get("id")))
    except ValueError:
        raise PermanentEventError("client event without a valid client id") from None
    change = await apply_client_event(
        session, clients, envelope.event_type, envelope.data, envelope.occurred_at
    )
    if change.deleted:
        removed = await service.remove_client_workflows(session, change.client_id)
        log.info(
            "client.workflows_removed",
            client_id=str(change.client_id),
            workflows=removed,
        )


async def on_n8n_executions(session: AsyncSession, messages: list[RawMessage]) -> None:
    """Count a batch of n8n execution reports; set malformed items aside."""
    zone = runtime.settings.zone
    reports = []
    rejected = 0
    for message in messages:
        items = message.data if isinstance(message.data, list) else [message.data]
        reasons = []
        for index, item in enumerate(items):
            try:
                reports.append(parse_execution(item, zone))
            except InvalidExecution as error:
                where = f"item {index}: " if isinstance(message.data, list) else ""
                reasons.append(f"{where}{error}")
        if reasons:
            # The valid items of the message are counted all the same; the
            # dead letter carries the whole message, and replaying it counts
            # nothing twice.
            message.reject("; ".join(reasons))
            rejected += len(reasons)

    summary = await record_executions(session, reports)
    for n8n_workflow_id in sorted(summary.pending_workflow_ids):
        log.info("execution.workflow_unknown", n8n_workflow_id=n8n_workflow_id[:64])
    log.info(
        "executions.recorded",
        messages=len(messages),
        counted=summary.counted,
        pending=summary.pending,
        duplicates=summary.duplicates,
        unfinished=summary.unfinished,
        rejected=rejected,
    )
