"""Events billing publishes and consumes, read back from the real JetStream stream."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest


def days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


class TestPublishedEvents:
    async def test_each_change_is_published_exactly_once(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(
            client["id"], amount="299", due_date="2099-02-28"
        )
        async with billing.staff() as http:
            paid = await http.patch(
                f"/api/invoices/{invoice['id']}/", json={"status": "paid"}
            )
            refused = await http.patch(
                f"/api/invoices/{invoice['id']}/", json={"amount": "-5"}
            )
            await http.patch(
                f"/api/invoices/{invoice['id']}/", json={"amount": "310.5"}
            )
            await http.delete(f"/api/invoices/{invoice['id']}/")

        envelopes = await billing.published_events(invoice["id"])

        assert refused.status_code == 400
        assert [e["type"] for e in envelopes] == [
            "invoice.created",
            "invoice.updated",
            "invoice.updated",
            "invoice.deleted",
        ]
        created, first_update, second_update, deleted = envelopes
        assert set(created) == {
            "id",
            "type",
            "occurred_at",
            "source",
            "version",
            "data",
        }
        assert created["source"] == "billing" and created["version"] == 1
        assert len({e["id"] for e in envelopes}) == 4
        assert created["data"] == {
            "id": invoice["id"],
            "client_id": client["id"],
            "invoice_number": invoice["invoice_number"],
            "amount": "299.00",
            "type": "monthly",
            "status": "pending",
            "due_date": "2099-02-28",
            "paid_date": None,
            "previous_status": None,
        }
        assert first_update["data"] == {
            **created["data"],
            "status": "paid",
            "paid_date": paid.json()["paid_date"],
            "previous_status": "pending",
        }
        assert second_update["data"]["amount"] == "310.50"
        assert second_update["data"]["previous_status"] == "paid"
        assert deleted["data"]["id"] == invoice["id"]

    async def test_an_invoice_created_past_due_is_announced_overdue_once(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(
            client["id"], due_date=days_from_today(-2)
        )

        envelopes = await billing.published_events(invoice["id"])

        assert invoice["status"] == "overdue" and invoice["is_overdue"] is True
        assert [e["type"] for e in envelopes] == ["invoice.created", "invoice.overdue"]
        assert envelopes[1]["data"]["status"] == "overdue"
        assert envelopes[1]["data"]["invoice_number"] == invoice["invoice_number"]

    async def test_staff_marking_overdue_announces_it_once_per_invoice(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])
        async with billing.staff() as http:
            for status in ("overdue", "pending", "overdue"):
                response = await http.patch(
                    f"/api/invoices/{invoice['id']}/", json={"status": status}
                )
                assert response.status_code == 200

        types = await billing.event_types(invoice["id"])

        assert types == [
            "invoice.created",
            "invoice.updated",
            "invoice.overdue",
            "invoice.updated",
            "invoice.updated",
        ]

    async def test_a_refused_write_publishes_nothing(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])
        async with billing.staff() as http:
            for body in (
                {"amount": "x"},
                {"type": "bogus"},
                {"client": str(uuid.uuid4())},
            ):
                assert (
                    await http.patch(f"/api/invoices/{invoice['id']}/", json=body)
                ).status_code == 400

        assert await billing.event_types(invoice["id"]) == ["invoice.created"]


class TestClientEvents:
    @pytest.mark.parametrize(
        "via_events", [False, True], ids=["clients-api", "client-events"]
    )
    async def test_a_renamed_client_shows_its_new_name(self, billing, via_events):
        client = await billing.make_client(via_events=via_events)
        invoice = await billing.create_invoice(client["id"])
        new_name = f"Renamed {uuid.uuid4().hex[:6]}"

        await billing.rename_client(client, new_name, via_events=via_events)

        async def renamed():
            return (await billing.read_invoice(invoice["id"]))[
                "client_name"
            ] == new_name

        await billing.wait_for(renamed, what="the new client name")

    @pytest.mark.parametrize(
        "via_events", [False, True], ids=["clients-api", "client-events"]
    )
    async def test_deleting_a_client_removes_its_invoices(self, billing, via_events):
        client, other = (
            await billing.make_client(via_events=via_events),
            await billing.make_client(),
        )
        doomed = [await billing.create_invoice(client["id"]) for _ in range(3)]
        kept = await billing.create_invoice(other["id"])

        await billing.delete_client(client["id"], via_events=via_events)

        async def gone():
            async with billing.staff() as http:
                answers = [await http.get(f"/api/invoices/{i['id']}/") for i in doomed]
            return all(answer.status_code == 404 for answer in answers)

        await billing.wait_for(gone, what="the client's invoices to go")
        assert await billing.read_invoice(kept["id"]) == kept
        for invoice in doomed:
            assert (await billing.event_types(invoice["id"]))[-1] == "invoice.deleted"
        async with billing.staff() as http:
            refused = await http.post(
                "/api/invoices/", json=billing.invoice_body(client["id"])
            )
            listed = await http.get("/api/invoices/", params={"client": client["id"]})
        assert refused.status_code == 400
        assert refused.json() == {
            "client": [f'Invalid pk "{client["id"]}" - object does not exist.']
        }
        assert listed.status_code == 400

    async def test_a_delivered_twice_deletion_removes_once(self, billing):
        client = await billing.make_client(via_events=True)
        invoice = await billing.create_invoice(client["id"])
        envelope = await billing.publish_client_event(
            "client.deleted", {"id": client["id"]}
        )

        # The same event again, as a producer resend after the de-duplication window would.
        await billing.publish_raw(
            "client.deleted", envelope.encode(), msg_id=f"{envelope.event_id}:resend"
        )

        async def gone():
            async with billing.staff() as http:
                return (
                    await http.get(f"/api/invoices/{invoice['id']}/")
                ).status_code == 404

        await billing.wait_for(gone, what="the invoice to go")
        assert await billing.event_types(invoice["id"]) == [
            "invoice.created",
            "invoice.deleted",
        ]

    async def test_malformed_client_events_do_not_block_the_next(self, billing):
        for data in (
            {"id": "not-a-uuid"},
            {"company_name": "No id"},
            {"id": str(uuid.uuid4()), "company_name": 42},
        ):
            await billing.publish_client_event("client.created", data)
        await billing.publish_raw(
            "client.created", b"not json", msg_id=str(uuid.uuid4())
        )
        await billing.publish_raw(
            "client.created",
            json.dumps({"id": "x", "type": "client.created"}).encode(),
            msg_id=str(uuid.uuid4()),
        )

        client = await billing.make_client(via_events=True)

        assert (await billing.create_invoice(client["id"]))["client_name"] == client[
            "company_name"
        ]
