"""Other services' client events, kept in this service's copy; safe to run twice."""

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.clients_copy import apply_client_event
from portal_common.events import Envelope
from support.models import client_copy
from support.tickets import service

log = structlog.get_logger("support.consumers")


async def on_client_event(session: AsyncSession, envelope: Envelope) -> None:
    """Keep each client's name and address; a deleted client's tickets go with it."""
    change = await apply_client_event(
        session, client_copy, envelope.event_type, envelope.data, envelope.occurred_at
    )
    if change.deleted:
        count = await service.delete_client_tickets(session, change.client_id)
        log.info(
            "client.tickets_deleted", client_id=str(change.client_id), tickets=count
        )
