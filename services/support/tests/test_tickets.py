"""The support-ticket API through the gateway, as the frontend and scripts use it."""

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

FIELDS = [
    "id",
    "client",
    "client_name",
    "subject",
    "description",
    "status",
    "priority",
    "days_open",
    "resolved_at",
    "created_at",
    "updated_at",
]
UTC_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found."}


@pytest.fixture(scope="module")
async def two_clients(world):
    """Clients A and B, a user of each, and one ticket of each."""
    client_a = await world.make_client()
    client_b = await world.make_client()
    token_a = await world.client_user(client_a["id"])
    token_b = await world.client_user(client_b["id"])
    ticket_a = await world.open_ticket(token_a)
    ticket_b = await world.open_ticket(token_b)
    return {
        "a": client_a,
        "b": client_b,
        "token_a": token_a,
        "token_b": token_b,
        "ticket_a": ticket_a,
        "ticket_b": ticket_b,
    }


class TestCreate:
    async def test_a_client_user_opens_an_open_ticket_of_their_own_client(
        self, world, two_clients
    ):
        client = two_clients["a"]

        async with world.http(two_clients["token_a"]) as http:
            response = await http.post(
                "/api/support-tickets/",
                json={
                    "subject": "Workflow not triggering",
                    "description": "placeholder",
                    "priority": "high",
                },
            )

        assert response.status_code == 201
        ticket = response.json()
        assert list(ticket) == FIELDS
        assert ticket["client"] == client["id"]
        assert ticket["client_name"] == client["company_name"]
        assert ticket["status"] == "open"
        assert ticket["priority"] == "high"
        assert ticket["days_open"] == 0
        assert ticket["resolved_at"] is None
        assert UTC_DATETIME.match(ticket["created_at"])
        assert ticket["updated_at"] == ticket["created_at"]
        uuid.UUID(ticket["id"])

    async def test_a_client_users_ticket_stays_theirs_whatever_client_they_send(
        self, world, two_clients
    ):
        async with world.http(two_clients["token_a"]) as http:
            response = await http.post(
                "/api/support-tickets/",
                json={
                    "subject": "Not mine",
                    "description": "x",
                    "client": two_clients["b"]["id"],
                },
            )

        assert response.status_code == 201
        assert response.json()["client"] == two_clients["a"]["id"]

    async def test_a_client_user_cannot_open_a_ticket_already_resolved(
        self, world, two_clients
    ):
        ticket = await world.open_ticket(two_clients["token_a"], status="resolved")

        assert ticket["status"] == "open"
        assert ticket["resolved_at"] is None

    async def test_defaults_are_open_and_medium(self, world, two_clients):
        ticket = await world.open_ticket(
            world.admin_token, client=two_clients["a"]["id"]
        )

        assert (ticket["status"], ticket["priority"]) == ("open", "medium")

    async def test_staff_must_name_the_client(self, world):
        async with world.http(world.admin_token) as http:
            response = await http.post(
                "/api/support-tickets/", json={"subject": "s", "description": "d"}
            )

        assert response.status_code == 400
        assert response.json() == {"client": ["This field is required."]}

    async def test_staff_naming_an_unknown_client_is_a_field_error(self, world):
        missing = str(uuid.uuid4())

        async with world.http(world.admin_token) as http:
            response = await http.post(
                "/api/support-tickets/",
                json={"client": missing, "subject": "s", "description": "d"},
            )

        assert response.status_code == 400
        assert response.json() == {
            "client": [f'Invalid pk "{missing}" - object does not exist.']
        }

    async def test_every_field_error_is_reported_at_once(self, world, two_clients):
        body = {
            "client": "not-a-uuid",
            "subject": "x" * 201,
            "description": "",
            "status": "closed",
            "priority": "urgent",
        }

        async with world.http(world.admin_token) as http:
            response = await http.post("/api/support-tickets/", json=body)

        assert response.status_code == 400
        assert response.json() == {
            "client": ["\u201cnot-a-uuid\u201d is not a valid UUID."],
            "subject": ["Ensure this field has no more than 200 characters."],
            "description": ["This field may not be blank."],
            "status": ['"closed" is not a valid choice.'],
            "priority": ['"urgent" is not a valid choice.'],
        }

    async def test_missing_fields_of_a_client_user_are_named(self, world, two_clients):
        async with world.http(two_clients["token_a"]) as http:
            response = await http.post("/api/support-tickets/", json={})

        assert response.status_code == 400
        assert response.json() == {
            "subject": ["This field is required."],
            "description": ["This field is required."],
        }

    @pytest.mark.parametrize(
        ("content", "headers", "status"),
        [
            (b"{not json", {"Content-Type": "application/json"}, 400),
            (b"[1, 2]", {"Content-Type": "application/json"}, 400),
            (b"subject=s", {"Content-Type": "text/plain"}, 415),
            (
                b'{"subject": "\\u0000", "description": "d"}',
                {"Content-Type": "application/json"},
                400,
            ),
        ],
    )
    async def test_malformed_bodies_are_4xx_and_change_nothing(
        self, world, two_clients, content, headers, status
    ):
        before = await self._count(world, two_clients["a"]["id"])

        async with world.http(two_clients["token_a"]) as http:
            response = await http.post(
                "/api/support-tickets/", content=content, headers=headers
            )

        assert response.status_code == status
        assert await self._count(world, two_clients["a"]["id"]) == before

    async def test_form_data_is_accepted(self, world, two_clients):
        async with world.http(two_clients["token_a"]) as http:
            response = await http.post(
                "/api/support-tickets/",
                data={"subject": "Form", "description": "sent as a form"},
            )

        assert response.status_code == 201

    async def test_a_user_without_a_client_cannot_open_a_ticket(self, world):
        token = await world.client_user(None)

        async with world.http(token) as http:
            response = await http.post(
                "/api/support-tickets/", json={"subject": "s", "description": "d"}
            )

        assert response.status_code == 403
        assert response.json() == FORBIDDEN

    async def test_anonymous_callers_are_refused(self, world):
        async with world.http() as http:
            response = await http.post(
                "/api/support-tickets/", json={"subject": "s", "description": "d"}
            )

        assert response.status_code == 401
        assert response.json() == {
            "detail": "Authentication credentials were not provided."
        }

    @staticmethod
    async def _count(world, client_id: str) -> int:
        async with world.http(world.admin_token) as http:
            response = await http.get(
                "/api/support-tickets/", params={"client": client_id}
            )
        return response.json()["count"]


