"""Clients: creating, changing and deleting them, and their workflow counts.

Every change is announced in the same transaction through the outbox:
`client.created`, `client.updated` (with the names of the changed fields)
and `client.deleted`. The event is recorded before the row is written so
the row's `updated_at` can be exactly the envelope's `occurred_at` (which
`record_event` chooses); both commit together or not at all.
"""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clients import events
from clients.exceptions import DuplicateEmail
from clients.models import clients, workflow_states
from portal_common.errors import NotFound
from portal_common.events import Envelope, record_event

log = structlog.get_logger("clients")
SOURCE = "clients"
NO_WORKFLOWS = (0, 0)


def _event_moment(envelope: Envelope) -> datetime:
    # Envelopes carry milliseconds; the row keeps the same instant, so the
    # timestamp in the event and in the internal look-up compare equal.
    moment = envelope.occurred_at
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def get_client(
    session: AsyncSession, client_id: UUID, *, lock: bool = False
) -> dict[str, Any]:
    query = select(clients).where(clients.c.id == client_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


async def workflow_counts(
    session: AsyncSession, client_ids: list[UUID]
) -> dict[UUID, tuple[int, int]]:
    """(workflows, active workflows) per client, in one grouped query."""
    if not client_ids:
        return {}
    live = workflow_states.c.is_deleted.is_(False)
    is_active = and_(live, workflow_states.c.status == "active")
    rows = await session.execute(
        select(
            workflow_states.c.client_id,
            func.count().filter(live),
            func.count().filter(is_active),
        )
        .where(workflow_states.c.client_id.in_(client_ids))
        .group_by(workflow_states.c.client_id)
    )
    return {client_id: (total, active) for client_id, total, active in rows}


async def _ensure_unique_email(
    session: AsyncSession, email: str, *, exclude: UUID | None = None
) -> None:
    query = select(clients.c.id).where(func.lower(clients.c.email) == email.lower())
    if exclude is not None:
        query = query.where(clients.c.id != exclude)
    if await session.scalar(query) is not None:
        raise DuplicateEmail()


async def create_client(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    await _ensure_unique_email(session, data["email"])

    values = {"id": uuid4(), **data}
    envelope = await record_event(
        session, events.CLIENT_CREATED, events.client_created(values), source=SOURCE
    )
    moment = _event_moment(envelope)
    statement = (
        clients.insert()
        .values(**values, created_at=moment, updated_at=moment)
        .returning(clients)
    )
    try:
        row = (await session.execute(statement)).mappings().one()
    except IntegrityError:
        # Another request took the address between the check and the insert.
        raise DuplicateEmail() from None

    log.info("client.created", target_client_id=str(row["id"]))
    return dict(row)


async def update_client(
    session: AsyncSession, client_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Apply `data`; a change that changes nothing records no event."""
    current = await get_client(session, client_id, lock=True)
    if "email" in data and data["email"] != current["email"]:
        await _ensure_unique_email(session, data["email"], exclude=client_id)

    changed = [name for name, value in data.items() if current[name] != value]
    if not changed:
        return current

    new_state = {**current, **data}
    payload = events.client_updated(new_state, changed)
    envelope = await record_event(
        session, events.CLIENT_UPDATED, payload, source=SOURCE
    )
    values = {name: data[name] for name in changed}
    statement = (
        update(clients)
        .where(clients.c.id == client_id)
        .values(**values, updated_at=_event_moment(envelope))
        .returning(clients)
    )
    try:
        row = (await session.execute(statement)).mappings().one()
    except IntegrityError:
        raise DuplicateEmail() from None

    log.info("client.updated", target_client_id=str(client_id), fields=changed)
    return dict(row)


async def delete_client(session: AsyncSession, client_id: UUID) -> None:
    """Delete the client and its credentials; other services cascade on the event."""
    await get_client(session, client_id, lock=True)

    await session.execute(delete(clients).where(clients.c.id == client_id))
    await record_event(
        session, events.CLIENT_DELETED, events.client_deleted(client_id), source=SOURCE
    )

    log.info("client.deleted", target_client_id=str(client_id))
