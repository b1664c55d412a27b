"""Each event gives exactly the mails it owes, to the right people, with the right text.

Events of the other services are published onto NATS as those services
publish them; ticket events come from the support API itself. "No more
mails" is checked after a later mail of the same consumer has arrived: events
are handled in order, so by then the earlier one has been handled too.
"""

import re
import uuid

import pytest

STAFF = "staff@agency.test"


@pytest.fixture(scope="module")
async def acme(world):
    client = await world.make_client(
        company_name=world.unique("Acme "), contact_name="Jane Smith"
    )
    token = await world.client_user(client["id"])
    return {**client, "token": token}


async def barrier(world, client_id: str) -> None:
    """Publish an invoice and wait for its mail: all published before is handled."""
    invoice = world.invoice_payload(client_id)
    await world.publish("invoice.created", invoice)
    await world.wait_for_mails(invoice["invoice_number"], 1)


class TestTicketMails:
    async def test_a_new_ticket_mails_the_client_contact_and_the_staff(
        self, world, acme
    ):
        subject = world.unique("Workflow not triggering ")

        ticket = await world.open_ticket(
            acme["token"], subject=subject, description="It stopped on Monday."
        )
        mails = await world.wait_for_mails(subject, 2)

        assert sorted(mail.recipients[0] for mail in mails) == sorted(
            [acme["email"], STAFF]
        )
        to_client = next(mail for mail in mails if mail.recipients == [acme["email"]])
        to_staff = next(mail for mail in mails if mail.recipients == [STAFF])
        assert to_client.subject == f"We received your support ticket: {subject}"
        assert "Hello Jane Smith" in to_client.text
        assert "It stopped on Monday." in to_client.text
        assert subject in to_client.html
        assert (
            to_staff.subject
            == f"New support ticket from {acme['company_name']}: {subject}"
        )
        assert ticket["id"] in to_staff.text
        assert to_client.message["To"] == acme["email"]
        assert to_client.message["From"] == "Monoliet Portal <noreply@localhost>"
        assert re.fullmatch(
            r"<[0-9a-f-]{36}@localhost>", to_client.message["Message-ID"]
        )
        assert to_client.message["Message-ID"] != to_staff.message["Message-ID"]

    async def test_html_escapes_what_the_client_wrote(self, world, acme):
        subject = world.unique("<script>alert(1)</script> ")

        await world.open_ticket(acme["token"], subject=subject)
        mail = (await world.wait_for_mails(subject, 1, to=acme["email"]))[0]

        assert "<script>" not in mail.html
        assert "&lt;script&gt;" in mail.html
        assert subject in mail.text

    async def test_resolving_mails_the_client_only_and_other_changes_mail_nobody(
        self, world, acme
    ):
        subject = world.unique("Resolve me ")
        ticket = await world.open_ticket(acme["token"], subject=subject)
        await world.wait_for_mails(subject, 2)

        await world.change_ticket(ticket["id"], priority="high")
        await world.change_ticket(ticket["id"], status="in_progress")
        await world.change_ticket(ticket["id"], status="resolved")
        resolved = await world.wait_for_mails(f"resolved: {subject}", 1)
        await barrier(world, acme["id"])

        assert [mail.recipients for mail in resolved] == [[acme["email"]]]
        assert "has been resolved" in resolved[0].text
        assert len(world.mails_about(subject)) == 3

    async def test_each_resolution_is_mailed_once(self, world, acme):
        subject = world.unique("Twice resolved ")
        ticket = await world.open_ticket(acme["token"], subject=subject)

        await world.change_ticket(ticket["id"], status="resolved")
        await world.change_ticket(ticket["id"], status="open")
        await world.change_ticket(ticket["id"], status="resolved")
        await world.wait_for_mails(f"resolved: {subject}", 2)
        await barrier(world, acme["id"])

        assert len(world.mails_about(f"resolved: {subject}")) == 2

    async def test_staff_opening_a_ticket_for_a_client_mails_both(self, world, acme):
        subject = world.unique("Opened by staff ")

        await world.open_ticket(world.admin_token, client=acme["id"], subject=subject)
        mails = await world.wait_for_mails(subject, 2)

        assert sorted(mail.recipients[0] for mail in mails) == sorted(
            [acme["email"], STAFF]
        )


