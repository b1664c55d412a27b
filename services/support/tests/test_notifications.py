"""The notifications list: what staff see of the mails sent and owed."""

import re
import uuid

import pytest

FIELDS = [
    "id",
    "kind",
    "recipient",
    "subject",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "sent_at",
    "next_attempt_at",
]
UTC_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FORBIDDEN = {"detail": "You do not have permission to perform this action."}

# Mails refused for good are made by no other test: these three are alone.
SEED = (
    "INSERT INTO notification (id, kind, recipient, subject, body_text, body_html, "
    "status, attempts, last_error, created_at, idempotency_key, event_id) VALUES "
    "(gen_random_uuid(), 'invoice.overdue', 'b@client.test', 'Seeded b', '', '', "
    "'failed', 1, '550 no such user', now() - interval '1 minute', :key || 'b', 'e'), "
    "(gen_random_uuid(), 'invoice.overdue', 'a@client.test', 'Seeded a', '', '', "
    "'failed', 1, '550 no such user', now() - interval '2 minutes', :key || 'a', 'e'), "
    "(gen_random_uuid(), 'invoice.overdue', 'c@client.test', 'Seeded c', '', '', "
    "'failed', 1, '550 no such user', now(), :key || 'c', 'e')"
)


@pytest.fixture(scope="module")
async def ticket_mails(world):
    client = await world.make_client()
    token = await world.client_user(client["id"])
    ticket = await world.open_ticket(token)
    await world.wait_for_mails(ticket["subject"], 2)
    return {"client": client, "token": token, "ticket": ticket}


@pytest.fixture(scope="module")
async def refused(world):
    await world.support_sql(SEED, key=f"seeded:{uuid.uuid4()}:")


async def listed(world, **params) -> list[str]:
    async with world.http(world.admin_token) as http:
        response = await http.get(
            "/api/notifications/",
            params={"status": "failed", "kind": "invoice.overdue", **params},
        )
    assert response.status_code == 200, response.text
    return [row["recipient"] for row in response.json()["results"]]


class TestList:
    async def test_staff_see_each_mail_with_its_delivery_state(
        self, world, ticket_mails
    ):
        subject = ticket_mails["ticket"]["subject"]

        rows = await world.eventually(
            lambda: _sent_rows(world, subject, expected=2),
        )

        assert all(list(row) == FIELDS for row in rows)
        assert sorted(row["recipient"] for row in rows) == sorted(
            [ticket_mails["client"]["email"], "staff@agency.test"]
        )
        for row in rows:
            assert row["kind"] == "ticket.created"
            assert row["attempts"] == 1
            assert row["last_error"] is None
            assert row["next_attempt_at"] is None
            assert UTC_DATETIME.match(row["created_at"])
            assert UTC_DATETIME.match(row["sent_at"])

    async def test_one_notification_can_be_read_alone(self, world, ticket_mails):
        row = (await world.notifications_about(ticket_mails["ticket"]["subject"]))[0]

        async with world.http(world.admin_token) as http:
            one = await http.get(f"/api/notifications/{row['id']}/")
            missing = await http.get(f"/api/notifications/{uuid.uuid4()}/")

        assert one.status_code == 200
        assert list(one.json()) == FIELDS
        assert one.json()["id"] == row["id"]
        assert missing.status_code == 404

    async def test_filters_on_kind_and_status(self, world, ticket_mails):
        sent = await world.notifications(status="sent", kind="ticket.created")
        resolved = await world.notifications(kind="ticket.resolved")

        assert sent
        assert all(row["status"] == "sent" for row in sent)
        assert all(row["kind"] == "ticket.created" for row in sent)
        assert all(row["kind"] == "ticket.resolved" for row in resolved)

    async def test_newest_first(self, world, refused):
        assert await listed(world) == [
            "c@client.test",
            "b@client.test",
            "a@client.test",
        ]

    @pytest.mark.parametrize(
        "path", ["/api/notifications/", f"/api/notifications/{uuid.uuid4()}/"]
    )
    async def test_client_users_are_refused_before_any_look_up(
        self, world, ticket_mails, path
    ):
        async with world.http(ticket_mails["token"]) as http:
            response = await http.get(path, params={"status": "bogus"})

        assert (response.status_code, response.json()) == (403, FORBIDDEN)

    async def test_anonymous_callers_are_refused(self, world):
        async with world.http() as http:
            response = await http.get("/api/notifications/")

        assert response.status_code == 401

    async def test_the_list_is_read_only(self, world):
        async with world.http(world.admin_token) as http:
            response = await http.post("/api/notifications/", json={})

        assert response.status_code == 405


class TestC03OrderingAndSearch:
    """Case C03 on /api/notifications/: only `created_at` orders; there is no search."""

    @pytest.mark.parametrize(
        "ordering", ["bogus", "--created_at", "recipient", "id,subject"]
    )
    async def test_unknown_and_private_terms_fall_back_to_newest_first(
        self, world, refused, ordering
    ):
        assert await listed(world, ordering=ordering) == [
            "c@client.test",
            "b@client.test",
            "a@client.test",
        ]

    async def test_oldest_first_on_request(self, world, refused):
        assert await listed(world, ordering="created_at,bogus") == [
            "a@client.test",
            "b@client.test",
            "c@client.test",
        ]

    @pytest.mark.parametrize("search", ["a@client", "nothing like it", "\x00"])
    async def test_search_is_ignored(self, world, refused, search):
        assert len(await listed(world, search=search)) == 3


async def _sent_rows(world, subject: str, *, expected: int) -> list[dict]:
    rows = await world.notifications_about(subject)
    done = len(rows) == expected and all(row["status"] == "sent" for row in rows)
    return rows if done else []
