"""The auth service: users, tokens and login throttling."""

from auth.config import get_settings
from auth.consumers import on_client_event
from auth.models import outbox, processed_events
from auth.router import internal, router
from auth.runtime import runtime
from portal_common.app import create_service_app
from portal_common.consumer import consume
from portal_common.logging import configure_logging

settings = get_settings()
configure_logging("auth", log_format=settings.log_format, level=settings.log_level)
runtime.open_service(settings)
runtime.open_bus("auth", outbox)
consume(
    runtime.broker,
    service="auth",
    subjects="client.>",
    handler=on_client_event,
    sessions=runtime.sessions,
    processed=processed_events,
)

app = create_service_app(
    name="auth",
    title="Monoliet portal: auth",
    routers=[router, internal],
    identity_public_key=settings.identity_public_key,
    lifespan=runtime.lifespan,
    readiness_checks=runtime.readiness_checks(),
)
