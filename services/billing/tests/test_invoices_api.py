"""The invoices API through the gateway, as staff, client users and scripts use it."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

FIELDS = [
    "id",
    "client",
    "client_name",
    "invoice_number",
    "amount",
    "type",
    "status",
    "due_date",
    "paid_date",
    "is_overdue",
    "stripe_invoice_id",
    "created_at",
    "updated_at",
]
NUMBER = re.compile(r"INV-(\d{4})-(\d{3,})")


def today_utc() -> str:
    # The shared portal runs with PORTAL_TIME_ZONE=UTC and the real clock.
    return datetime.now(UTC).date().isoformat()


def days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


class TestCreate:
    async def test_staff_create_an_invoice_with_the_next_number(self, billing):
        client = await billing.make_client()

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/",
                json={
                    "client": client["id"],
                    "amount": "299.00",
                    "type": "monthly",
                    "due_date": "2099-02-28",
                    "stripe_invoice_id": "in_1234567890",
                },
            )

        assert response.status_code == 201, response.text
        body = response.json()
        assert list(body) == FIELDS
        assert NUMBER.fullmatch(body["invoice_number"])
        assert body["invoice_number"].startswith(f"INV-{datetime.now(UTC).year}-")
        assert body == {
            "id": body["id"],
            "client": client["id"],
            "client_name": client["company_name"],
            "invoice_number": body["invoice_number"],
            "amount": "299.00",
            "type": "monthly",
            "status": "pending",
            "due_date": "2099-02-28",
            "paid_date": None,
            "is_overdue": False,
            "stripe_invoice_id": "in_1234567890",
            "created_at": body["created_at"],
            "updated_at": body["created_at"],
        }
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["created_at"]
        )
        assert await billing.read_invoice(body["id"]) == body

    async def test_invoice_number_and_other_read_only_fields_are_ignored(self, billing):
        client = await billing.make_client()

        invoice = await billing.create_invoice(
            client["id"],
            invoice_number="INV-1999-001",
            is_overdue=True,
            client_name="Forged",
            created_at="2000-01-01T00:00:00Z",
            id=str(uuid.uuid4()),
        )

        assert invoice["invoice_number"] != "INV-1999-001"
        assert invoice["client_name"] == client["company_name"]
        assert invoice["is_overdue"] is False
        assert not invoice["created_at"].startswith("2000")

    async def test_an_invoice_created_paid_without_a_date_is_paid_today(self, billing):
        client = await billing.make_client()

        paid_now = await billing.create_invoice(client["id"], status="paid")
        paid_before = await billing.create_invoice(
            client["id"], status="paid", paid_date="2024-01-25"
        )

        assert paid_now["status"] == "paid"
        assert paid_now["paid_date"] == today_utc()
        assert paid_before["paid_date"] == "2024-01-25"

    async def test_form_data_is_accepted(self, billing):
        client = await billing.make_client()

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/",
                data={
                    "client": client["id"],
                    "amount": "12.5",
                    "type": "setup",
                    "due_date": "2099-01-01",
                },
            )

        assert response.status_code == 201, response.text
        assert response.json()["amount"] == "12.50"

    async def test_every_missing_field_is_named(self, billing):
        async with billing.staff() as http:
            response = await http.post("/api/invoices/", json={})

        assert response.status_code == 400
        assert response.json() == {
            "client": ["This field is required."],
            "amount": ["This field is required."],
            "type": ["This field is required."],
            "due_date": ["This field is required."],
        }

    async def test_bad_values_are_400_with_every_field_error(self, billing):
        unknown = str(uuid.uuid4())

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/",
                json={
                    "client": unknown,
                    "amount": "-1",
                    "type": "yearly",
                    "status": "PAID",
                    "due_date": "2024-02-30",
                    "paid_date": "yesterday",
                    "stripe_invoice_id": "x" * 256,
                },
            )

        assert response.status_code == 400
        assert response.json() == {
            "client": [f'Invalid pk "{unknown}" - object does not exist.'],
            "amount": ["Ensure this value is greater than or equal to 0.00."],
            "type": ['"yearly" is not a valid choice.'],
            "status": ['"PAID" is not a valid choice.'],
            "due_date": [
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
            ],
            "paid_date": [
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
            ],
            "stripe_invoice_id": ["Ensure this field has no more than 255 characters."],
        }

    async def test_an_unknown_client_is_named_by_its_id(self, billing):
        unknown = str(uuid.uuid4())

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/", json=billing.invoice_body(unknown)
            )

        assert response.status_code == 400
        assert response.json() == {
            "client": [f'Invalid pk "{unknown}" - object does not exist.']
        }

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("not-a-uuid", "\u201cnot-a-uuid\u201d is not a valid UUID."),
            ([], "Incorrect type. Expected pk value, received list."),
            ({"id": 1}, "Incorrect type. Expected pk value, received dict."),
            (True, "Incorrect type. Expected pk value, received bool."),
            (None, "This field may not be null."),
        ],
    )
    async def test_a_malformed_client_is_400(self, billing, value, message):
        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/", json=billing.invoice_body("x", client=value)
            )

        assert response.status_code == 400
        assert response.json() == {"client": [message]}

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("amount", {"x": 1}, "A valid number is required."),
            ("amount", [1], "A valid number is required."),
            ("amount", "1" * 2000, "String value too large."),
            ("type", ["monthly"], "\"['monthly']\" is not a valid choice."),
            ("status", None, "This field may not be null."),
            (
                "due_date",
                20240101,
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
            ),
            (
                "due_date",
                "2024-01-01T00:00:00Z",
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
            ),
            (
                "paid_date",
                "2024-13-45",
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
            ),
            ("stripe_invoice_id", "in_\x00", "Null characters are not allowed."),
        ],
    )
    async def test_junk_in_any_field_is_a_400_naming_it(
        self, billing, field, value, message
    ):
        client = await billing.make_client()

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/",
                json=billing.invoice_body(client["id"], **{field: value}),
            )

        assert response.status_code == 400
        assert response.json() == {field: [message]}

    @pytest.mark.parametrize(
        ("content", "content_type", "status", "body"),
        [
            (
                b"[1, 2]",
                "application/json",
                400,
                {
                    "non_field_errors": [
                        "Invalid data. Expected a dictionary, but got list."
                    ]
                },
            ),
            (b"{not json", "application/json", 400, None),
            (
                b"amount=1",
                "text/plain",
                415,
                {"detail": 'Unsupported media type "text/plain" in request.'},
            ),
        ],
    )
    async def test_malformed_bodies_are_refused(
        self, billing, content, content_type, status, body
    ):
        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/",
                content=content,
                headers={"Content-Type": content_type},
            )

        assert response.status_code == status
        if body is None:
            assert response.json()["detail"].startswith("JSON parse error - ")
        else:
            assert response.json() == body

    async def test_a_body_over_one_mebibyte_is_413(self, billing):
        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/",
                content=b'{"a": "' + b"x" * (1024 * 1024) + b'"}',
                headers={"Content-Type": "application/json"},
            )

        assert response.status_code == 413


class TestUpdateAndDelete:
    async def test_patch_changes_the_fields_given(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])

        async with billing.staff() as http:
            response = await http.patch(
                f"/api/invoices/{invoice['id']}/",
                json={"amount": "310", "invoice_number": "INV-1-1"},
            )

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["amount"] == "310.00"
        assert body["invoice_number"] == invoice["invoice_number"]
        assert body["type"] == "monthly" and body["status"] == "pending"
        assert body["updated_at"] >= invoice["updated_at"]

    async def test_setting_paid_without_a_date_pays_it_today(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])

        async with billing.staff() as http:
            response = await http.patch(
                f"/api/invoices/{invoice['id']}/", json={"status": "paid"}
            )

        assert response.status_code == 200
        assert response.json()["status"] == "paid"
        assert response.json()["paid_date"] == today_utc()

    async def test_put_needs_every_required_field_and_keeps_an_absent_status(
        self, billing
    ):
        client = await billing.make_client()
        invoice = await billing.create_invoice(
            client["id"], status="paid", paid_date="2024-01-25"
        )

        async with billing.staff() as http:
            incomplete = await http.put(
                f"/api/invoices/{invoice['id']}/", json={"amount": "1"}
            )
            replaced = await http.put(
                f"/api/invoices/{invoice['id']}/",
                json={
                    "client": client["id"],
                    "amount": "1",
                    "type": "setup",
                    "due_date": "2099-03-01",
                },
            )

        assert incomplete.status_code == 400
        assert incomplete.json() == {
            "client": ["This field is required."],
            "type": ["This field is required."],
            "due_date": ["This field is required."],
        }
        assert replaced.status_code == 200
        assert replaced.json()["type"] == "setup"
        assert replaced.json()["status"] == "paid"
        assert replaced.json()["paid_date"] == "2024-01-25"

    async def test_moving_an_invoice_to_another_client_checks_that_client(
        self, billing
    ):
        client, other = await billing.make_client(), await billing.make_client()
        invoice = await billing.create_invoice(client["id"])
        unknown = str(uuid.uuid4())

        async with billing.staff() as http:
            refused = await http.patch(
                f"/api/invoices/{invoice['id']}/", json={"client": unknown}
            )
            moved = await http.patch(
                f"/api/invoices/{invoice['id']}/", json={"client": other["id"]}
            )

        assert refused.status_code == 400
        assert refused.json() == {
            "client": [f'Invalid pk "{unknown}" - object does not exist.']
        }
        assert moved.status_code == 200
        assert moved.json()["client"] == other["id"]
        assert moved.json()["client_name"] == other["company_name"]

    async def test_bad_values_change_nothing(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])

        async with billing.staff() as http:
            response = await http.patch(
                f"/api/invoices/{invoice['id']}/",
                json={"amount": "1", "due_date": "soon"},
            )

        assert response.status_code == 400
        assert response.json() == {
            "due_date": [
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
            ]
        }
        assert await billing.read_invoice(invoice["id"]) == invoice

    async def test_delete_removes_the_invoice(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])

        async with billing.staff() as http:
            deleted = await http.delete(f"/api/invoices/{invoice['id']}/")
            gone = await http.get(f"/api/invoices/{invoice['id']}/")
            again = await http.delete(f"/api/invoices/{invoice['id']}/")

        assert deleted.status_code == 204
        assert gone.status_code == 404
        assert gone.json() == {"detail": "Not found."}
        assert again.status_code == 404

    @pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
    @pytest.mark.parametrize("invoice_id", ["not-a-uuid", str(uuid.uuid4()), "1"])
    async def test_an_unknown_or_malformed_id_is_not_found(
        self, billing, method, invoice_id
    ):
        async with billing.staff() as http:
            response = await http.request(
                method, f"/api/invoices/{invoice_id}/", json={}
            )

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    async def test_a_method_the_route_lacks_is_405(self, billing):
        async with billing.staff() as http:
            response = await http.put("/api/invoices/", json={})

        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "PUT" not allowed.'}


class TestOverdue:
    async def test_a_pending_invoice_past_its_due_date_reads_as_overdue(self, billing):
        client = await billing.make_client()
        yesterday, today = days_from_today(-1), days_from_today(0)

        past_due = await billing.create_invoice(client["id"], due_date=yesterday)
        due_today = await billing.create_invoice(client["id"], due_date=today)
        paid_late = await billing.create_invoice(
            client["id"], due_date=yesterday, status="paid"
        )

        assert (past_due["status"], past_due["is_overdue"]) == ("overdue", True)
        assert (due_today["status"], due_today["is_overdue"]) == ("pending", False)
        assert (paid_late["status"], paid_late["is_overdue"]) == ("paid", False)

    async def test_status_filters_follow_what_the_api_shows(self, billing):
        client = await billing.make_client()
        past_due = await billing.create_invoice(
            client["id"], due_date=days_from_today(-3)
        )
        pending = await billing.create_invoice(
            client["id"], due_date=days_from_today(3)
        )
        paid = await billing.create_invoice(client["id"], status="paid")

        async def ids(status: str) -> set[str]:
            async with billing.staff() as http:
                response = await http.get(
                    "/api/invoices/", params={"client": client["id"], "status": status}
                )
            assert response.status_code == 200
            return {row["id"] for row in response.json()["results"]}

        assert await ids("overdue") == {past_due["id"]}
        assert await ids("pending") == {pending["id"]}
        assert await ids("paid") == {paid["id"]}


class TestPermissionMatrix:
    """CONTRACT.md §2: staff everything; a client's user reads their own; others nothing."""

    @pytest.fixture(scope="class")
    async def world(self, billing):
        """Shared by the class: no test here may change what it made."""
        own, other = await billing.make_client(), await billing.make_client()
        return {
            "own": own,
            "own_invoice": await billing.create_invoice(own["id"]),
            "other_invoice": await billing.create_invoice(other["id"]),
            "client_user": await billing.client_user(own["id"]),
            "no_client_user": await billing.client_user(None),
        }

    async def test_a_client_user_lists_and_reads_only_their_own(self, billing, world):
        async with billing.portal.client(world["client_user"]) as http:
            listed = await http.get("/api/invoices/")
            own = await http.get(f"/api/invoices/{world['own_invoice']['id']}/")
            other = await http.get(f"/api/invoices/{world['other_invoice']['id']}/")

        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["results"]] == [
            world["own_invoice"]["id"]
        ]
        assert listed.json()["results"][0] == world["own_invoice"]
        assert own.status_code == 200 and own.json() == world["own_invoice"]
        assert other.status_code == 404
        assert other.json() == {"detail": "Not found."}

    @pytest.mark.parametrize(
        "target", ["own_invoice", "other_invoice", "missing", "malformed"]
    )
    @pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
    async def test_a_client_user_may_not_write_whatever_the_id(
        self, billing, world, method, target
    ):
        invoice_id = {
            "missing": str(uuid.uuid4()),
            "malformed": "not-a-uuid",
        }.get(target) or world[target]["id"]

        async with billing.portal.client(world["client_user"]) as http:
            response = await http.request(
                method, f"/api/invoices/{invoice_id}/", json={"amount": "0"}
            )

        assert response.status_code == 403
        assert response.json() == {
            "detail": "You do not have permission to perform this action."
        }
        assert (
            await billing.read_invoice(world["own_invoice"]["id"])
            == world["own_invoice"]
        )

    async def test_a_client_user_may_not_create(self, billing, world):
        async with billing.portal.client(world["client_user"]) as http:
            response = await http.post(
                "/api/invoices/", json=billing.invoice_body(world["own"]["id"])
            )

        assert response.status_code == 403
        assert response.json() == {
            "detail": "You do not have permission to perform this action."
        }

    async def test_a_user_without_a_client_sees_nothing(self, billing, world):
        async with billing.portal.client(world["no_client_user"]) as http:
            listed = await http.get("/api/invoices/")
            read = await http.get(f"/api/invoices/{world['own_invoice']['id']}/")
            download = await http.get(
                f"/api/invoices/{world['own_invoice']['id']}/download/"
            )

        assert listed.status_code == 200
        assert listed.json() == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
        assert read.status_code == 404
        assert download.status_code == 404

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/invoices/"),
            ("POST", "/api/invoices/"),
            ("GET", "/api/invoices/{id}/"),
            ("PATCH", "/api/invoices/{id}/"),
            ("DELETE", "/api/invoices/{id}/"),
            ("GET", "/api/invoices/{id}/download/"),
        ],
    )
    async def test_without_a_token_everything_is_401(
        self, billing, world, method, path
    ):
        async with billing.portal.client() as http:
            response = await http.request(
                method, path.format(id=world["own_invoice"]["id"])
            )

        assert response.status_code == 401
        assert response.json() == {
            "detail": "Authentication credentials were not provided."
        }
        assert response.headers["WWW-Authenticate"] == "Token"

    async def test_staff_see_every_client(self, billing, world):
        async with billing.staff() as http:
            own = await http.get(f"/api/invoices/{world['own_invoice']['id']}/")
            other = await http.get(f"/api/invoices/{world['other_invoice']['id']}/")

        assert own.status_code == other.status_code == 200


