"""The clients service: clients, their encrypted API credentials, workflow counts."""

from clients.config import get_settings
from clients.consumers import on_workflow_event
from clients.credential_router import router as credential_router
from clients.models import outbox, processed_events
from clients.router import internal, router
from clients.runtime import runtime
from portal_common.app import create_service_app
from portal_common.consumer import consume
from portal_common.logging import configure_logging

settings = get_settings()
configure_logging("clients", log_format=settings.log_format, level=settings.log_level)
runtime.open_service(settings)
runtime.open_bus("clients", outbox)
consume(
    runtime.broker,
    service="clients",
    subjects="workflow.>",
    handler=on_workflow_event,
    sessions=runtime.sessions,
    processed=processed_events,
)

app = create_service_app(
    name="clients",
    title="Monoliet portal: clients",
    routers=[router, credential_router, internal],
    identity_public_key=settings.identity_public_key,
    lifespan=runtime.lifespan,
    readiness_checks=runtime.readiness_checks(),
)
