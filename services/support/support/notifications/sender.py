"""The sender: delivers notification rows over SMTP, retrying with backoff.

How it works. Every replica of the service runs one `MailSender` task. It
claims up to `mail_batch_size` due rows (`pending` or `retrying` whose
`next_attempt_at` has come) with `SELECT … FOR UPDATE SKIP LOCKED`, stamps
them with a lease (`leased_until`) and commits, so the row locks last only
milliseconds and no other replica claims those rows while the lease runs. It
then sends them outside any transaction over one SMTP connection
(aiosmtplib; STARTTLS or implicit TLS and login when configured) and records
each outcome in its own short transaction, guarded by the lease it holds:

* accepted by the server: `sent`, with `sent_at`;
* refused for good (a 5xx answer for the recipient or the content):
  `failed`, logged at ERROR, never tried again;
* anything else (server down, 4xx, timeout, a disconnect): `retrying`, with
  `last_error` and `next_attempt_at` pushed back by
  `mail_retry_seconds * 2 ** (attempts - 1)`, at most `mail_max_retry_seconds`.

The sender wakes right after the notifier commits new rows in this process,
and otherwise polls every `mail_poll_seconds` (rows of other replicas, retries
that came due).

Guarantees: every row is tried until it is sent or refused for good; two
replicas never send one row at the same time. What this does not give:
exactly-once delivery across a crash. A process killed after the server
accepted a mail but before `sent` was committed leaves the row leased; once
the lease has run out it is sent again. The Message-ID is derived from the
idempotency key, so that rare second copy carries the same Message-ID as
the first and mail clients can fold the two.
"""

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import aiosmtplib
import structlog
from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_common.bus import describe_error
from support.config import SupportSettings
from support.models import notifications

log = structlog.get_logger("support.mail")

# A fixed namespace, so one idempotency key always gives one Message-ID.
MESSAGE_ID_NAMESPACE = uuid.UUID("8f4c2a53-6a8e-4f55-9d0e-3c1b7a5e2f10")

# The literal predicate of the partial index `ix_notification_due`.
_DUE = text("notification.status IN ('pending', 'retrying')")