class TestC18MoneyValues:
    @pytest.mark.parametrize(
        ("sent", "returned"),
        [
            ("299", "299.00"),
            (299, "299.00"),
            (" 299.00 ", "299.00"),
            (299.5, "299.50"),
            ("1e2", "100.00"),
            ("12345678.90", "12345678.90"),
            ("0", "0.00"),
            ("-0", "0.00"),
        ],
    )
    async def test_accepted_amounts_come_back_as_two_decimal_strings(
        self, billing, sent, returned
    ):
        client = await billing.make_client()

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/", json=billing.invoice_body(client["id"], amount=sent)
            )
            listed = await http.get("/api/invoices/", params={"client": client["id"]})

        assert response.status_code == 201, response.text
        assert response.json()["amount"] == returned
        assert listed.json()["results"][0]["amount"] == returned

    @pytest.mark.parametrize(
        ("sent", "message"),
        [
            ("299.999", "Ensure that there are no more than 2 decimal places."),
            ("299.995", "Ensure that there are no more than 2 decimal places."),
            ("-1", "Ensure this value is greater than or equal to 0.00."),
            ("123456789.00", "Ensure that there are no more than 10 digits in total."),
            ("NaN", "A valid number is required."),
            ("Infinity", "A valid number is required."),
            ("", "A valid number is required."),
            (True, "A valid number is required."),
            (None, "This field may not be null."),
        ],
    )
    async def test_refused_amounts_are_400_and_nothing_is_created(
        self, billing, sent, message
    ):
        client = await billing.make_client()

        async with billing.staff() as http:
            response = await http.post(
                "/api/invoices/", json=billing.invoice_body(client["id"], amount=sent)
            )
            listed = await http.get("/api/invoices/", params={"client": client["id"]})

        assert response.status_code == 400
        assert response.json() == {"amount": [message]}
        assert listed.json()["count"] == 0


class TestConcurrentNumbering:
    async def test_fifty_invoices_created_at_once_get_fifty_consecutive_numbers(
        self, billing
    ):
        client = await billing.make_client()

        async with billing.staff() as http:
            responses = await asyncio.gather(
                *(
                    http.post("/api/invoices/", json=billing.invoice_body(client["id"]))
                    for _ in range(50)
                )
            )

        assert [r.status_code for r in responses] == [201] * 50
        numbers = [NUMBER.fullmatch(r.json()["invoice_number"]) for r in responses]
        assert len({match[1] for match in numbers}) == 1
        sequence = sorted(int(match[2]) for match in numbers)
        assert sequence == list(range(sequence[0], sequence[0] + 50))
