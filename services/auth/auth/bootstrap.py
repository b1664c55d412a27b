"""Creating the bootstrap staff user when the system starts."""

from sqlalchemy import select

from auth.models import users
from auth.security import hash_password
from portal_common.db import make_engine, make_sessionmaker, transaction


async def ensure_admin(database_url: str, *, username: str, email: str, password: str) -> bool:
    """Create a staff user `username` unless one exists; True when created."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            if await session.scalar(select(users.c.id).where(users.c.username == username)):
                return False
            await session.execute(
                users.insert().values(
                    username=username,
                    email=email,
                    password_hash=await hash_password(password),
                    is_staff=True,
                    is_active=True,
                )
            )
            return True
    finally:
        await engine.dispose()


async def password_still_works(database_url: str, *, username: str, password: str) -> bool:
    """Whether `password` is still the password of `username` (not changed since)."""
    from auth.security import verify_password

    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            stored = await session.scalar(select(users.c.password_hash).where(users.c.username == username))
    finally:
        await engine.dispose()
    return stored is not None and await verify_password(password, stored)
