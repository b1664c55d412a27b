from portal_common.errors import ValidationFailed


class InvalidCredentials(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"non_field_errors": ["Unable to log in with provided credentials."]})
