"""Two replicas of support share the events and the mail queue: still one mail each."""

import asyncio

import pytest

STAFF = "staff@agency.test"


@pytest.fixture(scope="module")
async def replicated(world_factory):
    world = await world_factory(replicas={"support": 2})
    yield world
    # Free the machine for the tests that follow; the session stops it anyway.
    world.system.stop()


async def test_two_replicas_send_one_mail_per_recipient_per_event(replicated):
    world = replicated
    client = await world.make_client()
    token = await world.client_user(client["id"])
    marker = world.unique("replicas")

    tickets = await asyncio.gather(
        *(world.open_ticket(token, subject=f"{marker} ticket {n}") for n in range(6))
    )
    invoices = [world.invoice_payload(client["id"]) for _ in range(4)]
    for invoice in invoices:
        envelope = await world.publish("invoice.created", invoice)
        await world.publish(
            "invoice.created",
            invoice,
            envelope=envelope,
            msg_id=f"{envelope.event_id}:again",
        )
    await world.wait_for_mails(marker, 12)
    for invoice in invoices:
        await world.wait_for_mails(invoice["invoice_number"], 1)
    await world.eventually(lambda: _sent(world, marker, 12))
    barrier = world.invoice_payload(client["id"])
    await world.publish("invoice.created", barrier)
    await world.wait_for_mails(barrier["invoice_number"], 1)

    for ticket in tickets:
        recipients = sorted(
            mail.recipients[0] for mail in world.mails_about(ticket["subject"])
        )
        assert recipients == sorted([client["email"], STAFF])
    for invoice in invoices:
        assert len(world.mails_about(invoice["invoice_number"])) == 1
    message_ids = [mail.message["Message-ID"] for mail in world.smtp.mails]
    assert len(message_ids) == len(set(message_ids))


async def _sent(world, marker: str, count: int) -> bool:
    rows = await world.notifications_about(marker)
    return len(rows) == count and all(row["status"] == "sent" for row in rows)
