"""Users, logins and tokens.

Every change that other parts must hear about is recorded in the outbox in
the same transaction: `user.updated` when a user changes or disappears (the
gateway drops its cached identities of that user) and `token.revoked` when a
token is given up (the gateway drops that token at once).
"""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.models import clients, login_failures, tokens, users
from auth.security import hash_password, new_token, token_hash, verify_password
from portal_common.clients_copy import ClientDirectory
from portal_common.errors import NotFound, Throttled, ValidationFailed
from portal_common.events import record_event
from portal_common.fields import does_not_exist

log = structlog.get_logger("auth")
SOURCE = "auth"


async def client_summary(session: AsyncSession, client_id: UUID | None) -> dict[str, Any] | None:
    """`{id, company_name}` of the user's client, from this service's copy."""
    if client_id is None:
        return None
    name = await session.scalar(select(clients.c.company_name).where(clients.c.id == client_id))
    return {"id": str(client_id), "company_name": name}


async def check_login_throttle(
    session: AsyncSession, *, username: str, address: str, settings, now: datetime
) -> None:
    """Raise Throttled while a username or an address has failed too often."""
    window = timedelta(seconds=settings.login_failure_window_seconds)
    limits = {
        f"user:{username.lower()}": settings.login_failures_per_username,
        f"addr:{address}": settings.login_failures_per_address,
    }
    rows = await session.execute(
        select(login_failures.c.scope, func.count(), func.min(login_failures.c.failed_at))
        .where(login_failures.c.scope.in_(limits), login_failures.c.failed_at > now - window)
        .group_by(login_failures.c.scope)
    )
    for scope, count, oldest in rows:
        if count >= limits[scope]:
            wait = (oldest + window - now).total_seconds()
            log.warning("login.throttled", scope=scope.split(":")[0])
            raise Throttled(int(wait) + 1)


async def log_in(
    session: AsyncSession, *, username: str, password: str, address: str, settings
) -> dict[str, Any] | None:
    """Issue a new token for good credentials (the login answer), else None.

    A failure is recorded against the username and the address; too many of
    either within the window raise Throttled before the password is checked.
    """
    now = datetime.now(UTC)
    window = timedelta(seconds=settings.login_failure_window_seconds)
    await session.execute(delete(login_failures).where(login_failures.c.failed_at < now - window))
    await check_login_throttle(session, username=username, address=address, settings=settings, now=now)

    user = (await session.execute(select(users).where(users.c.username == username))).mappings().first()
    password_ok = await verify_password(password, user["password_hash"] if user else None)
    if user is None or not password_ok or not user["is_active"]:
        await session.execute(
            login_failures.insert(),
            [{"scope": f"user:{username.lower()}", "failed_at": now}, {"scope": f"addr:{address}", "failed_at": now}],
        )
        log.info("login.failed", user_id=user["id"] if user else None)
        return None

    key = new_token()
    await session.execute(tokens.insert().values(key_hash=token_hash(key), user_id=user["id"], created_at=now))
    await session.execute(update(users).where(users.c.id == user["id"]).values(last_login_at=now))
    log.info("login.succeeded", user_id=user["id"])
    return {
        "token": key,
        "user_id": user["id"],
        "username": user["username"],
        "email": user["email"],
        "is_staff": user["is_staff"],
        "client": await client_summary(session, user["client_id"]),
    }


async def revoke_token(session: AsyncSession, *, key_hash: str) -> None:
    row = (
        await session.execute(delete(tokens).where(tokens.c.key_hash == key_hash).returning(tokens.c.user_id))
    ).first()
    if row is not None:
        await record_event(session, "token.revoked", {"user_id": row.user_id, "token_hashes": [key_hash]}, source=SOURCE)
        log.info("token.revoked", user_id=row.user_id)


async def revoke_user_tokens(session: AsyncSession, user_id: int) -> None:
    hashes = (
        await session.execute(delete(tokens).where(tokens.c.user_id == user_id).returning(tokens.c.key_hash))
    ).scalars().all()
    if hashes:
        await record_event(session, "token.revoked", {"user_id": user_id, "token_hashes": list(hashes)}, source=SOURCE)
        log.info("token.revoked", user_id=user_id, count=len(hashes))