class TestPermissionMatrix:
    async def test_staff_see_every_ticket(self, world, two_clients):
        async with world.http(world.admin_token) as http:
            listed = await http.get("/api/support-tickets/", params={"page_size": 100})
            read_a = await http.get(
                f"/api/support-tickets/{two_clients['ticket_a']['id']}/"
            )
            read_b = await http.get(
                f"/api/support-tickets/{two_clients['ticket_b']['id']}/"
            )

        ids = {ticket["id"] for ticket in listed.json()["results"]}
        assert {two_clients["ticket_a"]["id"], two_clients["ticket_b"]["id"]} <= ids
        assert (read_a.status_code, read_b.status_code) == (200, 200)
        assert read_a.json() == {
            **two_clients["ticket_a"],
            "days_open": read_a.json()["days_open"],
        }

    async def test_a_client_user_sees_only_their_clients_tickets(
        self, world, two_clients
    ):
        async with world.http(two_clients["token_a"]) as http:
            listed = await http.get("/api/support-tickets/", params={"page_size": 100})
            own = await http.get(
                f"/api/support-tickets/{two_clients['ticket_a']['id']}/"
            )
            other = await http.get(
                f"/api/support-tickets/{two_clients['ticket_b']['id']}/"
            )

        assert {ticket["client"] for ticket in listed.json()["results"]} == {
            two_clients["a"]["id"]
        }
        assert own.status_code == 200
        assert other.status_code == 404
        assert other.json() == NOT_FOUND

    async def test_a_user_without_a_client_sees_nothing(self, world, two_clients):
        token = await world.client_user(None)

        async with world.http(token) as http:
            listed = await http.get("/api/support-tickets/")
            read = await http.get(
                f"/api/support-tickets/{two_clients['ticket_a']['id']}/"
            )

        assert listed.json() == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
        assert read.status_code == 404

    @pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
    @pytest.mark.parametrize("target", ["own", "other", "missing", "malformed"])
    async def test_client_users_may_not_change_tickets_whatever_the_id(
        self, world, two_clients, method, target
    ):
        ticket_id = {
            "own": two_clients["ticket_a"]["id"],
            "other": two_clients["ticket_b"]["id"],
            "missing": str(uuid.uuid4()),
            "malformed": "not-a-uuid",
        }[target]

        async with world.http(two_clients["token_a"]) as http:
            response = await http.request(
                method,
                f"/api/support-tickets/{ticket_id}/",
                json={"status": "resolved"},
            )
            after = await http.get(
                f"/api/support-tickets/{two_clients['ticket_a']['id']}/"
            )

        assert response.status_code == 403
        assert response.json() == FORBIDDEN
        assert after.json()["status"] == "open"

    async def test_anonymous_callers_cannot_list(self, world):
        async with world.http() as http:
            response = await http.get("/api/support-tickets/")

        assert response.status_code == 401

    async def test_staff_delete_a_ticket(self, world, two_clients):
        ticket = await world.open_ticket(two_clients["token_a"])

        async with world.http(world.admin_token) as http:
            deleted = await http.delete(f"/api/support-tickets/{ticket['id']}/")
            again = await http.delete(f"/api/support-tickets/{ticket['id']}/")
            read = await http.get(f"/api/support-tickets/{ticket['id']}/")

        assert deleted.status_code == 204
        assert again.status_code == 404
        assert read.status_code == 404

    @pytest.mark.parametrize("ticket_id", ["not-a-uuid", str(uuid.uuid4()), "1"])
    async def test_unknown_and_malformed_ids_are_not_found(self, world, ticket_id):
        async with world.http(world.admin_token) as http:
            read = await http.get(f"/api/support-tickets/{ticket_id}/")
            patched = await http.patch(
                f"/api/support-tickets/{ticket_id}/", content=b"{bad json"
            )

        assert (read.status_code, read.json()) == (404, NOT_FOUND)
        assert (patched.status_code, patched.json()) == (404, NOT_FOUND)

    async def test_a_method_the_route_lacks_is_405(self, world):
        async with world.http(world.admin_token) as http:
            response = await http.put("/api/support-tickets/", json={})

        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "PUT" not allowed.'}


