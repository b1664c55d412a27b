"""API credentials through the gateway: encryption, permissions, no plaintext."""

import json
import uuid

import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from clients.models import credentials

FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found."}
STAFF_FIELDS = [
    "id",
    "client",
    "client_name",
    "service_name",
    "credential_type",
    "encrypted_data",
    "status",
    "last_verified",
    "created_at",
    "updated_at",
]
CLIENT_FIELDS = [
    "id",
    "client_name",
    "service_name",
    "credential_type",
    "status",
    "last_verified",
    "created_at",
]
BAD_TOKEN = {
    "encrypted_data": [
        "Enter a Fernet token made with one of the configured encryption keys."
    ]
}


def portal_cipher(portal) -> MultiFernet:
    keys = portal.system.env["PORTAL_ENCRYPTION_KEYS"].split(",")
    return MultiFernet([Fernet(key) for key in keys])


def decrypt(portal, token: str) -> dict:
    return json.loads(portal_cipher(portal).decrypt(token.encode()))


async def store_raw_ciphertext(portal, credential_id: str, ciphertext: str) -> None:
    """Put a value in the database behind the API's back (a restored backup, say)."""
    engine = create_async_engine(portal.system.env["PORTAL_CLIENTS_DATABASE_URL"])
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(credentials)
                .where(credentials.c.id == uuid.UUID(credential_id))
                .values(encrypted_data=ciphertext)
            )
    finally:
        await engine.dispose()


def log_lines(portal) -> list[str]:
    lines = []
    for processes in portal.system.processes.values():
        for process in processes:
            if process.log_path.exists():
                lines.extend(process.log_path.read_text(errors="replace").splitlines())
    return lines


