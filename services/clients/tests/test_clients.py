"""The clients API through the gateway: shapes, permissions, validation."""

import uuid

import httpx
import pytest

FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found."}

FULL_FIELDS = [
    "id",
    "company_name",
    "contact_name",
    "email",
    "phone",
    "status",
    "plan_tier",
    "setup_fee",
    "monthly_fee",
    "billing_cycle",
    "next_billing_date",
    "notes",
    "workflows_count",
    "active_workflows_count",
    "created_at",
    "updated_at",
]
LIMITED_FIELDS = [
    "id",
    "company_name",
    "contact_name",
    "email",
    "phone",
    "status",
    "plan_tier",
    "billing_cycle",
    "workflows_count",
    "created_at",
]


async def read_as_admin(portal, client_id: str) -> dict:
    async with portal.client(portal.admin_token) as http:
        response = await http.get(f"/api/clients/{client_id}/")
    assert response.status_code == 200, response.text
    return response.json()


class TestCreateAndRead:
    async def test_staff_create_answers_the_full_client_in_reference_order(
        self, portal
    ):
        body = {
            "company_name": "New Company Inc",
            "contact_name": "Jane Smith",
            "email": f"jane{uuid.uuid4().hex[:6]}@newcompany.com",
            "phone": "+1-555-0200",
            "status": "active",
            "plan_tier": "Business Process",
            "setup_fee": "750.00",
            "monthly_fee": "499.00",
            "billing_cycle": "monthly",
            "next_billing_date": "2024-03-01",
            "notes": "New client onboarding",
        }

        async with portal.client(portal.admin_token) as http:
            response = await http.post("/api/clients/", json=body)

        assert response.status_code == 201, response.text
        created = response.json()
        assert list(created) == FULL_FIELDS
        assert {name: created[name] for name in body} == body
        uuid.UUID(created["id"])
        assert created["workflows_count"] == 0
        assert created["active_workflows_count"] == 0
        assert created["created_at"].endswith("Z")
        assert await read_as_admin(portal, created["id"]) == created

    async def test_defaults_fill_what_staff_leave_out(self, portal):
        email = f"min{uuid.uuid4().hex[:6]}@example.com"
        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/clients/",
                json={
                    "company_name": "Minimal",
                    "contact_name": "Min",
                    "email": email,
                    "plan_tier": "Basic",
                },
            )

        assert response.status_code == 201, response.text
        created = response.json()
        assert created["phone"] == ""
        assert created["status"] == "active"
        assert created["billing_cycle"] == "monthly"
        assert created["setup_fee"] == "0.00"
        assert created["monthly_fee"] == "0.00"
        assert created["next_billing_date"] is None
        assert created["notes"] == ""

    async def test_missing_and_bad_fields_are_named_with_drf_messages(self, portal):
        async with portal.client(portal.admin_token) as http:
            missing = await http.post("/api/clients/", json={})
            bad = await http.post(
                "/api/clients/",
                json={
                    "company_name": "",
                    "contact_name": "x" * 256,
                    "email": "not-an-email",
                    "plan_tier": "Basic",
                    "status": "bogus",
                    "billing_cycle": "weekly",
                    "phone": "1" * 21,
                    "next_billing_date": "2024-02-30",
                },
            )

        assert missing.status_code == 400
        assert missing.json() == {
            name: ["This field is required."]
            for name in ("company_name", "contact_name", "email", "plan_tier")
        }
        assert bad.status_code == 400
        assert bad.json() == {
            "company_name": ["This field may not be blank."],
            "contact_name": ["Ensure this field has no more than 255 characters."],
            "email": ["Enter a valid email address."],
            "phone": ["Ensure this field has no more than 20 characters."],
            "status": ['"bogus" is not a valid choice.'],
            "billing_cycle": ['"weekly" is not a valid choice.'],
            "next_billing_date": [
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
            ],
        }

    async def test_malformed_json_and_other_media_types_are_refused(self, portal):
        async with portal.client(portal.admin_token) as http:
            broken = await http.post(
                "/api/clients/",
                content=b"{",
                headers={"Content-Type": "application/json"},
            )
            text = await http.post(
                "/api/clients/", content=b"x", headers={"Content-Type": "text/plain"}
            )

        assert broken.status_code == 400
        assert broken.json()["detail"].startswith("JSON parse error - ")
        assert text.status_code == 415