class TestUpdate:
    async def test_resolve_reopen_and_resolve_again(self, world, two_clients):
        ticket = await world.open_ticket(two_clients["token_a"])

        resolved = await world.change_ticket(ticket["id"], status="resolved")
        reopened = await world.change_ticket(ticket["id"], status="in_progress")
        resolved_again = await world.change_ticket(ticket["id"], status="resolved")

        assert resolved["status"] == "resolved"
        assert UTC_DATETIME.match(resolved["resolved_at"])
        assert reopened["resolved_at"] is None
        assert reopened["status"] == "in_progress"
        assert UTC_DATETIME.match(resolved_again["resolved_at"])
        assert resolved_again["resolved_at"] > resolved["resolved_at"]
        assert (
            resolved_again["updated_at"] > resolved["updated_at"] > ticket["updated_at"]
        )

    async def test_a_change_that_keeps_the_status_keeps_resolved_at(
        self, world, two_clients
    ):
        ticket = await world.open_ticket(two_clients["token_a"])
        resolved = await world.change_ticket(ticket["id"], status="resolved")

        changed = await world.change_ticket(
            ticket["id"], priority="low", status="resolved"
        )

        assert changed["resolved_at"] == resolved["resolved_at"]
        assert changed["priority"] == "low"

    async def test_resolved_at_in_the_body_is_ignored(self, world, two_clients):
        ticket = await world.open_ticket(two_clients["token_a"])

        changed = await world.change_ticket(
            ticket["id"], resolved_at="2020-01-01T00:00:00Z", days_open=9
        )

        assert changed["resolved_at"] is None
        assert changed["days_open"] == 0

    async def test_staff_move_a_ticket_to_another_client(self, world, two_clients):
        ticket = await world.open_ticket(two_clients["token_a"])

        moved = await world.change_ticket(ticket["id"], client=two_clients["b"]["id"])

        assert moved["client"] == two_clients["b"]["id"]
        assert moved["client_name"] == two_clients["b"]["company_name"]

    async def test_bad_values_are_400_and_change_nothing(self, world, two_clients):
        ticket = await world.open_ticket(two_clients["token_a"])

        async with world.http(world.admin_token) as http:
            response = await http.patch(
                f"/api/support-tickets/{ticket['id']}/",
                json={"status": "done", "client": str(uuid.uuid4()), "subject": ""},
            )
            after = await http.get(f"/api/support-tickets/{ticket['id']}/")

        assert response.status_code == 400
        assert response.json() == {
            "subject": ["This field may not be blank."],
            "status": ['"done" is not a valid choice.'],
        }
        assert after.json() == {**ticket, "days_open": 0}

    async def test_an_unknown_client_is_400_and_changes_nothing(
        self, world, two_clients
    ):
        ticket = await world.open_ticket(two_clients["token_a"])
        missing = str(uuid.uuid4())

        async with world.http(world.admin_token) as http:
            response = await http.patch(
                f"/api/support-tickets/{ticket['id']}/",
                json={"client": missing, "priority": "high"},
            )
            after = await http.get(f"/api/support-tickets/{ticket['id']}/")

        assert response.status_code == 400
        assert response.json() == {
            "client": [f'Invalid pk "{missing}" - object does not exist.']
        }
        assert after.json()["priority"] == ticket["priority"]

    async def test_put_needs_every_required_field(self, world, two_clients):
        ticket = await world.open_ticket(two_clients["token_a"])

        async with world.http(world.admin_token) as http:
            response = await http.put(
                f"/api/support-tickets/{ticket['id']}/", json={"status": "resolved"}
            )

        assert response.status_code == 400
        assert response.json() == {
            "client": ["This field is required."],
            "subject": ["This field is required."],
            "description": ["This field is required."],
        }

    async def test_put_keeps_the_status_and_priority_it_does_not_name(
        self, world, two_clients
    ):
        ticket = await world.open_ticket(two_clients["token_a"], priority="high")
        resolved = await world.change_ticket(ticket["id"], status="resolved")
        body = {"client": ticket["client"], "subject": "New", "description": "New"}

        async with world.http(world.admin_token) as http:
            response = await http.put(
                f"/api/support-tickets/{ticket['id']}/", json=body
            )

        assert response.status_code == 200
        replaced = response.json()
        assert (replaced["subject"], replaced["description"]) == ("New", "New")
        assert (replaced["status"], replaced["priority"]) == ("resolved", "high")
        assert replaced["resolved_at"] == resolved["resolved_at"]

    async def test_days_open_counts_calendar_days_until_resolution(
        self, world, two_clients
    ):
        ticket = await world.open_ticket(two_clients["token_a"])
        await world.support_sql(
            "UPDATE ticket SET created_at = now() - interval '3 days' WHERE id = :id",
            id=ticket["id"],
        )

        async with world.http(world.admin_token) as http:
            open_for_three = (
                await http.get(f"/api/support-tickets/{ticket['id']}/")
            ).json()
        resolved = await world.change_ticket(ticket["id"], status="resolved")
        await world.support_sql(
            "UPDATE ticket SET resolved_at = created_at + interval '1 day' "
            "WHERE id = :id",
            id=ticket["id"],
        )
        async with world.http(world.admin_token) as http:
            resolved_after_one = (
                await http.get(f"/api/support-tickets/{ticket['id']}/")
            ).json()

        assert open_for_three["days_open"] == 3
        assert resolved["days_open"] == 3
        assert resolved_after_one["days_open"] == 1


