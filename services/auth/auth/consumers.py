"""Other services' events the auth service acts on; each handler is safe to run twice."""

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from auth import service
from auth.models import clients
from portal_common.clients_copy import apply_client_event
from portal_common.events import Envelope

log = structlog.get_logger("auth.consumers")


async def on_client_event(session: AsyncSession, envelope: Envelope) -> None:
    """Keep the client's name for login answers; a deleted client's users lose access."""
    change = await apply_client_event(
        session, clients, envelope.event_type, envelope.data, envelope.occurred_at
    )
    if change.deleted:
        count = await service.deactivate_client_users(session, change.client_id)
        log.info("client.users_deactivated", client_id=str(change.client_id), users=count)
