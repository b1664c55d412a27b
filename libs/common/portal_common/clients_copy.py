"""Each service's own copy of the clients it needs to show or mail.

The clients service owns clients. Every other service keeps the few fields
it needs (company name, contact, e-mail, status) in a `client_copy` table,
updated from `client.*` events. Events may arrive twice or out of order:
each row remembers the `occurred_at` of the event it reflects, an older event
never overwrites a newer one, and a deletion leaves a tombstone so a late
`client.created` cannot bring the client back.

When a request names a client the copy does not know yet (created a moment
ago, its event still on the way), `find_client` asks the clients service once
over internal HTTP and stores the answer.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import structlog
from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Uuid, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.errors import ServiceUnavailable
from portal_common.internal import internal_headers

log = structlog.get_logger("clients_copy")

COPIED_FIELDS = ("company_name", "contact_name", "email", "status")


def client_copy_table(metadata: MetaData) -> Table:
    return Table(
        "client_copy",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("company_name", String(255), nullable=False, server_default=""),
        Column("contact_name", String(255), nullable=False, server_default=""),
        Column("email", String(254), nullable=False, server_default=""),
        Column("status", String(20), nullable=False, server_default="active"),
        Column("is_deleted", Boolean, nullable=False, server_default="false"),
        Column("source_updated_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class ClientChange:
    """What a `client.*` event did to the copy."""

    client_id: UUID
    applied: bool
    deleted: bool


async def apply_client_event(
    session: AsyncSession, table: Table, event_type: str, data: dict[str, Any], occurred_at: datetime
) -> ClientChange:
    """Fold one `client.created/updated/deleted` event into the copy.

    `data` carries `id` and, except for deletions, the client's current
    `company_name`, `contact_name`, `email` and `status`.
    """
    client_id = UUID(str(data["id"]))
    deleted = event_type == "client.deleted"
    values: dict[str, Any] = {"id": client_id, "source_updated_at": occurred_at, "is_deleted": deleted}
    if not deleted:
        values.update({name: data[name] for name in COPIED_FIELDS if data.get(name) is not None})
    statement = insert(table).values(**values)
    newer_only = table.c.source_updated_at < statement.excluded.source_updated_at
    update_columns = {name: statement.excluded[name] for name in values if name != "id"}
    result = await session.execute(
        statement.on_conflict_do_update(index_elements=[table.c.id], set_=update_columns, where=newer_only)
        .returning(table.c.id)
    )
    applied = result.first() is not None
    return ClientChange(client_id=client_id, applied=applied, deleted=deleted)


class ClientDirectory:
    """Reads the local copy, asking the clients service once for a stranger."""

    def __init__(self, table: Table, *, clients_url: str, internal_token: str) -> None:
        self.table = table
        self.clients_urls = [url for url in clients_url.split(",") if url]
        self.internal_token = internal_token

    async def find_client(self, session: AsyncSession, client_id: UUID) -> dict[str, Any] | None:
        """The client's copied fields, or None when no such client exists."""
        row = (await session.execute(select(self.table).where(self.table.c.id == client_id))).mappings().first()
        if row is not None:
            return None if row["is_deleted"] else dict(row)
        fetched = await self._fetch(client_id)
        if fetched is None:
            return None
        await apply_client_event(session, self.table, "client.created", fetched, _parse_time(fetched["updated_at"]))
        log.info("client_copy.fetched", client_id=str(client_id))
        return {**{name: fetched.get(name) for name in COPIED_FIELDS}, "id": client_id, "is_deleted": False}

    async def _fetch(self, client_id: UUID) -> dict[str, Any] | None:
        if not self.clients_urls:
            return None
        last_error: Exception | None = None
        for base in self.clients_urls:
            try:
                async with httpx.AsyncClient(timeout=5.0) as http:
                    response = await http.get(
                        f"{base}/internal/clients/{client_id}", headers=internal_headers(self.internal_token)
                    )
            except httpx.HTTPError as error:
                last_error = error
                continue
            if response.status_code == 404:
                return None
            if response.status_code == 200:
                return response.json()
            last_error = RuntimeError(f"clients service answered {response.status_code}")
        log.warning("client_copy.fetch_failed", client_id=str(client_id), error=str(last_error))
        raise ServiceUnavailable("The clients service is unavailable; try again shortly.")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
