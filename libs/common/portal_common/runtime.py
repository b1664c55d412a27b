"""What one service process holds while it runs: settings, database, directory.

A service creates one `Runtime` at import time and opens it in its lifespan;
routers and consumers reach the database through `runtime.transaction()`, so
the commit stays at the edge (STYLE.md).
"""

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from portal_common.db import make_engine, make_sessionmaker
from portal_common.errors import PermissionDenied
from portal_common.internal import INTERNAL_HEADER
from portal_common.settings import PortalSettings

SettingsT = TypeVar("SettingsT", bound=PortalSettings)


class Runtime(Generic[SettingsT]):
    def __init__(self) -> None:
        self._settings: SettingsT | None = None
        self.engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def settings(self) -> SettingsT:
        assert self._settings is not None, "runtime not opened"
        return self._settings

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        assert self._sessions is not None, "runtime not opened"
        return self._sessions

    def open(self, settings: SettingsT, database_url: str) -> None:
        self._settings = settings
        self.engine = make_engine(database_url, pool_size=settings.db_pool_size)
        self._sessions = make_sessionmaker(self.engine)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One session in one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session:
            async with session.begin():
                yield session

    async def check_database(self) -> None:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def check_internal(self, request: Request) -> None:
        """Dependency for `/internal/` routes: only the portal's own services."""
        expected = self.settings.internal_token.encode()
        presented = request.headers.get(INTERNAL_HEADER, "").encode()
        if not expected or not hmac.compare_digest(presented, expected):
            raise PermissionDenied()


class BusRuntime(Runtime[SettingsT]):
    """A runtime that also owns the service's NATS broker and outbox relay.

    A service registers its consumers on `self.broker` at import time; the
    lifespan connects the broker (ensuring streams and consumers), starts
    the relay, and on shutdown stops the relay, lets consumers finish their
    batch and closes the database.
    """

    def open_bus(self, name: str, outbox) -> None:
        from portal_common.bus import make_broker
        from portal_common.outbox import OutboxRelay

        self.name = name
        self.broker = make_broker(self.settings.nats_url, name=name)
        self.relay = OutboxRelay(self.sessions, self.broker, outbox=outbox)

    @asynccontextmanager
    async def lifespan(self, _app=None) -> AsyncIterator[None]:
        from portal_common.bus import start_bus, stop_bus

        await start_bus(self.broker, replicas=self.settings.nats_replicas)
        self.relay.start()
        try:
            yield
        finally:
            await self.relay.stop()
            await stop_bus(self.broker)
            await self.close()

    async def check_nats(self) -> None:
        from portal_common.bus import is_connected

        if not is_connected(self.broker):
            raise ConnectionError("NATS is not connected")

    def readiness_checks(self) -> dict:
        return {"database": self.check_database, "nats": self.check_nats}
