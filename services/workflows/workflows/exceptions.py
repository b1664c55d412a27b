"""The workflows service's domain errors, worded for API consumers."""

from portal_common.errors import PortalError, ServiceUnavailable, ValidationFailed


class InvalidActivation(PortalError):
    """The reference's own body for `activate` with another status."""

    status_code = 400

    def __init__(self) -> None:
        super().__init__('Status must be either "active" or "paused"')

    def body(self) -> dict[str, str]:
        return {"error": self.detail}


class DuplicateN8nWorkflow(ValidationFailed):
    def __init__(self) -> None:
        super().__init__(
            {"n8n_workflow_id": ["workflow with this n8n workflow id already exists."]}
        )


class DuplicateExecutionRecord(ValidationFailed):
    def __init__(self) -> None:
        super().__init__(
            {
                "non_field_errors": [
                    "The fields workflow, execution_date must make a unique set."
                ]
            }
        )


class UnknownObject(ValidationFailed):
    """DRF's PrimaryKeyRelatedField message for an id that matches nothing."""

    def __init__(self, field: str, object_id: object) -> None:
        super().__init__(
            {field: [f'Invalid pk "{object_id}" - object does not exist.']}
        )


class BusUnavailable(ServiceUnavailable):
    default_detail = (
        "The event bus is unavailable; nothing was accepted, try again shortly."
    )
