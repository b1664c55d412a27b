"""Rules small enough to check without a running system: keys, texts, dates, sink."""

import email
import email.policy
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest

from portal_common.events import Envelope, PermanentEventError
from portal_deploy.mailsink import MailSink, smtp_host_configured
from support.config import SupportSettings
from support.notifications.mails import render_mail
from support.notifications.notifier import owed_mails
from support.notifications.sender import MailSender, is_permanent, message_id
from support.tickets.schemas import days_open

CLIENT_ID = "a1b2c3d4-5678-90ab-cdef-1234567890ab"


def envelope(event_type: str, **data) -> Envelope:
    return Envelope.new(event_type, data, source="test")


def keys(event: Envelope) -> list[str]:
    return [mail.idempotency_key(event.event_type) for mail in owed_mails(event)]


class TestOwedMails:
    def test_a_new_ticket_owes_the_client_and_the_staff_one_mail_each(self):
        event = envelope("ticket.created", id="T1", client_id=CLIENT_ID, subject="s")

        assert keys(event) == ["T1:ticket.created:client", "T1:ticket.created:staff"]

    def test_each_resolution_is_its_own_fact(self):
        first = envelope(
            "ticket.resolved",
            id="T1",
            client_id=CLIENT_ID,
            subject="s",
            resolved_at="2030-01-01T10:00:00Z",
        )
        again = envelope(
            "ticket.resolved",
            id="T1",
            client_id=CLIENT_ID,
            subject="s",
            resolved_at="2030-01-02T10:00:00Z",
        )

        assert keys(first) == ["T1@2030-01-01T10:00:00Z:ticket.resolved:client"]
        assert keys(first) != keys(again)

    def test_one_fact_published_twice_has_one_key(self):
        data = {
            "id": "I1",
            "client_id": CLIENT_ID,
            "invoice_number": "INV-2030-001",
            "amount": "1.00",
            "due_date": "2030-01-05",
        }

        assert keys(envelope("invoice.due_soon", **data)) == keys(
            envelope("invoice.due_soon", **data)
        )

    @pytest.mark.parametrize(
        ("event_type", "data"),
        [
            ("ticket.updated", {"id": "T1", "client_id": CLIENT_ID, "subject": "s"}),
            ("invoice.updated", {"id": "I1", "client_id": CLIENT_ID}),
            (
                "workflow.updated",
                {"id": "W1", "status": "error", "previous_status": "error"},
            ),
            (
                "workflow.updated",
                {"id": "W1", "status": "paused", "previous_status": "error"},
            ),
            ("workflow.created", {"id": "W1", "status": "error"}),
        ],
    )
    def test_events_nobody_is_mailed_about(self, event_type, data):
        assert owed_mails(envelope(event_type, **data)) == []

    def test_a_workflow_entering_error_owes_the_staff(self):
        event = envelope(
            "workflow.updated",
            id="W1",
            workflow_name="w",
            status="error",
            previous_status="active",
        )

        assert [(mail.kind, mail.role) for mail in owed_mails(event)] == [
            ("workflow.error", "staff")
        ]

    @pytest.mark.parametrize(
        ("event_type", "data"),
        [
            ("ticket.created", {"client_id": CLIENT_ID, "subject": "s"}),
            ("invoice.created", {"id": "I1", "client_id": CLIENT_ID, "amount": "1.00"}),
            ("workflow.health_alert", {"id": "W1", "workflow_name": "w"}),
        ],
    )
    def test_a_payload_without_what_the_mail_needs_is_permanent(self, event_type, data):
        with pytest.raises(PermanentEventError):
            owed_mails(envelope(event_type, **data))


class TestTemplates:
    CLIENT = {"company_name": "Acme", "contact_name": "Jane"}
    TICKET = {"id": "T1", "subject": "Broken", "description": "d", "priority": "high"}
    INVOICE = {
        "invoice_number": "INV-2030-001",
        "amount": "299.00",
        "type": "monthly",
        "due_date": "2030-02-28",
    }
    WORKFLOW = {
        "id": "W1",
        "workflow_name": "Orders",
        "n8n_workflow_id": "123",
        "previous_status": "active",
    }
    ALERT = {
        "id": "W1",
        "workflow_name": "Orders",
        "n8n_workflow_id": "123",
        "condition": "low_success_rate",
        "success_rate": 50.0,
        "threshold": 80.0,
        "last_execution": None,
        "period_days": 7,
    }

    @pytest.mark.parametrize(
        ("template", "context", "subject"),
        [
            (
                "ticket_created_client",
                {"ticket": TICKET},
                "We received your support ticket: Broken",
            ),
            (
                "ticket_created_staff",
                {"ticket": TICKET},
                "New support ticket from Acme: Broken",
            ),
            (
                "ticket_resolved_client",
                {"ticket": TICKET},
                "Your support ticket was resolved: Broken",
            ),
            (
                "invoice_created_client",
                {"invoice": INVOICE},
                "New invoice INV-2030-001 for 299.00",
            ),
            (
                "invoice_due_soon_client",
                {"invoice": INVOICE},
                "Reminder: invoice INV-2030-001 is due on 2030-02-28",
            ),
            (
                "invoice_overdue_client",
                {"invoice": INVOICE},
                "Invoice INV-2030-001 is overdue",
            ),
            (
                "workflow_error_staff",
                {"workflow": WORKFLOW},
                "Workflow in error: Orders (Acme)",
            ),
            (
                "workflow_health_alert_staff",
                {"alert": ALERT},
                "Workflow success rate low: Orders (Acme)",
            ),
        ],
    )
    def test_every_mail_renders_a_subject_text_and_html(
        self, template, context, subject
    ):
        mail = render_mail(template, {**context, "client": self.CLIENT})

        assert mail.subject == subject
        assert mail.text.strip()
        assert mail.html.startswith("<!DOCTYPE html>")

    def test_a_subject_with_line_breaks_stays_one_header_line(self):
        ticket = {**self.TICKET, "subject": "Broken\r\nBcc: someone@example.com"}

        mail = render_mail(
            "ticket_created_client", {"ticket": ticket, "client": self.CLIENT}
        )

        assert (
            mail.subject
            == "We received your support ticket: Broken Bcc: someone@example.com"
        )


