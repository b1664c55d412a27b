from pydantic import field_validator
from pydantic_core import PydanticCustomError

from clients.encryption import EncryptionKeyError, parse_keys
from portal_common.settings import PortalSettings, load_settings


class ClientsSettings(PortalSettings):
    clients_database_url: str
    # Comma-separated Fernet keys, newest first (clients.encryption).
    encryption_keys: str

    @field_validator("encryption_keys")
    @classmethod
    def keys_must_be_fernet_keys(cls, value: str) -> str:
        # The message is cryptography's, never the key: it ends up on stderr.
        try:
            parse_keys(value)
        except EncryptionKeyError as error:
            raise PydanticCustomError("fernet_key", str(error)) from None
        return value


def get_settings() -> ClientsSettings:
    return load_settings(ClientsSettings)