class TestDuplicateEmail:
    async def test_a_duplicate_email_in_another_case_is_400_and_creates_nothing(
        self, portal, make_client
    ):
        first = await make_client()
        company = f"Duplicate {uuid.uuid4().hex[:6]}"

        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/clients/",
                json={
                    "company_name": company,
                    "contact_name": "X",
                    "email": first["email"].upper(),
                    "plan_tier": "B",
                },
            )
            listed = await http.get("/api/clients/", params={"search": company})

        assert response.status_code == 400
        assert response.json() == {"email": ["client with this email already exists."]}
        assert listed.json()["count"] == 0

    async def test_changing_to_a_taken_email_is_400_and_changes_nothing(
        self, portal, make_client
    ):
        first = await make_client()
        second = await make_client()

        async with portal.client(portal.admin_token) as http:
            response = await http.patch(
                f"/api/clients/{second['id']}/",
                json={"email": first["email"].title(), "notes": "changed"},
            )

        assert response.status_code == 400
        assert response.json() == {"email": ["client with this email already exists."]}
        assert await read_as_admin(portal, second["id"]) == second

    async def test_a_client_may_keep_its_own_email_in_another_case(
        self, portal, make_client
    ):
        client = await make_client()

        async with portal.client(portal.admin_token) as http:
            response = await http.patch(
                f"/api/clients/{client['id']}/", json={"email": client["email"].upper()}
            )

        assert response.status_code == 200
        assert response.json()["email"] == client["email"].upper()


class TestC18MoneyValues:
    @pytest.mark.parametrize("field", ["setup_fee", "monthly_fee"])
    @pytest.mark.parametrize(
        ("sent", "answered"),
        [
            ("299", "299.00"),
            (299, "299.00"),
            (" 299.00 ", "299.00"),
            (299.5, "299.50"),
            ("1e2", "100.00"),
            ("12345678.90", "12345678.90"),
        ],
    )
    async def test_accepted_amounts_come_back_as_two_decimal_strings(
        self, portal, make_client, field, sent, answered
    ):
        client = await make_client(**{field: sent})

        assert client[field] == answered
        assert (await read_as_admin(portal, client["id"]))[field] == answered

    @pytest.mark.parametrize("field", ["setup_fee", "monthly_fee"])
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
    async def test_refused_amounts_name_the_rule_and_change_nothing(
        self, portal, make_client, field, sent, message
    ):
        client = await make_client()

        async with portal.client(portal.admin_token) as http:
            created = await http.post(
                "/api/clients/",
                json={
                    "company_name": "Money",
                    "contact_name": "M",
                    "email": f"m{uuid.uuid4().hex[:8]}@x.example",
                    "plan_tier": "B",
                    field: sent,
                },
            )
            patched = await http.patch(
                f"/api/clients/{client['id']}/", json={field: sent}
            )

        for response in (created, patched):
            assert response.status_code == 400
            assert response.json() == {field: [message]}
        assert await read_as_admin(portal, client["id"]) == client


