"""The mail server goes away: requests succeed, mails wait, then go out once each."""

import pytest

STAFF = "staff@agency.test"


@pytest.fixture
async def smtp_refusing(world):
    """The SMTP server answers 451 to every recipient until the test lets it recover."""
    world.smtp.refusing = True
    yield world.smtp
    world.smtp.refusing = False


@pytest.fixture
async def smtp_down(world):
    """The SMTP server is gone (connections refused) until the test brings it back."""
    world.smtp.stop()
    yield world.smtp
    world.smtp.stop()
    world.smtp.start()


async def retrying(world, marker: str, count: int) -> list[dict]:
    """The notifications about `marker` once `count` of them have failed once."""

    async def failed_once() -> list[dict]:
        rows = await world.notifications_about(marker, status="retrying")
        return rows if len(rows) >= count else []

    return await world.eventually(failed_once)


class TestSmtpRefusing:
    async def test_three_tickets_while_the_server_refuses_give_three_mails_each_once(
        self, world, smtp_refusing
    ):
        client = await world.make_client()
        token = await world.client_user(client["id"])
        marker = world.unique("outage")

        tickets = [
            await world.open_ticket(token, subject=f"{marker} ticket {n}")
            for n in range(3)
        ]
        rows = await retrying(world, marker, 6)

        assert all(ticket["status"] == "open" for ticket in tickets)
        assert world.mails_about(marker) == []
        assert all(row["attempts"] >= 1 for row in rows)
        assert all("451" in row["last_error"] for row in rows)
        assert all(row["sent_at"] is None and row["next_attempt_at"] for row in rows)
        assert sorted(row["recipient"] for row in rows) == sorted(
            [client["email"]] * 3 + [STAFF] * 3
        )

        smtp_refusing.refusing = False
        await world.wait_for_mails(marker, 6)
        sent = await world.eventually(lambda: _all_sent(world, marker, 6))

        for ticket in tickets:
            mails = world.mails_about(ticket["subject"])
            assert sorted(mail.recipients[0] for mail in mails) == sorted(
                [client["email"], STAFF]
            )
        assert len(world.mails_about(marker)) == 6
        assert all(row["attempts"] >= 2 and row["sent_at"] for row in sent)


async def _all_sent(world, marker: str, count: int) -> list[dict]:
    rows = await world.notifications_about(marker)
    done = len(rows) == count and all(row["status"] == "sent" for row in rows)
    return rows if done else []


class TestC17SmtpFailure:
    """Case C17: SMTP failure must neither fail the request nor lose the mail."""

    async def test_four_mails_once_each_after_the_server_returns(
        self, world, smtp_down
    ):
        client = await world.make_client()
        token = await world.client_user(client["id"])
        subject = world.unique("Workflow not triggering ")

        async with world.http(token) as http:
            created = await http.post(
                "/api/support-tickets/",
                json={
                    "subject": subject,
                    "description": "placeholder",
                    "priority": "high",
                },
            )
        ticket = created.json()
        async with world.http(world.admin_token) as http:
            resolved = await http.patch(
                f"/api/support-tickets/{ticket['id']}/", json={"status": "resolved"}
            )
            lowered = await http.patch(
                f"/api/support-tickets/{ticket['id']}/", json={"priority": "low"}
            )
        invoice = await world.issue_invoice(client["id"])

        assert created.status_code == 201
        assert (ticket["status"], ticket["client"]) == ("open", client["id"])
        assert resolved.status_code == 200
        assert resolved.json()["resolved_at"].endswith("Z")
        assert lowered.status_code == 200

        # While the server is away the failure shows, mail by mail.
        waiting = await retrying(world, subject, 3)
        waiting += await retrying(world, invoice["invoice_number"], 1)
        assert all(row["attempts"] >= 1 and row["last_error"] for row in waiting)

        await world.system.restart_service("support", kill=True)
        smtp_down.start()
        await world.wait_for_mails(subject, 3)
        await world.wait_for_mails(invoice["invoice_number"], 1)
        await world.eventually(lambda: _all_sent(world, subject, 3))

        ticket_mails = world.mails_about(subject)
        assert sorted(
            (mail.recipients[0], mail.subject.split(":")[0]) for mail in ticket_mails
        ) == sorted(
            [
                (client["email"], "We received your support ticket"),
                (STAFF, f"New support ticket from {client['company_name']}"),
                (client["email"], "Your support ticket was resolved"),
            ]
        )
        invoice_mails = world.mails_about(invoice["invoice_number"])
        assert [mail.recipients for mail in invoice_mails] == [[client["email"]]]
