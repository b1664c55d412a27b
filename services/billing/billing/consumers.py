"""Other services' events billing acts on; each handler is safe to run twice."""

from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from billing import service
from billing.models import clients
from billing.runtime import runtime
from portal_common.clients_copy import COPIED_FIELDS, apply_client_event
from portal_common.events import Envelope, PermanentEventError

log = structlog.get_logger("billing.consumers")

CLIENT_EVENTS = ("client.created", "client.updated", "client.deleted")
# The copy's column lengths (portal_common.clients_copy).
COPIED_LENGTHS = {"company_name": 255, "contact_name": 255, "email": 254, "status": 20}


def _check_client_data(event_type: str, data: dict[str, Any]) -> None:
    """Refuse a payload the copy could never store (it would only be retried)."""
    try:
        UUID(str(data.get("id")))
    except ValueError:
        raise PermanentEventError("client event without a valid client id") from None
    if event_type == "client.deleted":
        return
    for name in COPIED_FIELDS:
        value = data.get(name)
        too_long = isinstance(value, str) and len(value) > COPIED_LENGTHS[name]
        if value is not None and (not isinstance(value, str) or too_long):
            raise PermanentEventError(f"client event with an invalid {name}")


async def on_client_event(session: AsyncSession, envelope: Envelope) -> None:
    """Keep client names for invoices and PDFs; a deleted client's invoices go too."""
    if envelope.event_type not in CLIENT_EVENTS:
        return
    _check_client_data(envelope.event_type, envelope.data)

    change = await apply_client_event(
        session, clients, envelope.event_type, envelope.data, envelope.occurred_at
    )
    if change.deleted:
        count = await service.remove_client_invoices(
            session, runtime.clock, change.client_id
        )
        log.info(
            "client.invoices_removed",
            deleted_client_id=str(change.client_id),
            invoices=count,
        )