async def identity_for_token(session: AsyncSession, key: str) -> dict[str, Any] | None:
    """Who holds this token, for the gateway; None for an unknown key."""
    row = (
        await session.execute(
            select(users.c.id, users.c.is_staff, users.c.is_active, users.c.client_id)
            .join(tokens, tokens.c.user_id == users.c.id)
            .where(tokens.c.key_hash == token_hash(key))
        )
    ).first()
    if row is None:
        return None
    return {
        "user_id": row.id,
        "is_staff": row.is_staff,
        "is_active": row.is_active,
        "client_id": str(row.client_id) if row.client_id else None,
    }


def user_body(row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "email": row["email"],
        "is_staff": row["is_staff"],
        "is_active": row["is_active"],
        "client": str(row["client_id"]) if row["client_id"] else None,
    }


async def get_user(session: AsyncSession, user_id: int) -> dict[str, Any]:
    row = (await session.execute(select(users).where(users.c.id == user_id))).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


async def _check_client(session: AsyncSession, directory: ClientDirectory, client_id: UUID | None) -> None:
    if client_id is not None and await directory.find_client(session, client_id) is None:
        raise ValidationFailed.field("client", does_not_exist(client_id))


async def _unique_username(session: AsyncSession, username: str, *, exclude: int | None = None) -> None:
    query = select(users.c.id).where(users.c.username == username)
    if exclude is not None:
        query = query.where(users.c.id != exclude)
    if await session.scalar(query) is not None:
        raise ValidationFailed.field("username", "A user with that username already exists.")


async def create_user(session: AsyncSession, directory: ClientDirectory, data: dict[str, Any]) -> dict[str, Any]:
    await _unique_username(session, data["username"])
    await _check_client(session, directory, data.get("client"))

    values = {
        "username": data["username"],
        "email": data.get("email", ""),
        "password_hash": await hash_password(data["password"]),
        "is_staff": data.get("is_staff", False),
        "is_active": data.get("is_active", True),
        "client_id": data.get("client"),
    }
    try:
        row = (await session.execute(users.insert().values(**values).returning(users))).mappings().one()
    except IntegrityError:
        raise ValidationFailed.field("username", "A user with that username already exists.") from None
    await record_event(session, "user.created", {"user_id": row["id"]}, source=SOURCE)
    log.info("user.created", new_user_id=row["id"])
    return dict(row)


async def update_user(
    session: AsyncSession, directory: ClientDirectory, user_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    current = await get_user(session, user_id)
    if "username" in data:
        await _unique_username(session, data["username"], exclude=user_id)
    if "client" in data:
        await _check_client(session, directory, data["client"])

    values = {key: data[key] for key in ("username", "email", "is_staff", "is_active") if key in data}
    if "client" in data:
        values["client_id"] = data["client"]
    if "password" in data:
        values["password_hash"] = await hash_password(data["password"])
    values["updated_at"] = datetime.now(UTC)
    row = (
        await session.execute(update(users).where(users.c.id == user_id).values(**values).returning(users))
    ).mappings().one()

    # A deactivated user's tokens are refused ("User inactive or deleted.")
    # from now on; they are deleted when the user comes back, so they never
    # work again. A new password ends every session at once.
    reactivated = not current["is_active"] and row["is_active"]
    if reactivated or "password" in data:
        await revoke_user_tokens(session, user_id)
    await record_event(session, "user.updated", {"user_id": user_id, "is_active": row["is_active"]}, source=SOURCE)
    log.info("user.updated", target_user_id=user_id, fields=sorted(k for k in data if k != "password"))
    return dict(row)


async def delete_user(session: AsyncSession, user_id: int) -> None:
    await get_user(session, user_id)
    await revoke_user_tokens(session, user_id)
    await session.execute(delete(users).where(users.c.id == user_id))
    await record_event(session, "user.updated", {"user_id": user_id, "deleted": True}, source=SOURCE)
    log.info("user.deleted", target_user_id=user_id)


async def deactivate_client_users(session: AsyncSession, client_id: UUID) -> int:
    """A deleted client's users can no longer log in; their tokens end now."""
    user_ids = (
        await session.execute(
            update(users)
            .where(users.c.client_id == client_id, users.c.is_active.is_(True))
            .values(is_active=False, updated_at=datetime.now(UTC))
            .returning(users.c.id)
        )
    ).scalars().all()
    for user_id in user_ids:
        await record_event(session, "user.updated", {"user_id": user_id, "is_active": False}, source=SOURCE)
    return len(user_ids)
