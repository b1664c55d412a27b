"""Fixtures that create what a test needs through the API, with overrides.

They live in conftest.py because pytest runs with --import-mode=importlib,
where a test module cannot import a sibling helper module.
"""

import uuid
from typing import Any

import pytest


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def client_body(**overrides: Any) -> dict[str, Any]:
    name = unique("Company ")
    body = {
        "company_name": name,
        "contact_name": "Jane Smith",
        "email": f"{unique('contact')}@example.com",
        "phone": "+1-555-0100",
        "plan_tier": "E-commerce Essentials",
        "setup_fee": "500.00",
        "monthly_fee": "299.00",
        "next_billing_date": "2024-02-01",
        "notes": "Internal notes here",
    }
    body.update(overrides)
    return body


async def create_client(portal, **overrides: Any) -> dict[str, Any]:
    async with portal.client(portal.admin_token) as http:
        response = await http.post("/api/clients/", json=client_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def create_client_user(portal, client_id: str | None) -> str:
    """A token of a new non-staff user of `client_id` (None: no client)."""
    return await portal.create_user(unique("user"), client=client_id)


async def create_credential(portal, client_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "client": client_id,
        "service_name": "Shopify",
        "credential_type": "api_key",
        "data": {"api_key": unique("PLACEHOLDER-SECRET-")},
    }
    body.update(overrides)
    async with portal.client(portal.admin_token) as http:
        response = await http.post("/api/credentials/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def make_client(portal):
    async def make(**overrides: Any) -> dict[str, Any]:
        return await create_client(portal, **overrides)

    return make


@pytest.fixture
def make_client_user(portal):
    async def make(client_id: str | None) -> str:
        return await create_client_user(portal, client_id)

    return make


@pytest.fixture
def make_credential(portal):
    async def make(client_id: str, **overrides: Any) -> dict[str, Any]:
        return await create_credential(portal, client_id, **overrides)

    return make