class TestInvoiceMails:
    async def test_a_new_invoice_mails_the_client_number_amount_type_and_due_date(
        self, world, acme
    ):
        invoice = await world.issue_invoice(
            acme["id"], amount="1234.50", type="setup", due_date="2030-03-15"
        )

        mails = await world.wait_for_mails(invoice["invoice_number"], 1)

        assert [mail.recipients for mail in mails] == [[acme["email"]]]
        mail = mails[0]
        assert mail.subject == f"New invoice {invoice['invoice_number']} for 1234.50"
        for fact in (invoice["invoice_number"], "1234.50", "setup", "2030-03-15"):
            assert fact in mail.text
            assert fact in mail.html

    @pytest.mark.parametrize(
        ("event_type", "subject_start", "sentence"),
        [
            ("invoice.due_soon", "Reminder: invoice", "is due on 2030-02-28"),
            ("invoice.overdue", "Invoice", "is now overdue"),
        ],
    )
    async def test_reminders_and_overdue_invoices_mail_the_client(
        self, world, acme, event_type, subject_start, sentence
    ):
        invoice = world.invoice_payload(
            acme["id"], status="overdue" if "overdue" in event_type else "pending"
        )

        await world.publish(event_type, invoice)
        mails = await world.wait_for_mails(invoice["invoice_number"], 1)

        assert [mail.recipients for mail in mails] == [[acme["email"]]]
        assert mails[0].subject.startswith(subject_start)
        assert sentence in mails[0].text
        assert "299.00" in mails[0].text

    async def test_other_invoice_events_mail_nobody(self, world, acme):
        invoice = world.invoice_payload(
            acme["id"], status="paid", previous_status="pending"
        )

        await world.publish("invoice.updated", invoice)
        await world.publish(
            "invoice.deleted", {"id": invoice["id"], "client_id": acme["id"]}
        )
        await barrier(world, acme["id"])

        assert world.mails_about(invoice["invoice_number"]) == []

    async def test_an_invoice_of_an_unknown_client_mails_nobody_and_blocks_nothing(
        self, world, acme
    ):
        stranger = world.invoice_payload(str(uuid.uuid4()))

        await world.publish("invoice.created", stranger)
        await barrier(world, acme["id"])

        assert world.mails_about(stranger["invoice_number"]) == []

    async def test_a_malformed_event_is_set_aside_and_blocks_nothing(self, world, acme):
        await world.publish(
            "invoice.created", {"client_id": acme["id"], "amount": "1.00"}
        )
        await world.publish("ticket.created", {"id": str(uuid.uuid4())})

        await barrier(world, acme["id"])


class TestWorkflowMails:
    def workflow(self, client_id: str, **changes):
        return {
            "id": str(uuid.uuid4()),
            "client_id": client_id,
            "workflow_name": f"Shopify orders {uuid.uuid4().hex[:8]}",
            "n8n_workflow_id": "WFPLACEHOLDER001",
            "status": "error",
            "previous_status": "active",
            "changed": ["status"],
            **changes,
        }

    async def test_a_workflow_entering_error_mails_the_staff(self, world, acme):
        workflow = self.workflow(acme["id"])

        await world.publish("workflow.updated", workflow)
        mails = await world.wait_for_mails(workflow["workflow_name"], 1)

        assert [mail.recipients for mail in mails] == [[STAFF]]
        name, company = workflow["workflow_name"], acme["company_name"]
        assert mails[0].subject == f"Workflow in error: {name} ({company})"
        assert "WFPLACEHOLDER001" in mails[0].text

    async def test_other_workflow_changes_mail_nobody(self, world, acme):
        still_error = self.workflow(
            acme["id"], previous_status="error", changed=["workflow_name"]
        )
        paused = self.workflow(acme["id"], status="paused")
        created = self.workflow(acme["id"], previous_status=None)

        await world.publish("workflow.updated", still_error)
        await world.publish("workflow.updated", paused)
        await world.publish("workflow.created", created)
        await barrier(world, acme["id"])

        for workflow in (still_error, paused, created):
            assert world.mails_about(workflow["workflow_name"]) == []

    @pytest.mark.parametrize(
        ("condition", "sentence"),
        [
            ("silent", "has not run for 7 days"),
            ("low_success_rate", "succeeded in 42.5 %"),
        ],
    )
    async def test_a_health_alert_mails_the_staff(
        self, world, acme, condition, sentence
    ):
        alert = {
            "id": str(uuid.uuid4()),
            "client_id": acme["id"],
            "workflow_name": f"Lead sync {uuid.uuid4().hex[:8]}",
            "n8n_workflow_id": "123",
            "condition": condition,
            "success_rate": 42.5,
            "threshold": 80.0,
            "last_execution": "2030-01-10T08:00:00Z",
            "period_days": 7,
        }

        await world.publish("workflow.health_alert", alert)
        mails = await world.wait_for_mails(alert["workflow_name"], 1)

        assert [mail.recipients for mail in mails] == [[STAFF]]
        assert sentence in mails[0].text
        assert acme["company_name"] in mails[0].subject