class TestList:
    @pytest.fixture(scope="class")
    async def seeded(self, world):
        """A client of its own with tickets whose words and states the tests know."""
        client = await world.make_client()
        token = await world.client_user(client["id"])
        rows = [
            ("Acme checkout broken", "Orders from Jane stop", "high", "open"),
            ("Acme widgets sync", "John reports a delay", "low", "in_progress"),
            (
                "Globex invoice export",
                "Jane Acme asks about PDFs",
                "medium",
                "resolved",
            ),
        ]
        tickets = {}
        for subject, description, priority, status in rows:
            ticket = await world.open_ticket(
                token, subject=subject, description=description, priority=priority
            )
            if status != "open":
                ticket = await world.change_ticket(ticket["id"], status=status)
            tickets[subject] = ticket
        return {"client": client, "token": token, "tickets": tickets}

    async def _subjects(self, world, seeded, **params) -> list[str]:
        async with world.http(world.admin_token) as http:
            response = await http.get(
                "/api/support-tickets/",
                params={"client": seeded["client"]["id"], **params},
            )
        assert response.status_code == 200, response.text
        return [ticket["subject"] for ticket in response.json()["results"]]

    async def test_newest_first_by_default(self, world, seeded):
        assert await self._subjects(world, seeded) == [
            "Globex invoice export",
            "Acme widgets sync",
            "Acme checkout broken",
        ]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "open"}, ["Acme checkout broken"]),
            ({"status": "resolved"}, ["Globex invoice export"]),
            ({"priority": "low"}, ["Acme widgets sync"]),
            (
                {"status": "", "priority": ""},
                ["Globex invoice export", "Acme widgets sync", "Acme checkout broken"],
            ),
        ],
    )
    async def test_filters(self, world, seeded, params, expected):
        assert await self._subjects(world, seeded, **params) == expected

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            (
                {"ordering": "priority"},
                ["Acme checkout broken", "Acme widgets sync", "Globex invoice export"],
            ),
            (
                {"ordering": "-status"},
                ["Globex invoice export", "Acme checkout broken", "Acme widgets sync"],
            ),
            (
                {"ordering": "updated_at"},
                ["Acme checkout broken", "Acme widgets sync", "Globex invoice export"],
            ),
            (
                {"ordering": "created_at"},
                ["Acme checkout broken", "Acme widgets sync", "Globex invoice export"],
            ),
        ],
    )
    async def test_ordering(self, world, seeded, params, expected):
        assert await self._subjects(world, seeded, **params) == expected

    async def test_a_client_user_filtering_on_another_client_gets_an_empty_page(
        self, world, seeded, two_clients
    ):
        async with world.http(seeded["token"]) as http:
            other = await http.get(
                "/api/support-tickets/", params={"client": two_clients["b"]["id"]}
            )
            missing = await http.get(
                "/api/support-tickets/", params={"client": str(uuid.uuid4())}
            )
            own = await http.get(
                "/api/support-tickets/", params={"client": seeded["client"]["id"]}
            )

        assert (other.status_code, other.json()["count"]) == (200, 0)
        assert (missing.status_code, missing.json()["count"]) == (200, 0)
        assert own.json()["count"] == 3


