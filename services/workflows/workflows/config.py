from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator

from portal_common.settings import PortalSettings, load_settings


class WorkflowsSettings(PortalSettings):
    workflows_database_url: str
    clients_url: str = ""
    # Base of the generated `n8n_workflow_url` (…/workflow/<n8n id>).
    n8n_base_url: str = "https://n8n.monoliet.cloud"
    # Health check: below this success rate (percent, over 7 days) a workflow
    # is reported; the check runs every interval on one replica at a time.
    workflow_health_threshold: float = 80.0
    workflow_health_interval_seconds: float = 3600.0
    # n8n.execution messages taken per fetch, and so per transaction.
    workflows_ingest_batch_size: int = 500
    # Seconds JetStream waits for an ack before redelivering (a crashed
    # replica's messages come back after this long).
    workflows_ingest_ack_wait_seconds: float = 30.0

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("workflow_health_threshold")
    @classmethod
    def _percentage(cls, value: float) -> float:
        if not 0 <= value <= 100:
            raise ValueError("must be a percentage from 0 to 100")
        return value

    @field_validator(
        "workflow_health_interval_seconds", "workflows_ingest_ack_wait_seconds"
    )
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("workflows_ingest_batch_size")
    @classmethod
    def _batch_size(cls, value: int) -> int:
        if not 1 <= value <= 5000:
            raise ValueError("must be from 1 to 5000")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def get_settings() -> WorkflowsSettings:
    return load_settings(WorkflowsSettings)