class TestPermissionMatrix:
    """Staff, the client's own user, another client's user, a user without a client."""

    @pytest.fixture
    async def actors(self, portal, make_client, make_client_user):
        own = await make_client()
        other = await make_client()
        return {
            "client": own,
            "other": other,
            "own_token": await make_client_user(own["id"]),
            "other_token": await make_client_user(other["id"]),
            "loner_token": await make_client_user(None),
        }

    async def test_staff_may_do_everything(self, portal, actors):
        client_id = actors["client"]["id"]
        async with portal.client(portal.admin_token) as http:
            listed = await http.get("/api/clients/")
            read = await http.get(f"/api/clients/{client_id}/")
            patched = await http.patch(
                f"/api/clients/{client_id}/", json={"status": "paused", "notes": "n"}
            )

        assert listed.status_code == 200
        assert read.status_code == 200
        assert list(read.json()) == FULL_FIELDS
        assert patched.status_code == 200
        assert patched.json()["status"] == "paused"

    async def test_the_clients_own_user_reads_the_limited_view(self, portal, actors):
        client = actors["client"]
        async with portal.client(actors["own_token"]) as http:
            me = await http.get("/api/clients/me/")
            read = await http.get(f"/api/clients/{client['id']}/")
            read_upper = await http.get(f"/api/clients/{client['id'].upper()}/")

        assert me.status_code == 200
        assert list(me.json()) == LIMITED_FIELDS
        assert me.json() == {name: client[name] for name in LIMITED_FIELDS}
        assert read.json() == me.json()
        assert read_upper.json() == me.json()

    async def test_a_client_user_may_change_contact_email_and_phone(
        self, portal, actors
    ):
        client = actors["client"]
        change = {
            "contact_name": "John Doe",
            "email": f"john{uuid.uuid4().hex[:6]}@acme.example",
            "phone": "+31 6",
        }

        async with portal.client(actors["own_token"]) as http:
            patched = await http.patch(f"/api/clients/{client['id']}/", json=change)
            put = await http.put(
                f"/api/clients/{client['id']}/", json={**change, "contact_name": "Jo"}
            )

        assert patched.status_code == 200, patched.text
        assert list(patched.json()) == LIMITED_FIELDS
        assert {name: patched.json()[name] for name in change} == change
        assert put.status_code == 200, put.text
        assert put.json()["contact_name"] == "Jo"
        stored = await read_as_admin(portal, client["id"])
        assert stored["contact_name"] == "Jo"
        assert stored["monthly_fee"] == client["monthly_fee"]

    @pytest.mark.parametrize(
        "field_value",
        [
            ("status", "churned"),
            ("plan_tier", "Enterprise"),
            ("setup_fee", "0.00"),
            ("monthly_fee", "1.00"),
            ("billing_cycle", "yearly"),
            ("next_billing_date", "2030-01-01"),
            ("notes", "mine now"),
            ("company_name", "Renamed"),
        ],
    )
    async def test_a_client_user_sending_a_staff_field_is_refused_and_nothing_changes(
        self, portal, actors, field_value
    ):
        field, value = field_value
        client = actors["client"]
        body = {"contact_name": "Sneaky", field: value}

        async with portal.client(actors["own_token"]) as http:
            patched = await http.patch(f"/api/clients/{client['id']}/", json=body)
            put = await http.put(
                f"/api/clients/{client['id']}/", json={**body, "email": client["email"]}
            )

        for response in (patched, put):
            assert response.status_code == 403
            assert response.json() == FORBIDDEN
        assert await read_as_admin(portal, client["id"]) == client

    async def test_read_only_fields_in_a_client_users_body_are_ignored(
        self, portal, actors
    ):
        client = actors["client"]
        body = {
            "id": str(uuid.uuid4()),
            "workflows_count": 99,
            "active_workflows_count": 99,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "phone": "+1-555-9999",
        }

        async with portal.client(actors["own_token"]) as http:
            response = await http.patch(f"/api/clients/{client['id']}/", json=body)

        assert response.status_code == 200
        assert response.json()["id"] == client["id"]
        assert response.json()["workflows_count"] == 0
        assert response.json()["created_at"] == client["created_at"]
        assert response.json()["phone"] == "+1-555-9999"

    async def test_staff_only_actions_are_403_for_a_client_user_before_any_look_up(
        self, portal, actors
    ):
        client_id = actors["client"]["id"]
        for token in (actors["own_token"], actors["loner_token"]):
            async with portal.client(token) as http:
                answers = [
                    await http.get("/api/clients/"),
                    await http.post("/api/clients/", json={"company_name": "X"}),
                    await http.delete(f"/api/clients/{client_id}/"),
                    await http.delete(f"/api/clients/{uuid.uuid4()}/"),
                    await http.delete("/api/clients/not-a-uuid/"),
                ]
            for response in answers:
                assert response.status_code == 403, response.text
                assert response.json() == FORBIDDEN
        assert (await read_as_admin(portal, client_id))["id"] == client_id

    async def test_another_clients_user_gets_404_never_403(self, portal, actors):
        client = actors["client"]
        async with portal.client(actors["other_token"]) as http:
            answers = [
                await http.get(f"/api/clients/{client['id']}/"),
                await http.patch(f"/api/clients/{client['id']}/", json={"phone": "1"}),
                await http.patch(
                    f"/api/clients/{client['id']}/", json={"status": "churned"}
                ),
                await http.put(
                    f"/api/clients/{client['id']}/",
                    json={"contact_name": "A", "email": "a@b.example"},
                ),
                await http.get(f"/api/clients/{uuid.uuid4()}/"),
            ]

        for response in answers:
            assert response.status_code == 404
            assert response.json() == NOT_FOUND
        assert await read_as_admin(portal, client["id"]) == client

    async def test_a_user_without_a_client_sees_no_client(self, portal, actors):
        async with portal.client(actors["loner_token"]) as http:
            me = await http.get("/api/clients/me/")
            read = await http.get(f"/api/clients/{actors['client']['id']}/")

        assert me.status_code == 404
        assert me.json() == {"detail": "No client is linked to this user."}
        assert read.status_code == 404
        assert read.json() == NOT_FOUND

    async def test_staff_without_a_client_get_404_on_me(self, portal):
        async with portal.client(portal.admin_token) as http:
            me = await http.get("/api/clients/me/")

        assert me.status_code == 404
        assert me.json() == {"detail": "No client is linked to this user."}

    async def test_without_a_token_everything_is_401(self, portal, actors):
        async with portal.client() as http:
            answers = [
                await http.get("/api/clients/"),
                await http.get("/api/clients/me/"),
            ]

        for response in answers:
            assert response.status_code == 401
            assert response.json() == {
                "detail": "Authentication credentials were not provided."
            }