SEED_TICKETS = (
    "INSERT INTO ticket (id, client_id, subject, description, created_at, updated_at) "
    "SELECT gen_random_uuid(), :client, 'Paged ' || n, 'seeded', "
    "now() - n * interval '1 second', now() - n * interval '1 second' "
    "FROM generate_series(1, :count) AS n"
)
# Mails refused for good: no other test makes any, so a filter on `failed`
# and the kind finds exactly the seeded ones.
SEED_NOTIFICATIONS = (
    "INSERT INTO notification (id, kind, recipient, subject, body_text, body_html, "
    "status, attempts, last_error, created_at, idempotency_key, event_id) "
    "SELECT gen_random_uuid(), CAST(:kind AS text), 'staff@agency.test', "
    "'Seeded ' || n, '', '', "
    "'failed', 1, '550 seeded', now() - n * interval '1 second', "
    "'seeded:' || CAST(:kind AS text) || ':' || n, 'seeded' "
    "FROM generate_series(1, :count) AS n"
)


def link_to(url: str | None) -> tuple[str, dict[str, list[str]]]:
    """A link as address and query parameters, whatever their order."""
    assert url is not None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(
        parts.query, keep_blank_values=True
    )


def with_params(url: str, **params: str) -> tuple[str, dict[str, list[str]]]:
    address, query = link_to(url)
    return address, {**query, **{name: [value] for name, value in params.items()}}


