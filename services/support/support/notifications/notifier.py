"""The notifier: which events owe which mails, written as notification rows.

How it works. The notifier is a consumer of `ticket.>`, `invoice.>` and
`workflow.>`. For each event it works out the mails owed (below), finds the
client's contact address in this service's copy of clients (asking the
clients service once for a client it does not know yet), renders each mail
from its templates and inserts it as a `pending` notification. All of this
happens in the consumer's transaction, the one that records the event as
processed, so an event's mails exist if and only if the event counts as
handled. The sender (`sender.py`) delivers the rows afterwards; nothing here
talks to the mail server.

| event                                          | mail to          |
|------------------------------------------------|------------------|
| ticket.created                                 | client and staff |
| ticket.resolved                                | client           |
| invoice.created, invoice.due_soon, .overdue    | client           |
| workflow.updated into status "error"           | staff            |
| workflow.health_alert                          | staff            |

Exactly once. Each row carries the idempotency key
`<entity id>:<event type>:<recipient role>` under a UNIQUE constraint, and is
inserted with ON CONFLICT DO NOTHING: a redelivered event, the same fact
published twice, or two replicas handling it at once owe one mail. Facts
that can recur for one entity qualify the entity id with what tells the
occurrences apart: a ticket resolved again after a reopening (`@resolved_at`),
a reminder for a changed due date (`@due_date`), a workflow entering error
again (`@occurred_at`), a health alert for another condition or a later
execution (`@condition@last_execution`).

A client mail for a client that is unknown or deleted cannot be sent; it is
skipped with a warning and the staff mail of the same event still goes out.
If the clients service cannot be asked, the event is retried later.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import structlog
from sqlalchemy import event, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.clients_copy import ClientDirectory
from portal_common.events import Envelope, PermanentEventError, format_timestamp
from support.models import notifications
from support.notifications.mails import render_mail

log = structlog.get_logger("support.notifier")

CLIENT = "client"
STAFF = "staff"

TICKET_CREATED = "ticket.created"
TICKET_RESOLVED = "ticket.resolved"
INVOICE_CREATED = "invoice.created"
INVOICE_DUE_SOON = "invoice.due_soon"
INVOICE_OVERDUE = "invoice.overdue"
WORKFLOW_ERROR = "workflow.error"
WORKFLOW_HEALTH_ALERT = "workflow.health_alert"

# Notification kinds, as `GET /api/notifications/?kind=` takes them.
KINDS = (
    TICKET_CREATED,
    TICKET_RESOLVED,
    INVOICE_CREATED,
    INVOICE_DUE_SOON,
    INVOICE_OVERDUE,
    WORKFLOW_ERROR,
    WORKFLOW_HEALTH_ALERT,
)

_WAKE_HOOK = "support_mail_wake_hook"


@dataclass(frozen=True)
class OwedMail:
    kind: str
    role: str
    # The fact's identity: the first part of the idempotency key.
    entity: str
    # `templates/<template>.txt` and `.html`
    template: str
    # The event's data under the name the templates use.
    subject_name: str

    def idempotency_key(self, event_type: str) -> str:
        return f"{self.entity}:{event_type}:{self.role}"


def _require(envelope: Envelope, *names: str) -> dict[str, Any]:
    data = envelope.data
    missing = [name for name in names if data.get(name) in (None, "")]
    if missing:
        raise PermanentEventError(f"{envelope.event_type} lacks {', '.join(missing)}")
    return data


def owed_mails(envelope: Envelope) -> list[OwedMail]:
    """The mails an event owes; none for the events nobody is mailed about."""
    kind = envelope.event_type
    if kind == TICKET_CREATED:
        data = _require(envelope, "id", "client_id", "subject")
        return [
            OwedMail(kind, CLIENT, data["id"], "ticket_created_client", "ticket"),
            OwedMail(kind, STAFF, data["id"], "ticket_created_staff", "ticket"),
        ]
    if kind == TICKET_RESOLVED:
        data = _require(envelope, "id", "client_id", "subject")
        entity = f"{data['id']}@{data.get('resolved_at') or ''}"
        return [OwedMail(kind, CLIENT, entity, "ticket_resolved_client", "ticket")]
    if kind == INVOICE_CREATED:
        data = _require(envelope, "id", "client_id", "invoice_number", "amount")
        return [OwedMail(kind, CLIENT, data["id"], "invoice_created_client", "invoice")]
    if kind in (INVOICE_DUE_SOON, INVOICE_OVERDUE):
        data = _require(envelope, "id", "client_id", "invoice_number", "amount")
        entity = f"{data['id']}@{data.get('due_date') or ''}"
        template = kind.replace(".", "_") + "_client"
        return [OwedMail(kind, CLIENT, entity, template, "invoice")]
    if kind == "workflow.updated":
        data = envelope.data
        entering_error = (
            data.get("status") == "error" and data.get("previous_status") != "error"
        )
        if not entering_error:
            return []
        data = _require(envelope, "id", "workflow_name")
        entity = f"{data['id']}@{format_timestamp(envelope.occurred_at)}"
        return [
            OwedMail(WORKFLOW_ERROR, STAFF, entity, "workflow_error_staff", "workflow")
        ]
    if kind == WORKFLOW_HEALTH_ALERT:
        data = _require(envelope, "id", "workflow_name", "condition")
        entity = (
            f"{data['id']}@{data['condition']}@{data.get('last_execution') or 'never'}"
        )
        return [OwedMail(kind, STAFF, entity, "workflow_health_alert_staff", "alert")]
    return []


def _client_id(envelope: Envelope) -> UUID | None:
    raw = envelope.data.get("client_id")
    if raw in (None, ""):
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        raise PermanentEventError(
            f"{envelope.event_type} has a malformed client_id"
        ) from None


class Notifier:
    """Turns events into notification rows; `on_event` is the consumer's handler.

    `wake` is called after the transaction that queued mails commits, so this
    process's sender delivers them at once instead of at its next poll.
    """

    def __init__(
        self,
        *,
        directory: ClientDirectory,
        staff_email: str,
        wake: Callable[[], None],
    ) -> None:
        self.directory = directory
        self.staff_email = staff_email
        self.wake = wake

    async def on_event(self, session: AsyncSession, envelope: Envelope) -> None:
        mails = owed_mails(envelope)
        if not mails:
            return

        client_id = _client_id(envelope)
        client = None
        if client_id is not None:
            client = await self.directory.find_client(session, client_id)
        for mail in mails:
            await self._queue(session, envelope, mail, client)

    async def _queue(
        self,
        session: AsyncSession,
        envelope: Envelope,
        mail: OwedMail,
        client: dict[str, Any] | None,
    ) -> None:
        recipient = (
            self.staff_email if mail.role == STAFF else (client or {}).get("email")
        )
        if not recipient:
            # The client was deleted, never existed, or has no address.
            log.warning(
                "mail.skipped",
                kind=mail.kind,
                role=mail.role,
                reason="no client address",
            )
            return

        context = {
            mail.subject_name: envelope.data,
            "client": {
                "company_name": (client or {}).get("company_name")
                or "an unknown client",
                "contact_name": (client or {}).get("contact_name") or "",
            },
        }
        rendered = render_mail(mail.template, context)
        statement = (
            insert(notifications)
            .values(
                id=uuid4(),
                kind=mail.kind,
                recipient=recipient,
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                status="pending",
                next_attempt_at=func.now(),
                idempotency_key=mail.idempotency_key(envelope.event_type),
                event_id=envelope.event_id,
            )
            .on_conflict_do_nothing(index_elements=[notifications.c.idempotency_key])
            .returning(notifications.c.id)
        )
        notification_id = (await session.execute(statement)).scalar()

        if notification_id is None:
            log.warning(
                "notification.duplicate_skipped", kind=mail.kind, role=mail.role
            )
            return
        self._wake_after_commit(session)
        log.info(
            "notification.queued",
            notification_id=str(notification_id),
            kind=mail.kind,
            role=mail.role,
        )

    def _wake_after_commit(self, session: AsyncSession) -> None:
        if session.info.get(_WAKE_HOOK):
            return
        event.listen(session.sync_session, "after_commit", lambda _session: self.wake())
        session.info[_WAKE_HOOK] = True