class TestSender:
    def test_message_ids_come_from_the_idempotency_key(self):
        first = message_id("T1:ticket.created:client", "agency.test")

        assert first == message_id("T1:ticket.created:client", "agency.test")
        assert first != message_id("T1:ticket.created:staff", "agency.test")
        assert first.endswith("@agency.test>")

    def test_retries_back_off_exponentially_up_to_the_cap(self):
        settings = SupportSettings(
            support_database_url="x", mail_retry_seconds=30, mail_max_retry_seconds=3600
        )
        sender = MailSender(None, settings)

        assert [sender.retry_delay(n) for n in (1, 2, 3, 8, 20)] == [
            30,
            60,
            120,
            3600,
            3600,
        ]

    @pytest.mark.parametrize(
        ("error", "permanent"),
        [
            (
                aiosmtplib.SMTPRecipientsRefused(
                    [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b")]
                ),
                True,
            ),
            (
                aiosmtplib.SMTPRecipientsRefused(
                    [aiosmtplib.SMTPRecipientRefused(451, "try later", "a@b")]
                ),
                False,
            ),
            (aiosmtplib.SMTPDataError(554, "rejected"), True),
            (aiosmtplib.SMTPDataError(452, "full"), False),
            (
                aiosmtplib.SMTPSenderRefused(550, "bad sender", "noreply@localhost"),
                False,
            ),
            (aiosmtplib.SMTPConnectError("refused"), False),
            (aiosmtplib.SMTPServerDisconnected("gone"), False),
            (TimeoutError(), False),
        ],
    )
    def test_only_a_5xx_for_this_mail_is_given_up(self, error, permanent):
        assert is_permanent(error) is permanent


class TestSettings:
    def test_staff_mails_go_to_the_support_address_else_the_admins(self, monkeypatch):
        monkeypatch.delenv("PORTAL_ADMIN_EMAIL", raising=False)
        monkeypatch.delenv("PORTAL_SUPPORT_EMAIL", raising=False)

        assert (
            SupportSettings(support_database_url="x").staff_email == "admin@localhost"
        )
        assert (
            SupportSettings(
                support_database_url="x", admin_email="boss@agency.test"
            ).staff_email
            == "boss@agency.test"
        )
        assert (
            SupportSettings(
                support_database_url="x",
                admin_email="boss@agency.test",
                support_email="help@agency.test",
            ).staff_email
            == "help@agency.test"
        )

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("support_email", "not-an-address"),
            ("time_zone", "Mars/Olympus"),
            ("mail_retry_seconds", 0),
        ],
    )
    def test_bad_configuration_is_refused(self, name, value):
        with pytest.raises(ValueError):
            SupportSettings(support_database_url="x", **{name: value})


class TestDaysOpen:
    def test_calendar_days_in_the_portals_zone(self):
        ticket = {
            "status": "open",
            "resolved_at": None,
            "created_at": datetime(2024, 1, 15, 23, 30, tzinfo=UTC),
        }
        now = datetime(2024, 1, 16, 0, 30, tzinfo=UTC)

        assert days_open(ticket, now=now, zone=ZoneInfo("UTC")) == 1
        assert days_open(ticket, now=now, zone=ZoneInfo("Europe/Amsterdam")) == 0

    def test_a_resolved_ticket_stops_counting(self):
        ticket = {
            "status": "resolved",
            "created_at": datetime(2024, 1, 10, 9, 0, tzinfo=UTC),
            "resolved_at": datetime(2024, 1, 12, 9, 0, tzinfo=UTC),
        }

        assert (
            days_open(
                ticket, now=datetime(2024, 3, 1, tzinfo=UTC), zone=ZoneInfo("UTC")
            )
            == 2
        )


class TestMailSink:
    async def test_each_mail_becomes_an_eml_file_named_after_its_message_id(
        self, tmp_path
    ):
        sink = MailSink(tmp_path / "mail")
        host, port = sink.start()
        message = email.message.EmailMessage()
        message["From"] = "noreply@localhost"
        message["To"] = "jane@client.test"
        message["Subject"] = "Hello"
        message["Message-ID"] = f"<{uuid.uuid4()}@localhost>"
        message.set_content("Body text")

        try:
            await aiosmtplib.send(message, hostname=host, port=port)
        finally:
            sink.stop()

        files = list((tmp_path / "mail").glob("*.eml"))
        assert len(files) == 1
        assert files[0].name.endswith(f"-{message['Message-ID'].strip('<>')}.eml")
        stored = email.message_from_bytes(
            files[0].read_bytes(), policy=email.policy.default
        )
        assert stored["Subject"] == "Hello"
        assert stored.get_content().strip() == "Body text"

    def test_the_sink_is_only_for_a_portal_without_an_smtp_host(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.chdir(tmp_path)

        assert not smtp_host_configured({})
        assert smtp_host_configured({"PORTAL_SMTP_HOST": "smtp.agency.test"})
        (tmp_path / ".env").write_text("PORTAL_SMTP_HOST=smtp.agency.test\n")
        assert smtp_host_configured({})
