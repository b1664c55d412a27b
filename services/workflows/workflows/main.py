"""The workflows service: workflows, daily execution records, n8n executions."""

from portal_common.app import create_service_app
from portal_common.consumer import consume, consume_raw
from portal_common.logging import configure_logging
from workflows.config import get_settings
from workflows.consumers import on_client_event, on_n8n_executions
from workflows.models import outbox, processed_events
from workflows.router import N8N_EXECUTION_SUBJECT, router
from workflows.runtime import runtime

settings = get_settings()
configure_logging("workflows", log_format=settings.log_format, level=settings.log_level)
runtime.open_service(settings)
runtime.open_bus("workflows", outbox)
consume(
    runtime.broker,
    service="workflows",
    subjects="client.>",
    handler=on_client_event,
    sessions=runtime.sessions,
    processed=processed_events,
)
consume_raw(
    runtime.broker,
    service="workflows",
    subjects=N8N_EXECUTION_SUBJECT,
    handler=on_n8n_executions,
    sessions=runtime.sessions,
    batch_size=settings.workflows_ingest_batch_size,
    ack_wait=settings.workflows_ingest_ack_wait_seconds,
)

app = create_service_app(
    name="workflows",
    title="Monoliet portal: workflows",
    routers=[router],
    identity_public_key=settings.identity_public_key,
    lifespan=runtime.lifespan,
    readiness_checks=runtime.readiness_checks(),
)
