"""C15: Fernet key rotation, the re-encryption command, and a bad key at start-up."""

import asyncio
import json
import os
import sys
import tempfile
import uuid

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from clients.models import credentials
from portal_common.testing.plugin import start_portal

K_OLD = Fernet.generate_key().decode()
K_NEW = Fernet.generate_key().decode()
SECRET = {"api_key": "PLACEHOLDER-SECRET-123"}


async def run_python(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run Python in a scratch folder (no .env there) with exactly `env`."""
    with tempfile.TemporaryDirectory() as scratch:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=env,
            cwd=scratch,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
    return process.returncode, stdout.decode(), stderr.decode()


def plain_env(**settings: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PORTAL_")
    }
    return {**env, **settings}


def read_with(key: str, token: str) -> dict:
    return json.loads(Fernet(key).decrypt(token.encode()))


@pytest.fixture(scope="module")
async def rotating(system_factory):
    return await start_portal(
        system_factory, extra_env={"PORTAL_ENCRYPTION_KEYS": K_OLD}
    )


async def restart_with_keys(portal, keys: str) -> None:
    portal.system.env["PORTAL_ENCRYPTION_KEYS"] = keys
    await portal.system.restart_service("clients")


async def credential(portal, credential_id: str) -> dict:
    async with portal.client(portal.admin_token) as http:
        response = await http.get(f"/api/credentials/{credential_id}/")
    assert response.status_code == 200, response.text
    return response.json()


async def test_c15_rotation_from_an_old_key_to_a_new_one(rotating):
    portal = rotating
    async with portal.client(portal.admin_token) as http:
        client = (
            await http.post(
                "/api/clients/",
                json={
                    "company_name": "Rotation Ltd",
                    "contact_name": "R",
                    "email": "r@rotation.example",
                    "plan_tier": "B",
                },
            )
        ).json()
        base = {
            "client": client["id"],
            "service_name": "Shopify",
            "credential_type": "api_key",
        }
        c1 = (
            await http.post("/api/credentials/", json={**base, "data": SECRET})
        ).json()
    assert read_with(K_OLD, c1["encrypted_data"]) == SECRET

    # Step 2: new key first, old one kept. C1 still reads; C2 is under the new key.
    await restart_with_keys(portal, f"{K_NEW},{K_OLD}")
    assert (await credential(portal, c1["id"]))["status"] == "active"
    async with portal.client(portal.admin_token) as http:
        c2 = (
            await http.post(
                "/api/credentials/",
                json={**base, "service_name": "Stripe", "data": SECRET},
            )
        ).json()
    assert read_with(K_NEW, c2["encrypted_data"]) == SECRET

    # Step 3: the rotation command moves C1 to the new key, while the service runs.
    code, _, _ = await run_python(
        "-m", "clients.rotate_credentials", "--batch-size", "1", env=portal.system.env
    )
    assert code == 0
    c1_after = await credential(portal, c1["id"])
    assert c1_after["encrypted_data"] != c1["encrypted_data"]
    assert read_with(K_NEW, c1_after["encrypted_data"]) == SECRET
    assert (await credential(portal, c2["id"]))["encrypted_data"] == c2[
        "encrypted_data"
    ]

    # Step 4: the old key is gone and both credentials are still usable.
    await restart_with_keys(portal, K_NEW)
    for created in (c1, c2):
        after = await credential(portal, created["id"])
        assert after["status"] == "active"
        assert read_with(K_NEW, after["encrypted_data"]) == SECRET
        with pytest.raises(InvalidToken):
            Fernet(K_OLD).decrypt(after["encrypted_data"].encode())

    # A token under the retired key is now refused on input.
    old_token = Fernet(K_OLD).encrypt(json.dumps(SECRET).encode()).decode()
    async with portal.client(portal.admin_token) as http:
        refused = await http.post(
            "/api/credentials/", json={**base, "encrypted_data": old_token}
        )
    assert refused.status_code == 400
    assert old_token not in refused.text and K_OLD not in refused.text


async def test_c15_an_unreadable_row_is_listed_as_invalid_and_the_command_reports_it(
    rotating,
):
    portal = rotating
    async with portal.client(portal.admin_token) as http:
        client = (
            await http.post(
                "/api/clients/",
                json={
                    "company_name": "Broken Backup",
                    "contact_name": "B",
                    "email": f"b{uuid.uuid4().hex[:6]}@x.example",
                    "plan_tier": "B",
                },
            )
        ).json()
        bad = (
            await http.post(
                "/api/credentials/",
                json={
                    "client": client["id"],
                    "service_name": "Restored",
                    "credential_type": "oauth",
                    "data": SECRET,
                },
            )
        ).json()
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"api_key": "x"}').decode()
    engine = create_async_engine(portal.system.env["PORTAL_CLIENTS_DATABASE_URL"])
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(credentials)
                .where(credentials.c.id == uuid.UUID(bad["id"]))
                .values(encrypted_data=foreign)
            )
    finally:
        await engine.dispose()

    async with portal.client(portal.admin_token) as http:
        listed = await http.get("/api/credentials/", params={"client": client["id"]})
    code, stdout, stderr = await run_python(
        "-m", "clients.rotate_credentials", env=portal.system.env
    )

    assert listed.status_code == 200
    assert [row["status"] for row in listed.json()["results"]] == ["invalid"]
    assert code == 1
    assert bad["id"] in stdout
    for text in (stdout, stderr):
        assert foreign not in text
        assert SECRET["api_key"] not in text


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("short", "Fernet key must be 32 url-safe base64-encoded bytes."),
        (
            f"{K_NEW},short",
            "key 2 of 2: Fernet key must be 32 url-safe base64-encoded bytes.",
        ),
        ("", "at least one Fernet key is required."),
    ],
)
async def test_c15_a_bad_key_stops_the_service_with_one_clear_line(keys, message):
    env = plain_env(
        PORTAL_ENCRYPTION_KEYS=keys,
        PORTAL_CLIENTS_DATABASE_URL="postgresql+asyncpg://u@127.0.0.1/x",
    )

    code, stdout, stderr = await run_python("-c", "import clients.main", env=env)

    assert code == 2
    assert stderr == f"configuration error: PORTAL_ENCRYPTION_KEYS: {message}\n"
    assert stdout == ""


async def test_c15_the_rotation_command_refuses_a_bad_key_the_same_way():
    env = plain_env(
        PORTAL_ENCRYPTION_KEYS="short",
        PORTAL_CLIENTS_DATABASE_URL="postgresql+asyncpg://u@127.0.0.1/x",
    )

    code, _, stderr = await run_python("-m", "clients.rotate_credentials", env=env)

    assert code == 2
    assert (
        "PORTAL_ENCRYPTION_KEYS: Fernet key must be 32 url-safe base64-encoded bytes."
        in stderr
    )
