"""The billing service: invoices, their numbers, PDFs and the overdue sweep."""

from billing.config import get_settings
from billing.consumers import on_client_event
from billing.models import outbox, processed_events
from billing.router import router
from billing.runtime import consumer_name, runtime
from portal_common.app import create_service_app
from portal_common.consumer import consume
from portal_common.logging import configure_logging

settings = get_settings()
configure_logging("billing", log_format=settings.log_format, level=settings.log_level)
runtime.open_service(settings)
runtime.open_bus("billing", outbox)
consume(
    runtime.broker,
    service="billing",
    subjects="client.>",
    handler=on_client_event,
    sessions=runtime.sessions,
    processed=processed_events,
    durable=consumer_name(settings.billing_database_url),
)

app = create_service_app(
    name="billing",
    title="Monoliet portal: billing",
    routers=[router],
    identity_public_key=settings.identity_public_key,
    lifespan=runtime.lifespan,
    readiness_checks=runtime.readiness_checks(),
)
