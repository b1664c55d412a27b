"""The auth service's process-wide state: settings, database, client copy."""

from auth.config import AuthSettings
from auth.models import clients
from portal_common.clients_copy import ClientDirectory
from portal_common.runtime import BusRuntime


class AuthRuntime(BusRuntime[AuthSettings]):
    directory: ClientDirectory

    def open_service(self, settings: AuthSettings) -> None:
        self.open(settings, settings.auth_database_url)
        self.directory = ClientDirectory(
            clients, clients_url=settings.clients_url, internal_token=settings.internal_token
        )


runtime = AuthRuntime()
