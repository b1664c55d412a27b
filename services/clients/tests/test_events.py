"""client.* events on the real bus, and what the auth service does with them."""

import datetime as dt
import json
import uuid

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from portal_common.testing.plugin import eventually

STATE_FIELDS = ("company_name", "contact_name", "email", "status", "plan_tier")


async def client_events(nats_url: str, client_id: str) -> list[dict]:
    """Every envelope in the portal's stream about one client, in stream order."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE
        )
        subscription = await js.pull_subscribe(
            "client.>", stream="PORTAL_EVENTS", config=config
        )
        found = []
        while True:
            try:
                messages = await subscription.fetch(500, timeout=2)
            except TimeoutError:  # nats-py raises the built-in one here
                break
            for message in messages:
                try:
                    envelope = json.loads(message.data)
                    about = envelope["data"].get("id")
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue  # another test's deliberately malformed event
                if about == client_id:
                    msg_id = message.headers.get("Nats-Msg-Id")
                    found.append(
                        {**envelope, "subject": message.subject, "msg_id": msg_id}
                    )
            if messages[-1].metadata.num_pending == 0:
                break
        await subscription.unsubscribe()
        return found
    finally:
        await connection.close()


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestClientEvents:
    async def test_each_change_is_published_once_with_the_clients_state(
        self, portal, make_client, make_client_user
    ):
        client = await make_client(company_name=f"Evented {uuid.uuid4().hex[:6]}")
        token = await make_client_user(client["id"])
        async with portal.client(portal.admin_token) as http:
            staff_change = await http.patch(
                f"/api/clients/{client['id']}/",
                json={"status": "paused", "contact_name": "Ann Lee", "notes": "x"},
            )
            unchanged = await http.patch(
                f"/api/clients/{client['id']}/", json={"status": "paused"}
            )
        async with portal.client(token) as http:
            new_email = f"own{uuid.uuid4().hex[:6]}@example.com"
            own_change = await http.patch(
                f"/api/clients/{client['id']}/", json={"email": new_email}
            )
        async with portal.client(portal.admin_token) as http:
            after_own = await http.get(f"/api/clients/{client['id']}/")
            deleted = await http.delete(f"/api/clients/{client['id']}/")
        assert (
            staff_change.status_code
            == unchanged.status_code
            == own_change.status_code
            == 200
        )
        assert deleted.status_code == 204

        async def all_published():
            events = await client_events(portal.system.infra.nats_url, client["id"])
            return events if events and events[-1]["type"] == "client.deleted" else None

        events = await eventually(all_published, timeout=30)

        assert events, "client.deleted never reached the stream"
        assert [e["type"] for e in events] == [
            "client.created",
            "client.updated",
            "client.updated",
            "client.deleted",
        ]
        assert all(
            e["subject"] == e["type"] and e["source"] == "clients" for e in events
        )
        assert all(e["msg_id"] == e["id"] for e in events)
        created, staff_update, own_update, removal = events
        assert created["data"] == {
            "id": client["id"],
            **{name: client[name] for name in STATE_FIELDS},
        }
        assert moment(created["occurred_at"]) == moment(client["updated_at"])
        assert staff_update["data"] == {
            "id": client["id"],
            **{name: client[name] for name in STATE_FIELDS},
            "status": "paused",
            "contact_name": "Ann Lee",
            "changed": ["contact_name", "status", "notes"],
        }
        assert moment(staff_update["occurred_at"]) == moment(
            staff_change.json()["updated_at"]
        )
        assert own_update["data"]["changed"] == ["email"]
        assert own_update["data"]["email"] == new_email
        assert moment(own_update["occurred_at"]) == moment(
            after_own.json()["updated_at"]
        )
        assert removal["data"] == {"id": client["id"]}

    async def test_a_refused_change_publishes_nothing(
        self, portal, make_client, make_client_user
    ):
        client = await make_client()
        token = await make_client_user(client["id"])
        async with portal.client(token) as http:
            refused = await http.patch(
                f"/api/clients/{client['id']}/", json={"plan_tier": "Gold"}
            )
        async with portal.client(portal.admin_token) as http:
            invalid = await http.patch(
                f"/api/clients/{client['id']}/", json={"monthly_fee": "-1"}
            )
            # A later change marks the point by which anything earlier was relayed.
            marker = await http.patch(
                f"/api/clients/{client['id']}/", json={"notes": "marker"}
            )
        assert (refused.status_code, invalid.status_code, marker.status_code) == (
            403,
            400,
            200,
        )

        async def marker_published():
            events = await client_events(portal.system.infra.nats_url, client["id"])
            return events if len(events) >= 2 else None

        events = await eventually(marker_published, timeout=30)

        assert [(e["type"], e["data"].get("changed")) for e in events] == [
            ("client.created", None),
            ("client.updated", ["notes"]),
        ]


class TestAuthFollowsClients:
    async def test_the_login_answer_shows_the_clients_current_company_name(
        self, portal, make_client
    ):
        client = await make_client(company_name=f"Before {uuid.uuid4().hex[:6]}")
        username = f"cu{uuid.uuid4().hex[:8]}"
        await portal.create_user(
            username, client=client["id"], password="pw-Secret-123"
        )
        renamed = f"After {uuid.uuid4().hex[:6]}"
        async with portal.client(portal.admin_token) as http:
            response = await http.patch(
                f"/api/clients/{client['id']}/", json={"company_name": renamed}
            )
        assert response.status_code == 200

        async def login_shows_new_name():
            async with portal.client() as http:
                answer = await http.post(
                    "/api/auth/token/",
                    json={"username": username, "password": "pw-Secret-123"},
                )
            return answer.json()["client"] == {
                "id": client["id"],
                "company_name": renamed,
            }

        assert await eventually(login_shows_new_name, timeout=30)

    async def test_deleting_a_client_deactivates_its_users(
        self, portal, make_client, make_client_user
    ):
        client = await make_client()
        token = await make_client_user(client["id"])
        async with portal.client(token) as http:
            assert (await http.get("/api/clients/me/")).status_code == 200

        async with portal.client(portal.admin_token) as http:
            assert (
                await http.delete(f"/api/clients/{client['id']}/")
            ).status_code == 204

        async def refused():
            async with portal.client(token) as http:
                answer = await http.get("/api/auth/me/")
            return answer if answer.status_code == 401 else None

        answer = await eventually(refused, timeout=30)
        assert answer is not None, "the deleted client's user still gets in"
        assert answer.json() == {"detail": "User inactive or deleted."}