class TestEncryption:
    async def test_data_is_stored_encrypted_and_decrypts_to_what_was_sent(
        self, portal, make_client
    ):
        client = await make_client()
        secret = {"api_key": f"PLACEHOLDER-SECRET-{uuid.uuid4().hex}", "shop": "acme"}

        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/credentials/",
                json={
                    "client": client["id"],
                    "service_name": "Shopify",
                    "credential_type": "api_key",
                    "data": secret,
                },
            )

        assert response.status_code == 201, response.text
        body = response.json()
        assert list(body) == STAFF_FIELDS
        assert body["client"] == client["id"]
        assert body["client_name"] == client["company_name"]
        assert body["status"] == "active"
        assert body["last_verified"] is None
        assert secret["api_key"] not in response.text
        assert body["encrypted_data"].startswith("gAAAAA")
        assert decrypt(portal, body["encrypted_data"]) == secret

    async def test_a_token_made_with_a_configured_key_is_accepted(
        self, portal, make_client
    ):
        client = await make_client()
        secret = {"username": "shop", "password": f"PLACEHOLDER-{uuid.uuid4().hex}"}
        token = portal_cipher(portal).encrypt(json.dumps(secret).encode()).decode()

        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/credentials/",
                json={
                    "client": client["id"],
                    "service_name": "Google Sheets",
                    "credential_type": "basic_auth",
                    "encrypted_data": f"  {token}\n",
                    "status": "expired",
                    "last_verified": "2024-01-15T10:00:00Z",
                },
            )

        assert response.status_code == 201, response.text
        body = response.json()
        assert decrypt(portal, body["encrypted_data"]) == secret
        assert body["status"] == "expired"
        assert body["last_verified"] == "2024-01-15T10:00:00Z"

    @pytest.mark.parametrize(
        "ciphertext",
        [
            "not-a-token",
            Fernet(Fernet.generate_key()).encrypt(b'{"api_key": "x"}').decode(),
            "padding-stripped",
            "",
        ],
    )
    async def test_encrypted_data_no_configured_key_reads_is_400_and_stores_nothing(
        self, portal, make_client, ciphertext
    ):
        client = await make_client()
        if ciphertext == "padding-stripped":
            ciphertext = portal_cipher(portal).encrypt(b'{"a": 1}').decode().rstrip("=")

        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/credentials/",
                json={
                    "client": client["id"],
                    "service_name": "S",
                    "credential_type": "oauth",
                    "encrypted_data": ciphertext,
                },
            )
            listed = await http.get(
                "/api/credentials/", params={"client": client["id"]}
            )

        assert response.status_code == 400
        expected = (
            {"encrypted_data": ["This field may not be blank."]}
            if ciphertext == ""
            else BAD_TOKEN
        )
        assert response.json() == expected
        assert listed.json()["count"] == 0

    async def test_exactly_one_of_data_and_encrypted_data_is_required(
        self, portal, make_client
    ):
        client = await make_client()
        token = portal_cipher(portal).encrypt(b"{}").decode()
        base = {"client": client["id"], "service_name": "S", "credential_type": "oauth"}

        async with portal.client(portal.admin_token) as http:
            neither = await http.post("/api/credentials/", json=base)
            both = await http.post(
                "/api/credentials/",
                json={**base, "data": {"a": 1}, "encrypted_data": token},
            )
            not_an_object = await http.post(
                "/api/credentials/", json={**base, "data": "secret"}
            )

        assert neither.status_code == 400
        assert neither.json() == {
            "non_field_errors": ["Send either data or encrypted_data."]
        }
        assert both.status_code == 400
        assert both.json() == {
            "non_field_errors": ["Send either data or encrypted_data, not both."]
        }
        assert not_an_object.status_code == 400
        assert not_an_object.json() == {
            "data": ['Expected a dictionary of items but got type "str".']
        }

    async def test_field_errors_and_an_unknown_client(self, portal):
        missing_client = str(uuid.uuid4())
        async with portal.client(portal.admin_token) as http:
            empty = await http.post("/api/credentials/", json={})
            unknown = await http.post(
                "/api/credentials/",
                json={
                    "client": missing_client,
                    "service_name": "S",
                    "credential_type": "api_key",
                    "data": {},
                },
            )
            bad = await http.post(
                "/api/credentials/",
                json={
                    "client": "abc",
                    "service_name": "s" * 101,
                    "credential_type": "password",
                    "data": {},
                    "status": "revoked",
                    "last_verified": "yesterday",
                },
            )

        assert empty.status_code == 400
        assert empty.json() == {
            "client": ["This field is required."],
            "service_name": ["This field is required."],
            "credential_type": ["This field is required."],
        }
        assert unknown.status_code == 400
        assert unknown.json() == {
            "client": [f'Invalid pk "{missing_client}" - object does not exist.']
        }
        assert bad.status_code == 400
        assert bad.json() == {
            "client": ["\u201cabc\u201d is not a valid UUID."],
            "service_name": ["Ensure this field has no more than 100 characters."],
            "credential_type": ['"password" is not a valid choice.'],
            "status": ['"revoked" is not a valid choice.'],
            "last_verified": [
                "Datetime has wrong format. Use one of these formats instead: "
                "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
            ],
        }

    async def test_updating_with_new_data_re_encrypts_and_a_status_change_keeps_it(
        self, portal, make_client, make_credential
    ):
        client = await make_client()
        credential = await make_credential(client["id"])
        new_secret = {"api_key": f"PLACEHOLDER-NEW-{uuid.uuid4().hex}"}

        async with portal.client(portal.admin_token) as http:
            status_only = await http.patch(
                f"/api/credentials/{credential['id']}/", json={"status": "expired"}
            )
            new_data = await http.patch(
                f"/api/credentials/{credential['id']}/", json={"data": new_secret}
            )
            put_without_secret = await http.put(
                f"/api/credentials/{credential['id']}/",
                json={
                    "client": client["id"],
                    "service_name": "S",
                    "credential_type": "oauth",
                },
            )

        assert status_only.status_code == 200
        assert status_only.json()["status"] == "expired"
        assert status_only.json()["encrypted_data"] == credential["encrypted_data"]
        assert new_data.status_code == 200
        assert decrypt(portal, new_data.json()["encrypted_data"]) == new_secret
        assert put_without_secret.status_code == 400
        assert put_without_secret.json() == {
            "non_field_errors": ["Send either data or encrypted_data."]
        }


