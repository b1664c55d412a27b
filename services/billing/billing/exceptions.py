from billing.schemas import client_does_not_exist
from portal_common.errors import ValidationFailed


class UnknownClient(ValidationFailed):
    def __init__(self, client_id: object) -> None:
        super().__init__({"client": [client_does_not_exist(client_id)]})
