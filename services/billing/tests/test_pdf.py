"""GET /api/invoices/{id}/download/: a real PDF, read back with pypdf."""

import io
import uuid

import pypdf
import pytest


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


class TestDownload:
    async def test_the_pdf_shows_the_agency_client_and_every_invoice_fact(
        self, billing
    ):
        client = await billing.make_client(
            company_name="Acme Corporation", contact_name="Jane Smith"
        )
        invoice = await billing.create_invoice(
            client["id"], amount="299", due_date="2099-02-28"
        )

        async with billing.staff() as http:
            response = await http.get(f"/api/invoices/{invoice['id']}/download/")

        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="{invoice["invoice_number"]}.pdf"'
        )
        assert response.content.startswith(b"%PDF-")
        text = pdf_text(response.content)
        for expected in (
            "Monoliet",
            "Acme Corporation",
            "Jane Smith",
            invoice["invoice_number"],
            "Monthly",
            "299.00",
            "2099-02-28",
            "Pending",
            "Not paid",
        ):
            assert expected in text, expected

    async def test_a_paid_invoice_shows_its_paid_date(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(
            client["id"],
            type="setup",
            amount="1500.5",
            status="paid",
            paid_date="2024-01-25",
        )

        async with billing.staff() as http:
            response = await http.get(f"/api/invoices/{invoice['id']}/download/")

        text = pdf_text(response.content)
        for expected in ("Setup", "1500.50", "Paid", "2024-01-25"):
            assert expected in text, expected

    async def test_names_in_other_scripts_are_printed_as_they_are(self, billing):
        client = await billing.make_client(
            company_name="Łódź Café Ørsted", contact_name="Zoë Straße"
        )
        invoice = await billing.create_invoice(client["id"])

        async with billing.staff() as http:
            response = await http.get(f"/api/invoices/{invoice['id']}/download/")

        assert response.status_code == 200
        text = pdf_text(response.content)
        assert "Łódź Café Ørsted" in text
        assert "Zoë Straße" in text

    async def test_a_client_user_downloads_their_own_and_it_is_logged(self, billing):
        own, other = await billing.make_client(), await billing.make_client()
        mine = await billing.create_invoice(own["id"])
        theirs = await billing.create_invoice(other["id"])
        token = await billing.client_user(own["id"])
        async with billing.portal.client(token) as http:
            user_id = (await http.get("/api/auth/me/")).json()["id"]

            allowed = await http.get(f"/api/invoices/{mine['id']}/download/")
            refused = await http.get(f"/api/invoices/{theirs['id']}/download/")

        assert allowed.status_code == 200
        assert mine["invoice_number"] in pdf_text(allowed.content)
        assert refused.status_code == 404
        assert refused.json() == {"detail": "Not found."}

        def audit_lines():
            return [
                line
                for line in billing.log_lines()
                if line.get("event") == "invoice.downloaded"
                and line.get("invoice_id") == mine["id"]
            ]

        async def logged():
            return audit_lines()

        [line] = await billing.wait_for(logged, what="the download's audit line")
        assert line["level"] == "info"
        assert line["actor_user_id"] == user_id
        assert line["actor_client_id"] == own["id"]
        assert line["actor_is_staff"] is False

    @pytest.mark.parametrize("invoice_id", ["not-a-uuid", str(uuid.uuid4())])
    async def test_an_unknown_invoice_is_not_found(self, billing, invoice_id):
        async with billing.staff() as http:
            response = await http.get(f"/api/invoices/{invoice_id}/download/")

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    async def test_only_get_is_allowed(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])

        async with billing.staff() as http:
            response = await http.post(f"/api/invoices/{invoice['id']}/download/")

        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "POST" not allowed.'}
