"""The auth service's copy of clients, fed by client.* events on the real bus."""

import dataclasses
import uuid

from portal_common.events import Envelope
from portal_common.testing.plugin import eventually, publish_event


async def login_client(portal, username: str) -> dict | None:
    async with portal.client() as http:
        response = await http.post("/api/auth/token/", json={"username": username, "password": "pw-12345678"})
    return response.json().get("client")


async def make_client_user(portal, client_id: str) -> tuple[str, str]:
    username = f"cu{uuid.uuid4().hex[:8]}"
    async with portal.client(portal.admin_token) as http:
        # Users may name a client the copy does not know only once it exists,
        # so the client event comes first.
        response = await http.post(
            "/api/auth/users/", json={"username": username, "password": "pw-12345678", "client": client_id}
        )
    assert response.status_code == 201, response.text
    return username, await portal.login(username, "pw-12345678")


async def announce_client(portal, client_id: str, name: str, event_type: str = "client.created") -> Envelope:
    data = {"id": client_id, "company_name": name, "contact_name": "Jane", "email": f"{client_id[:8]}@example.com",
            "status": "active", "plan_tier": "Basic"}
    return await publish_event(portal.system.infra.nats_url, event_type, data, source="clients")


async def test_the_login_answer_names_the_users_client(portal):
    client_id = str(uuid.uuid4())
    await announce_client(portal, client_id, "Acme Corporation")

    async def known():
        async with portal.client(portal.admin_token) as http:
            answer = await http.post(
                "/api/auth/users/",
                json={"username": f"probe{uuid.uuid4().hex[:6]}", "password": "pw-12345678", "client": client_id},
            )
        return answer.status_code == 201

    assert await eventually(known)
    username, _ = await make_client_user(portal, client_id)

    assert await login_client(portal, username) == {"id": client_id, "company_name": "Acme Corporation"}


async def test_a_renamed_client_is_renamed_and_an_older_event_does_not_undo_it(portal):
    client_id = str(uuid.uuid4())
    created = await announce_client(portal, client_id, "Old Name")
    assert await eventually(lambda: _client_known(portal, client_id))
    username, _ = await make_client_user(portal, client_id)

    await announce_client(portal, client_id, "New Name", "client.updated")
    assert await eventually(lambda: _name_is(portal, username, "New Name"))
    # The first event again, delivered late (a new id, so the stream keeps it).
    stale = dataclasses.replace(
        Envelope.new("client.updated", {**created.data, "company_name": "Stale Name"}, source="clients"),
        occurred_at=created.occurred_at,
    )
    await publish_event(portal.system.infra.nats_url, "client.updated", {}, envelope=stale)
    marker = str(uuid.uuid4())
    await announce_client(portal, marker, "Marker")
    await eventually(lambda: _client_known(portal, marker))

    assert (await login_client(portal, username))["company_name"] == "New Name"


async def test_deleting_a_client_deactivates_its_users_at_once(portal):
    client_id = str(uuid.uuid4())
    await announce_client(portal, client_id, "Short Lived")
    assert await eventually(lambda: _client_known(portal, client_id))
    username, token = await make_client_user(portal, client_id)
    async with portal.client(token) as http:
        assert (await http.get("/api/auth/me/")).status_code == 200

    await publish_event(portal.system.infra.nats_url, "client.deleted", {"id": client_id}, source="clients")

    async def refused():
        async with portal.client(token) as http:
            answer = await http.get("/api/auth/me/")
        return answer if answer.status_code == 401 else None

    answer = await eventually(refused)
    assert answer is not None and answer.json() == {"detail": "User inactive or deleted."}
    async with portal.client() as http:
        login = await http.post("/api/auth/token/", json={"username": username, "password": "pw-12345678"})
    assert login.status_code == 400


async def _client_known(portal, client_id: str) -> bool:
    async with portal.client(portal.admin_token) as http:
        answer = await http.post(
            "/api/auth/users/",
            json={"username": f"probe{uuid.uuid4().hex[:6]}", "password": "pw-12345678", "client": client_id},
        )
    return answer.status_code == 201


async def _name_is(portal, username: str, name: str) -> bool:
    return ((await login_client(portal, username)) or {}).get("company_name") == name
