"""Notification endpoints (staff only): every mail the system sent or is retrying."""

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from portal_common.errors import NotFound
from portal_common.fields import iso_datetime
from portal_common.http import path_uuid
from portal_common.identity import StaffUser
from portal_common.listing import ChoiceFilter, ListSpec, paginate
from support.models import NOTIFICATION_STATUSES, notifications
from support.notifications.notifier import KINDS
from support.runtime import runtime

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

NOTIFICATIONS = ListSpec(
    filters=(
        ChoiceFilter("status", notifications.c.status, NOTIFICATION_STATUSES),
        ChoiceFilter("kind", notifications.c.kind, KINDS),
    ),
    ordering={"created_at": notifications.c.created_at},
    default_ordering=("-created_at",),
    tiebreak=notifications.c.id,
)

# The bodies stay in the database: the list shows what was sent, not the text.
SHOWN = select(
    notifications.c.id,
    notifications.c.kind,
    notifications.c.recipient,
    notifications.c.subject,
    notifications.c.status,
    notifications.c.attempts,
    notifications.c.last_error,
    notifications.c.created_at,
    notifications.c.sent_at,
    notifications.c.next_attempt_at,
)


def notification_read(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "recipient": row["recipient"],
        "subject": row["subject"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "created_at": iso_datetime(row["created_at"]),
        "sent_at": iso_datetime(row["sent_at"]),
        "next_attempt_at": iso_datetime(row["next_attempt_at"]),
    }


@router.get("/", openapi_extra={"parameters": NOTIFICATIONS.query_parameters()})
async def list_notifications(request: Request, identity: StaffUser) -> dict[str, Any]:
    """List mails sent or owed, newest first (staff only)."""
    async with runtime.transaction() as session:
        page = await paginate(session, request, SHOWN, NOTIFICATIONS, identity=identity)
    return page.body(notification_read)


@router.get("/{notification_id}/")
async def read_notification(
    notification_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Read one notification (staff only)."""
    wanted = path_uuid(notification_id)
    async with runtime.transaction() as session:
        row = (
            (await session.execute(SHOWN.where(notifications.c.id == wanted)))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound()
    return notification_read(row)