class TestC01Paging:
    """Case C01 on both lists: junk and out-of-range paging parameters."""

    @pytest.fixture(scope="class", params=["support-tickets", "notifications"])
    async def listing(self, request, world) -> str:
        """The URL of a list of exactly 120 rows, filtered to them."""
        if request.param == "support-tickets":
            client = await world.make_client()
            # Seeded in the database: 120 tickets through the API would also
            # mean 240 mails, which is not what this case is about.
            await world.support_sql(SEED_TICKETS, client=client["id"], count=120)
            return f"{world.portal.url}/api/support-tickets/?client={client['id']}"
        kind = "workflow.health_alert"
        await world.support_sql(SEED_NOTIFICATIONS, kind=kind, count=120)
        return f"{world.portal.url}/api/notifications/?kind={kind}&status=failed"

    async def _get(self, world, listing: str, query: str) -> tuple[int, dict]:
        async with world.http(world.admin_token) as http:
            response = await http.get(f"{listing}&{query}")
        return response.status_code, response.json()

    async def test_first_page(self, world, listing):
        status, body = await self._get(world, listing, "page=1")

        assert (status, body["count"], len(body["results"])) == (200, 120, 50)
        assert link_to(body["next"]) == with_params(listing, page="2")
        assert body["previous"] is None

    @pytest.mark.parametrize("page", ["3", "last"])
    async def test_last_page(self, world, listing, page):
        status, body = await self._get(world, listing, f"page={page}")

        assert (status, len(body["results"]), body["next"]) == (200, 20, None)
        assert link_to(body["previous"]) == with_params(listing, page="2")

    @pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.0", ""])
    async def test_invalid_pages_are_404(self, world, listing, page):
        status, body = await self._get(world, listing, f"page={page}")

        assert (status, body) == (404, {"detail": "Invalid page."})

    @pytest.mark.parametrize("size", ["0", "-5", "abc", ""])
    async def test_junk_page_sizes_give_the_default(self, world, listing, size):
        status, body = await self._get(world, listing, f"page_size={size}")

        assert (status, len(body["results"])) == (200, 50)
        assert link_to(body["next"]) == with_params(listing, page="2", page_size=size)

    @pytest.mark.parametrize("size", ["101", "1000"])
    async def test_page_size_is_capped_at_100(self, world, listing, size):
        status, body = await self._get(world, listing, f"page_size={size}")

        assert (status, body["count"], len(body["results"])) == (200, 120, 100)

    async def test_second_page_of_100(self, world, listing):
        _, body = await self._get(world, listing, "page_size=100&page=2")

        assert len(body["results"]) == 20
        assert link_to(body["previous"]) == with_params(listing, page_size="100")

    async def test_pages_do_not_overlap(self, world, listing):
        seen = []
        for page in (1, 2, 3):
            _, body = await self._get(world, listing, f"page={page}")
            seen += [row["id"] for row in body["results"]]

        assert len(seen) == len(set(seen)) == 120


class TestC03OrderingAndSearch:
    """Case C03 on /api/support-tickets/: odd ordering terms, multi-word search, NUL."""

    @pytest.fixture(scope="class")
    async def seeded(self, world):
        client = await world.make_client()
        marker = world.unique("c03")
        token = await world.client_user(client["id"])
        for subject, description in [
            ("Acme Corporation outage", "Jane Smith reports"),
            ("Acme Widgets sync", "John Roe reports"),
            ("Globex export", "Jane Acme reports"),
        ]:
            await world.open_ticket(
                token, subject=subject, description=f"{description} {marker}"
            )
        return {"client": client, "marker": marker}

    async def _subjects(self, world, seeded, **params):
        async with world.http(world.admin_token) as http:
            response = await http.get(
                "/api/support-tickets/",
                params={"client": seeded["client"]["id"], **params},
            )
        assert response.status_code == 200, response.text
        return [ticket["subject"] for ticket in response.json()["results"]]

    @pytest.mark.parametrize(
        "ordering", ["bogus", "--created_at", "description", "client_name", "id,bogus"]
    )
    async def test_unknown_and_private_terms_fall_back_to_newest_first(
        self, world, seeded, ordering
    ):
        assert await self._subjects(world, seeded, ordering=ordering) == [
            "Globex export",
            "Acme Widgets sync",
            "Acme Corporation outage",
        ]

    async def test_valid_terms_survive_next_to_unknown_ones(self, world, seeded):
        assert await self._subjects(world, seeded, ordering="created_at,bogus") == [
            "Acme Corporation outage",
            "Acme Widgets sync",
            "Globex export",
        ]

    @pytest.mark.parametrize(
        ("search", "expected"),
        [
            ("acme", {"Acme Corporation outage", "Acme Widgets sync", "Globex export"}),
            ("ACME jane", {"Acme Corporation outage", "Globex export"}),
            ("acme smith", {"Acme Corporation outage"}),
            ("acme,widgets", {"Acme Widgets sync"}),
            ("acme   widgets", {"Acme Widgets sync"}),
            ("jane\x00", {"Acme Corporation outage", "Globex export"}),
            ("   ", {"Acme Corporation outage", "Acme Widgets sync", "Globex export"}),
            ('"acme corporation"', set()),
            ("100%_", set()),
        ],
    )
    async def test_search_words_must_all_match_somewhere(
        self, world, seeded, search, expected
    ):
        assert set(await self._subjects(world, seeded, search=search)) == expected


