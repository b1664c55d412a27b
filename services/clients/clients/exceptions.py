from portal_common.errors import NotFound, ValidationFailed
from portal_common.fields import does_not_exist


class DuplicateEmail(ValidationFailed):
    def __init__(self) -> None:
        # Django's unique message for model Client, field email.
        super().__init__({"email": ["client with this email already exists."]})


class NoClientForUser(NotFound):
    default_detail = "No client is linked to this user."


class UnknownClient(ValidationFailed):
    def __init__(self, client_id: object) -> None:
        # DRF's PrimaryKeyRelatedField message.
        message = does_not_exist(client_id)
        super().__init__({"client": [message]})


class UnreadableEncryptedData(ValidationFailed):
    def __init__(self) -> None:
        message = (
            "Enter a Fernet token made with one of the configured encryption keys."
        )
        super().__init__({"encrypted_data": [message]})
