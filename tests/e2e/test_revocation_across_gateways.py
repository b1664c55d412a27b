"""Two gateway replicas: a token revoked through one is refused by the other at once."""

import asyncio
import uuid

import httpx
import pytest

from portal_common.testing.plugin import start_portal


@pytest.fixture(scope="module")
async def two_gateways(system_factory):
    return await start_portal(system_factory, replicas={"gateway": 2}, extra_env={"PORTAL_SERVICES": "auth"})


async def test_logout_on_one_gateway_is_felt_by_the_other_within_a_second(two_gateways):
    portal = two_gateways
    first, second = (process.url for process in portal.system.processes["gateway"])
    username = f"twin{uuid.uuid4().hex[:6]}"
    async with portal.client(portal.admin_token) as http:
        await http.post("/api/auth/users/", json={"username": username, "password": "pw-12345678"})
    token = await portal.login(username, "pw-12345678")
    headers = {"Authorization": f"Token {token}"}

    async with httpx.AsyncClient(headers=headers) as http:
        assert (await http.get(f"{second}/api/auth/me/")).status_code == 200  # cached by the second
        assert (await http.post(f"{first}/api/auth/logout/")).status_code == 200
        await asyncio.sleep(1.0)
        refused = await http.get(f"{second}/api/auth/me/")

    assert refused.status_code == 401
    assert refused.json() == {"detail": "Invalid token."}