TICKETS = "/api/support-tickets/"
NOTIFICATIONS = "/api/notifications/"
NOT_A_UUID = "\u201cnot-a-uuid\u201d is not a valid UUID."
UNKNOWN_ID = "Select a valid choice. That choice is not one of the available choices."


def not_a_choice(value: str) -> str:
    return f"Select a valid choice. {value} is not one of the available choices."


class TestC04MalformedFilters:
    """Case C04 on /api/support-tickets/ and /api/notifications/: malformed filters."""

    @pytest.mark.parametrize(
        ("path", "params", "body"),
        [
            (TICKETS, {"client": "not-a-uuid"}, {"client": [NOT_A_UUID]}),
            (TICKETS, {"client": str(uuid.UUID(int=0))}, {"client": [UNKNOWN_ID]}),
            (TICKETS, {"status": "bogus"}, {"status": [not_a_choice("bogus")]}),
            (
                TICKETS,
                {"status": "OPEN", "priority": "HIGH"},
                {"status": [not_a_choice("OPEN")], "priority": [not_a_choice("HIGH")]},
            ),
            (NOTIFICATIONS, {"status": "bogus"}, {"status": [not_a_choice("bogus")]}),
            (NOTIFICATIONS, {"kind": "ticket"}, {"kind": [not_a_choice("ticket")]}),
        ],
    )
    async def test_bad_values_are_400_with_djangos_message(
        self, world, path, params, body
    ):
        async with world.http(world.admin_token) as http:
            response = await http.get(path, params=params)

        assert response.status_code == 400
        assert response.json() == body

    @pytest.mark.parametrize("form", [str.upper, lambda value: value.replace("-", "")])
    async def test_other_spellings_of_a_client_id_filter_normally(
        self, world, two_clients, form
    ):
        async with world.http(world.admin_token) as http:
            response = await http.get(
                "/api/support-tickets/", params={"client": form(two_clients["a"]["id"])}
            )

        assert response.status_code == 200
        assert {ticket["client"] for ticket in response.json()["results"]} == {
            two_clients["a"]["id"]
        }

    async def test_empty_values_mean_no_filter(self, world):
        async with world.http(world.admin_token) as http:
            tickets = await http.get(
                "/api/support-tickets/", params={"status": "", "client": ""}
            )
            notifications = await http.get(
                "/api/notifications/", params={"status": "", "kind": ""}
            )

        assert (tickets.status_code, notifications.status_code) == (200, 200)

    @pytest.mark.parametrize(
        "path", ["/api/support-tickets/not-a-uuid/", "/api/notifications/not-a-uuid/"]
    )
    async def test_malformed_ids_in_paths_are_not_found(self, world, path):
        async with world.http(world.admin_token) as http:
            response = await http.get(path)

        assert (response.status_code, response.json()) == (404, NOT_FOUND)

    async def test_a_client_user_filtering_on_another_client_gets_nothing(
        self, world, two_clients
    ):
        async with world.http(two_clients["token_a"]) as http:
            response = await http.get(
                "/api/support-tickets/", params={"client": two_clients["b"]["id"]}
            )

        assert (response.status_code, response.json()["count"]) == (200, 0)
