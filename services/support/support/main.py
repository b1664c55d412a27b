"""The support service: tickets, and the notifier that owes and sends every mail."""

from nats.js.api import DeliverPolicy

from portal_common.app import create_service_app
from portal_common.consumer import consume
from portal_common.logging import configure_logging
from support.config import get_settings
from support.consumers import on_client_event
from support.models import outbox, processed_events
from support.notifications.notifier import Notifier
from support.notifications.router import router as notification_router
from support.runtime import runtime
from support.tickets.router import router as ticket_router

settings = get_settings()
configure_logging("support", log_format=settings.log_format, level=settings.log_level)
runtime.open_service(settings)
runtime.open_bus("support", outbox)
consume(
    runtime.broker,
    service="support",
    subjects="client.>",
    handler=on_client_event,
    sessions=runtime.sessions,
    processed=processed_events,
)
notifier = Notifier(
    directory=runtime.directory,
    staff_email=settings.staff_email,
    wake=runtime.sender.wake,
)
# The notifier's durable consumer starts at the events published after it is
# first created: a support service deployed into a running portal must not
# mail every invoice still kept in the stream (30 days). From then on the
# durable consumer keeps its place across restarts and replicas.
consume(
    runtime.broker,
    service="support",
    subjects=["ticket.>", "invoice.>", "workflow.>"],
    handler=notifier.on_event,
    sessions=runtime.sessions,
    processed=processed_events,
    deliver_policy=DeliverPolicy.NEW,
)

app = create_service_app(
    name="support",
    title="Monoliet portal: support",
    routers=[ticket_router, notification_router],
    identity_public_key=settings.identity_public_key,
    lifespan=runtime.lifespan,
    readiness_checks=runtime.readiness_checks(),
)