class TestUndecryptableRows:
    async def test_a_row_no_key_reads_is_listed_as_invalid_not_a_500(
        self, portal, make_client, make_client_user, make_credential
    ):
        client = await make_client()
        good = await make_credential(client["id"], service_name="Good")
        bad = await make_credential(client["id"], service_name="Bad")
        await store_raw_ciphertext(portal, bad["id"], "not-a-token")
        token = await make_client_user(client["id"])

        async with portal.client(portal.admin_token) as http:
            staff_list = await http.get(
                "/api/credentials/", params={"client": client["id"]}
            )
            staff_read = await http.get(f"/api/credentials/{bad['id']}/")
        async with portal.client(token) as http:
            own_list = await http.get("/api/credentials/")

        assert staff_list.status_code == 200
        statuses = {row["id"]: row["status"] for row in staff_list.json()["results"]}
        assert statuses == {good["id"]: "active", bad["id"]: "invalid"}
        assert staff_read.status_code == 200
        assert staff_read.json()["status"] == "invalid"
        assert own_list.status_code == 200
        assert {
            row["id"]: row["status"] for row in own_list.json()["results"]
        } == statuses


class TestCredentialPermissions:
    @pytest.fixture
    async def setting(self, portal, make_client, make_client_user, make_credential):
        own = await make_client()
        other = await make_client()
        return {
            "own": await make_credential(own["id"], service_name="Shopify"),
            "own_second": await make_credential(
                own["id"], service_name="Stripe", credential_type="oauth"
            ),
            "other": await make_credential(other["id"]),
            "own_client": own,
            "other_client": other,
            "own_token": await make_client_user(own["id"]),
            "loner_token": await make_client_user(None),
        }

    async def test_a_client_user_lists_only_their_own_without_encrypted_data(
        self, portal, setting
    ):
        async with portal.client(setting["own_token"]) as http:
            listed = await http.get("/api/credentials/")
            filtered = await http.get(
                "/api/credentials/", params={"credential_type": "oauth"}
            )
            foreign_filter = await http.get(
                "/api/credentials/", params={"client": setting["other_client"]["id"]}
            )
            unknown_filter = await http.get(
                "/api/credentials/", params={"client": str(uuid.uuid4())}
            )
            searched = await http.get("/api/credentials/", params={"search": "shop"})

        assert listed.status_code == 200
        body = listed.json()
        assert body["count"] == 2
        assert {row["id"] for row in body["results"]} == {
            setting["own"]["id"],
            setting["own_second"]["id"],
        }
        assert all(list(row) == CLIENT_FIELDS for row in body["results"])
        assert "encrypted_data" not in listed.text
        assert [row["service_name"] for row in filtered.json()["results"]] == ["Stripe"]
        assert foreign_filter.status_code == unknown_filter.status_code == 200
        assert foreign_filter.json()["count"] == unknown_filter.json()["count"] == 0
        assert [row["service_name"] for row in searched.json()["results"]] == [
            "Shopify"
        ]

    async def test_a_client_user_reads_their_own_and_gets_404_for_anything_else(
        self, portal, setting
    ):
        async with portal.client(setting["own_token"]) as http:
            own = await http.get(f"/api/credentials/{setting['own']['id']}/")
            other = await http.get(f"/api/credentials/{setting['other']['id']}/")
            missing = await http.get(f"/api/credentials/{uuid.uuid4()}/")
            malformed = await http.get("/api/credentials/not-a-uuid/")

        assert own.status_code == 200
        assert list(own.json()) == CLIENT_FIELDS
        assert own.json()["client_name"] == setting["own_client"]["company_name"]
        for response in (other, missing, malformed):
            assert response.status_code == 404
            assert response.json() == NOT_FOUND

    async def test_writes_are_staff_only_and_refused_before_any_look_up(
        self, portal, setting
    ):
        own_id = setting["own"]["id"]
        for token in (setting["own_token"], setting["loner_token"]):
            async with portal.client(token) as http:
                answers = [
                    await http.post(
                        "/api/credentials/",
                        json={"client": setting["own_client"]["id"]},
                    ),
                    await http.patch(
                        f"/api/credentials/{own_id}/", json={"status": "invalid"}
                    ),
                    await http.put(f"/api/credentials/{own_id}/", json={}),
                    await http.delete(f"/api/credentials/{own_id}/"),
                    await http.delete(f"/api/credentials/{uuid.uuid4()}/"),
                    await http.delete("/api/credentials/not-a-uuid/"),
                ]
            for response in answers:
                assert response.status_code == 403
                assert response.json() == FORBIDDEN
        async with portal.client(portal.admin_token) as http:
            assert (await http.get(f"/api/credentials/{own_id}/")).json()[
                "status"
            ] == "active"

    async def test_a_user_without_a_client_sees_no_credentials(self, portal, setting):
        async with portal.client(setting["loner_token"]) as http:
            listed = await http.get("/api/credentials/")
            read = await http.get(f"/api/credentials/{setting['own']['id']}/")

        assert listed.status_code == 200
        assert listed.json() == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
        assert read.status_code == 404

    async def test_staff_delete_and_a_deleted_client_takes_its_credentials(
        self, portal, setting
    ):
        async with portal.client(portal.admin_token) as http:
            deleted = await http.delete(
                f"/api/credentials/{setting['own_second']['id']}/"
            )
            gone = await http.get(f"/api/credentials/{setting['own_second']['id']}/")
            client_deleted = await http.delete(
                f"/api/clients/{setting['other_client']['id']}/"
            )
            orphan = await http.get(f"/api/credentials/{setting['other']['id']}/")

        assert deleted.status_code == 204
        assert gone.status_code == 404
        assert client_deleted.status_code == 204
        assert orphan.status_code == 404

    async def test_a_client_users_views_are_logged_with_ids_only(self, portal, setting):
        async with portal.client(setting["own_token"]) as http:
            await http.get(f"/api/credentials/{setting['own']['id']}/")

        viewed = [
            line
            for line in log_lines(portal)
            if "credential.viewed" in line and setting["own"]["id"] in line
        ]
        assert viewed
        assert all(setting["own"]["encrypted_data"] not in line for line in viewed)