class TestExactlyOnce:
    async def test_the_same_event_delivered_twice_gives_one_mail(self, world, acme):
        invoice = world.invoice_payload(acme["id"])
        envelope = await world.publish("invoice.created", invoice)

        # Another Nats-Msg-Id, so JetStream stores and delivers it again.
        await world.publish(
            "invoice.created",
            invoice,
            envelope=envelope,
            msg_id=f"{envelope.event_id}:again",
        )
        await world.wait_for_mails(invoice["invoice_number"], 1)
        await barrier(world, acme["id"])

        assert len(world.mails_about(invoice["invoice_number"])) == 1
        rows = await world.notifications_about(
            invoice["invoice_number"], kind="invoice.created"
        )
        assert len(rows) == 1

    async def test_the_same_fact_published_twice_gives_one_mail(self, world, acme):
        invoice = world.invoice_payload(acme["id"])

        # Two envelopes (two event ids) for one reminder: the idempotency key
        # `<invoice>@<due date>:invoice.due_soon:client` owes one mail.
        await world.publish("invoice.due_soon", invoice)
        await world.publish("invoice.due_soon", invoice)
        await world.wait_for_mails(invoice["invoice_number"], 1)
        await barrier(world, acme["id"])

        assert len(world.mails_about(invoice["invoice_number"])) == 1

    async def test_a_ticket_event_redelivered_gives_no_second_pair(self, world, acme):
        subject = world.unique("Redelivered ")
        ticket = await world.open_ticket(acme["token"], subject=subject)
        await world.wait_for_mails(subject, 2)
        data = {
            "id": ticket["id"],
            "client_id": acme["id"],
            "subject": subject,
            "description": "placeholder",
            "priority": "medium",
            "status": "open",
            "resolved_at": None,
            "changed": [],
        }

        await world.publish("ticket.created", data)
        await barrier(world, acme["id"])

        assert len(world.mails_about(subject)) == 2


class TestClientCopy:
    async def test_mails_follow_a_changed_contact_address(self, world):
        client = await world.make_client()
        token = await world.client_user(client["id"])
        new_address = f"{world.unique('new')}@client.test"
        await self.change_email(world, client, new_address)

        subject = world.unique("After the move ")
        await world.open_ticket(token, subject=subject)
        mails = await world.wait_for_mails(subject, 2)

        assert sorted(mail.recipients[0] for mail in mails) == sorted(
            [new_address, STAFF]
        )

    async def test_a_deleted_clients_tickets_are_removed(self, world):
        client = await world.make_client()
        token = await world.client_user(client["id"])
        ticket = await world.open_ticket(token)

        await self.delete(world, client)

        async def gone() -> bool:
            async with world.http(world.admin_token) as http:
                response = await http.get(f"/api/support-tickets/{ticket['id']}/")
            return response.status_code == 404

        assert await world.eventually(gone)

    @staticmethod
    async def change_email(world, client, address: str) -> None:
        if world.runs("clients"):
            async with world.http(world.admin_token) as http:
                response = await http.patch(
                    f"/api/clients/{client['id']}/", json={"email": address}
                )
            assert response.status_code == 200, response.text
        else:
            await world.publish(
                "client.updated",
                {**world.client_state(client), "email": address, "changed": ["email"]},
            )

        async def known() -> bool:
            copied = await world.support_sql_value(
                "SELECT email FROM client_copy WHERE id = :id", id=client["id"]
            )
            return copied == address

        await world.eventually(known)

    @staticmethod
    async def delete(world, client) -> None:
        if world.runs("clients"):
            async with world.http(world.admin_token) as http:
                response = await http.delete(f"/api/clients/{client['id']}/")
            assert response.status_code == 204, response.text
        else:
            await world.publish("client.deleted", {"id": client["id"]})