def message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID of a notification: the same for every attempt to send it."""
    return f"<{uuid.uuid5(MESSAGE_ID_NAMESPACE, idempotency_key)}@{domain}>"


def is_permanent(error: BaseException) -> bool:
    """A 5xx refusal of this mail's recipient or content: sending again cannot help.

    A 5xx for the sender or for the login is the portal's configuration, not
    this mail's fault: those are retried so the mails go out once it is fixed.
    """
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refusal.code >= 500 for refusal in error.recipients)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return error.code >= 500
    return False


def smtp_code(error: BaseException) -> int | None:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        return error.recipients[0].code
    return getattr(error, "code", None)


@dataclass(frozen=True)
class ClaimedMail:
    id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    body_text: str
    body_html: str
    attempts: int
    idempotency_key: str
    leased_until: datetime


class MailSender:
    """The background task that sends due notifications; see the module docstring."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: SupportSettings
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if not self._settings.smtp_host:
            log.warning(
                "mail.no_smtp_host",
                detail="PORTAL_SMTP_HOST is empty; mails stay pending",
            )
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="mail-sender")

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let the batch in hand finish (up to `grace` s), then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is None:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def wake(self) -> None:
        """Look for due mails now rather than at the next poll."""
        self._wakeup.set()

    async def _run(self) -> None:
        failing = False
        while not self._stopping:
            self._wakeup.clear()
            try:
                count = await self.send_due()
            except Exception as error:
                # The database is away; rows stay as they are until it is back.
                if not failing:
                    log.warning("mail.sender_failed", reason=describe_error(error))
                failing, count = True, 0
            else:
                failing = False
            if count >= self._settings.mail_batch_size:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wakeup.wait(), self._settings.mail_poll_seconds
                )

    async def send_due(self) -> int:
        """Claim and send one batch of due mails; how many were claimed."""
        claimed = await self._claim()
        if claimed:
            await self._deliver(claimed)
        return len(claimed)

    async def _claim(self) -> list[ClaimedMail]:
        now = datetime.now(UTC)
        leased_until = now + timedelta(seconds=self._settings.mail_lease_seconds)
        due = (
            select(notifications.c.id)
            .where(
                _DUE,
                notifications.c.next_attempt_at <= now,
                or_(
                    notifications.c.leased_until.is_(None),
                    notifications.c.leased_until <= now,
                ),
            )
            .order_by(notifications.c.next_attempt_at)
            .limit(self._settings.mail_batch_size)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(notifications)
            .where(notifications.c.id.in_(due.scalar_subquery()))
            .values(leased_until=leased_until)
            .returning(
                notifications.c.id,
                notifications.c.kind,
                notifications.c.recipient,
                notifications.c.subject,
                notifications.c.body_text,
                notifications.c.body_html,
                notifications.c.attempts,
                notifications.c.idempotency_key,
                notifications.c.leased_until,
            )
        )
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(claim)).mappings().all()
        return [ClaimedMail(**row) for row in rows]

    def _message(self, mail: ClaimedMail) -> EmailMessage:
        settings = self._settings
        message = EmailMessage()
        message["Subject"] = mail.subject
        message["From"] = formataddr((settings.mail_from_name, settings.mail_from))
        message["To"] = mail.recipient
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(
            mail.idempotency_key, settings.mail_from.rsplit("@", 1)[1]
        )
        message["X-Portal-Notification"] = str(mail.id)
        message.set_content(mail.body_text)
        message.add_alternative(mail.body_html, subtype="html")
        return message

    def _client(self) -> aiosmtplib.SMTP:
        settings = self._settings
        login: dict[str, Any] = {}
        if settings.smtp_username:
            login = {
                "username": settings.smtp_username,
                "password": settings.smtp_password,
            }
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout_seconds,
            use_tls=settings.smtp_ssl,
            start_tls=settings.smtp_starttls,
            **login,
        )

    async def _deliver(self, mails: Sequence[ClaimedMail]) -> None:
        smtp = self._client()
        try:
            await smtp.connect()
        except Exception as error:
            for mail in mails:
                await self._record_failure(mail, error)
            return
        try:
            for mail in mails:
                try:
                    await smtp.send_message(self._message(mail))
                except Exception as error:
                    await self._record_failure(mail, error)
                else:
                    await self._record_sent(mail)
        finally:
            with suppress(Exception):
                await smtp.quit()

    def _held(self, mail: ClaimedMail) -> Any:
        # Only the holder of this very lease may record the outcome.
        return update(notifications).where(
            notifications.c.id == mail.id,
            notifications.c.leased_until == mail.leased_until,
        )

    async def _record_sent(self, mail: ClaimedMail) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            await session.execute(
                self._held(mail).values(
                    status="sent",
                    attempts=mail.attempts + 1,
                    sent_at=now,
                    next_attempt_at=None,
                    leased_until=None,
                )
            )
        log.info(
            "mail.sent",
            notification_id=str(mail.id),
            kind=mail.kind,
            attempts=mail.attempts + 1,
        )

    def retry_delay(self, attempts: int) -> float:
        """Seconds until the next try after the `attempts`-th failed one."""
        settings = self._settings
        return min(
            settings.mail_retry_seconds * 2 ** (attempts - 1),
            settings.mail_max_retry_seconds,
        )

    async def _record_failure(self, mail: ClaimedMail, error: BaseException) -> None:
        attempts = mail.attempts + 1
        permanent = is_permanent(error)
        delay = None if permanent else self.retry_delay(attempts)
        next_attempt_at = (
            None if delay is None else datetime.now(UTC) + timedelta(seconds=delay)
        )
        async with self._sessions() as session, session.begin():
            await session.execute(
                self._held(mail).values(
                    status="failed" if permanent else "retrying",
                    attempts=attempts,
                    last_error=describe_error(error, limit=500),
                    next_attempt_at=next_attempt_at,
                    leased_until=None,
                )
            )

        # The error's type and SMTP code only: its text may quote the address.
        facts = {
            "notification_id": str(mail.id),
            "kind": mail.kind,
            "attempts": attempts,
            "error_type": type(error).__name__,
            "smtp_code": smtp_code(error),
        }
        if permanent:
            log.error("mail.failed", **facts)
        else:
            log.warning("mail.retry", retry_in_seconds=delay, **facts)