class TestPlaintextNeverLeaves:
    async def test_no_response_and_no_log_line_carries_the_secret(
        self, portal, make_client, make_client_user
    ):
        client = await make_client()
        token = await make_client_user(client["id"])
        secret = f"PLACEHOLDER-SECRET-{uuid.uuid4().hex}"
        other_secret = f"PLACEHOLDER-OTHER-{uuid.uuid4().hex}"
        base = {
            "client": client["id"],
            "service_name": "Shopify",
            "credential_type": "api_key",
        }
        responses = []

        async with portal.client(portal.admin_token) as http:
            created = await http.post(
                "/api/credentials/", json={**base, "data": {"api_key": secret}}
            )
            credential_id = created.json()["id"]
            responses += [
                created,
                await http.post(
                    "/api/credentials/",
                    json={**base, "data": {"api_key": secret}, "encrypted_data": "x"},
                ),
                await http.post(
                    "/api/credentials/",
                    json={**base, "client": str(uuid.uuid4()), "data": {"k": secret}},
                ),
                await http.post(
                    "/api/credentials/", json={**base, "encrypted_data": secret}
                ),
                await http.post("/api/credentials/", json={**base, "data": secret}),
                await http.patch(
                    f"/api/credentials/{credential_id}/",
                    json={"data": {"api_key": other_secret}},
                ),
                await http.patch(
                    f"/api/credentials/{credential_id}/",
                    json={"encrypted_data": secret},
                ),
                await http.get("/api/credentials/", params={"search": secret}),
                await http.get("/api/credentials/"),
                await http.get(f"/api/credentials/{credential_id}/"),
            ]
        async with portal.client(token) as http:
            responses += [
                await http.get("/api/credentials/"),
                await http.get(f"/api/credentials/{credential_id}/"),
            ]

        assert [r.status_code for r in responses] == [
            201,
            400,
            400,
            400,
            400,
            200,
            400,
            200,
            200,
            200,
            200,
            200,
        ]
        for response in responses:
            assert secret not in response.text
            assert other_secret not in response.text
        leaking = [
            line for line in log_lines(portal) if secret in line or other_secret in line
        ]
        assert leaking == []
