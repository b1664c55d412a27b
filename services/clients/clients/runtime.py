"""The clients service's process-wide state: settings, database, bus, cipher."""

from clients.config import ClientsSettings
from clients.encryption import CredentialCipher
from portal_common.runtime import BusRuntime


class ClientsRuntime(BusRuntime[ClientsSettings]):
    cipher: CredentialCipher

    def open_service(self, settings: ClientsSettings) -> None:
        self.open(settings, settings.clients_database_url)
        self.cipher = CredentialCipher(settings.encryption_keys)


runtime = ClientsRuntime()
