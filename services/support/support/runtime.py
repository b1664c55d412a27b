"""The support service's process-wide state: settings, database, bus, mail."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from portal_common.clients_copy import ClientDirectory
from portal_common.runtime import BusRuntime
from support.config import SupportSettings
from support.models import client_copy
from support.notifications.sender import MailSender


class SupportRuntime(BusRuntime[SupportSettings]):
    directory: ClientDirectory
    sender: MailSender

    def open_service(self, settings: SupportSettings) -> None:
        self.open(settings, settings.support_database_url)
        self.directory = ClientDirectory(
            client_copy,
            clients_url=settings.clients_url,
            internal_token=settings.internal_token,
        )
        self.sender = MailSender(self.sessions, settings)

    @asynccontextmanager
    async def lifespan(self, _app=None) -> AsyncIterator[None]:
        async with super().lifespan(_app):
            self.sender.start()
            try:
                yield
            finally:
                await self.sender.stop()


runtime = SupportRuntime()