class TestDelete:
    async def test_staff_delete_answers_204_and_the_client_is_gone(
        self, portal, make_client
    ):
        client = await make_client()

        async with portal.client(portal.admin_token) as http:
            deleted = await http.delete(f"/api/clients/{client['id']}/")
            again = await http.delete(f"/api/clients/{client['id']}/")
            read = await http.get(f"/api/clients/{client['id']}/")

        assert deleted.status_code == 204
        assert again.status_code == 404
        assert read.status_code == 404

    async def test_a_malformed_id_is_404(self, portal):
        async with portal.client(portal.admin_token) as http:
            answers = [
                await http.get("/api/clients/not-a-uuid/"),
                await http.patch("/api/clients/not-a-uuid/", json={}),
                await http.delete("/api/clients/not-a-uuid/"),
            ]

        for response in answers:
            assert response.status_code == 404
            assert response.json() == NOT_FOUND


class TestMethods:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("PUT", "/api/clients/"),
            ("DELETE", "/api/clients/"),
            ("POST", "/api/clients/{id}/"),
            ("PUT", "/api/clients/me/"),
            ("DELETE", "/api/clients/me/"),
            ("POST", "/api/credentials/{id}/"),
        ],
    )
    async def test_a_method_the_route_lacks_is_405(
        self, portal, make_client, method, path
    ):
        client = await make_client()

        async with portal.client(portal.admin_token) as http:
            response = await http.request(method, path.format(id=client["id"]), json={})

        assert response.status_code == 405
        assert response.json() == {"detail": f'Method "{method}" not allowed.'}


class TestInternalLookUp:
    async def test_other_services_read_the_shared_fields_with_the_internal_token(
        self, portal, make_client
    ):
        client = await make_client()
        base = portal.system.processes["clients"][0].url
        token = portal.system.env["PORTAL_INTERNAL_TOKEN"]

        async with httpx.AsyncClient(base_url=base) as http:
            found = await http.get(
                f"/internal/clients/{client['id']}",
                headers={"X-Portal-Internal": token},
            )
            missing = await http.get(
                f"/internal/clients/{uuid.uuid4()}",
                headers={"X-Portal-Internal": token},
            )
            malformed = await http.get(
                "/internal/clients/abc", headers={"X-Portal-Internal": token}
            )
            stranger = await http.get(
                f"/internal/clients/{client['id']}",
                headers={"X-Portal-Internal": "wrong"},
            )

        assert found.status_code == 200
        assert found.json() == {
            "id": client["id"],
            "company_name": client["company_name"],
            "contact_name": client["contact_name"],
            "email": client["email"],
            "status": client["status"],
            "plan_tier": client["plan_tier"],
            "updated_at": client["updated_at"],
        }
        assert missing.status_code == 404
        assert malformed.status_code == 404
        assert stranger.status_code == 403

    async def test_the_gateway_does_not_route_internal_paths(self, portal, make_client):
        client = await make_client()

        async with portal.client(portal.admin_token) as http:
            response = await http.get(f"/internal/clients/{client['id']}")

        assert response.status_code == 404
