"""API credentials of clients, stored encrypted (see clients.encryption).

A credential arrives either as `data`, a JSON object this service encrypts
under the newest key, or as `encrypted_data`, a Fernet token that must
decrypt under one of the configured keys; it is then stored re-encrypted
under the newest key, so nothing new is written under a key being retired.
Nothing here logs or returns the plaintext.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.encryption import CredentialCipher, InvalidToken
from clients.exceptions import UnknownClient, UnreadableEncryptedData
from clients.models import clients, credentials
from portal_common.errors import NotFound, ValidationFailed

log = structlog.get_logger("clients.credentials")

INVALID = "invalid"


def credential_query() -> Select[Any]:
    """Credentials with their client's name, the shape every read uses."""
    return select(credentials, clients.c.company_name.label("client_name")).join(
        clients, clients.c.id == credentials.c.client_id
    )


def reported_status(cipher: CredentialCipher, row: Any) -> str:
    """The stored status, or `invalid` when no configured key reads the data.

    Status filters work on the stored status, so `?status=active` may still
    list a row reported as invalid; fixing that would mean storing the
    outcome, which only the rotation command is placed to do.
    """
    if cipher.is_readable(row["encrypted_data"]):
        return row["status"]
    log.warning("credential.undecryptable", credential_id=str(row["id"]))
    return INVALID


async def get_credential(
    session: AsyncSession, credential_id: UUID, *, client_id: UUID | None = None
) -> dict[str, Any]:
    """One credential; `client_id` limits it to that client's (else not found)."""
    query = credential_query().where(credentials.c.id == credential_id)
    if client_id is not None:
        query = query.where(credentials.c.client_id == client_id)
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


def _sealed(
    cipher: CredentialCipher, data: dict[str, Any], *, required: bool
) -> str | None:
    """Take `data` and `encrypted_data` out of `data`: the token to store, if any.

    Exactly one of them is allowed (and, with `required`, needed).
    """
    plain = data.pop("data", None)
    token = data.pop("encrypted_data", None)
    if plain is not None and token is not None:
        raise ValidationFailed.non_field(
            "Send either data or encrypted_data, not both."
        )
    if plain is None and token is None:
        if required:
            raise ValidationFailed.non_field("Send either data or encrypted_data.")
        return None
    if plain is not None:
        return cipher.encrypt(plain)
    try:
        return cipher.rotate(token)
    except InvalidToken:
        raise UnreadableEncryptedData() from None


async def _ensure_client(session: AsyncSession, client_id: UUID) -> None:
    found = await session.scalar(select(clients.c.id).where(clients.c.id == client_id))
    if found is None:
        raise UnknownClient(client_id)


async def create_credential(
    session: AsyncSession, cipher: CredentialCipher, data: dict[str, Any]
) -> dict[str, Any]:
    sealed = _sealed(cipher, data, required=True)
    await _ensure_client(session, data["client_id"])

    now = datetime.now(UTC)
    credential_id = uuid4()
    await session.execute(
        credentials.insert().values(
            id=credential_id,
            **data,
            encrypted_data=sealed,
            created_at=now,
            updated_at=now,
        )
    )

    log.info(
        "credential.created",
        credential_id=str(credential_id),
        target_client_id=str(data["client_id"]),
    )
    return await get_credential(session, credential_id)


async def update_credential(
    session: AsyncSession,
    cipher: CredentialCipher,
    credential_id: UUID,
    data: dict[str, Any],
    *,
    partial: bool,
) -> dict[str, Any]:
    sealed = _sealed(cipher, data, required=not partial)
    await get_credential(session, credential_id)
    if "client_id" in data:
        await _ensure_client(session, data["client_id"])

    values = dict(data, updated_at=datetime.now(UTC))
    if sealed is not None:
        values["encrypted_data"] = sealed
    await session.execute(
        update(credentials).where(credentials.c.id == credential_id).values(**values)
    )

    fields = sorted(data) + (["encrypted_data"] if sealed is not None else [])
    log.info("credential.updated", credential_id=str(credential_id), fields=fields)
    if sealed is not None:
        log.info("credential.rotated", credential_id=str(credential_id))
    return await get_credential(session, credential_id)


async def delete_credential(session: AsyncSession, credential_id: UUID) -> None:
    await get_credential(session, credential_id)
    await session.execute(delete(credentials).where(credentials.c.id == credential_id))
    log.info("credential.deleted", credential_id=str(credential_id))
