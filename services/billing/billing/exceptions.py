from portal_common.errors import ValidationFailed
from portal_common.fields import does_not_exist


class UnknownClient(ValidationFailed):
    def __init__(self, client_id: object) -> None:
        super().__init__({"client": [does_not_exist(client_id)]})
