"""What billing's tests need: clients, users, invoices, and a look at the event stream.

The helpers live here because pytest runs with --import-mode=importlib, where a
test module cannot import a sibling helper module; tests reach them through
the `billing` fixture (the shared portal) or `BillingDriver` handed out by
`driver_for` (a system of their own).

Clients are made through the clients service's API when that service runs in
the system, else by publishing `client.created` as the clients service would;
either way the driver waits until billing knows the client.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from portal_common.bus import publish_message
from portal_common.events import EVENTS_STREAM, Envelope


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, what: str = ""
) -> Any:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.1)


class BillingDriver:
    """One started portal, driven as staff, client users and the clients service are."""

    wait_for = staticmethod(wait_for)

    def __init__(self, portal, nats_url: str) -> None:
        self.portal = portal
        self.nats_url = nats_url

    @property
    def uses_clients_api(self) -> bool:
        return "clients" in self.portal.system.processes

    @property
    def database_url(self) -> str:
        return self.portal.system.env["PORTAL_BILLING_DATABASE_URL"]

    def staff(self):
        return self.portal.client(self.portal.admin_token)

    # Clients

    async def make_client(
        self,
        *,
        company_name: str | None = None,
        contact_name: str = "Jane Smith",
        via_events: bool = False,
    ) -> dict[str, Any]:
        """A client billing knows: `{id, company_name, contact_name, email}`."""
        client = {
            "company_name": company_name or unique("Company "),
            "contact_name": contact_name,
            "email": f"{unique('contact')}@example.com",
        }
        if self.uses_clients_api and not via_events:
            async with self.staff() as http:
                response = await http.post(
                    "/api/clients/",
                    json={**client, "plan_tier": "E-commerce Essentials"},
                )
            assert response.status_code == 201, response.text
            client["id"] = response.json()["id"]
        else:
            client["id"] = str(uuid.uuid4())
            await self.publish_client_event(
                "client.created", {**client, "status": "active", "plan_tier": "Starter"}
            )
        await self.wait_until_known(client["id"])
        return client

    async def knows_client(self, client_id: str) -> bool:
        async with self.staff() as http:
            response = await http.get("/api/invoices/", params={"client": client_id})
        assert response.status_code in (200, 400), response.text
        return response.status_code == 200

    async def wait_until_known(self, client_id: str) -> None:
        await wait_for(
            lambda: self.knows_client(client_id), what=f"billing to know {client_id}"
        )

    async def publish_client_event(
        self, event_type: str, data: dict[str, Any]
    ) -> Envelope:
        envelope = Envelope.new(event_type, data, source="clients")
        await self.publish_raw(
            envelope.subject, envelope.encode(), msg_id=envelope.event_id
        )
        return envelope

    async def publish_raw(self, subject: str, payload: bytes, *, msg_id: str) -> None:
        connection = await nats.connect(self.nats_url)
        try:
            await publish_message(
                connection.jetstream(), subject, payload, msg_id=msg_id
            )
        finally:
            await connection.close()

    async def rename_client(
        self, client: dict[str, Any], company_name: str, *, via_events: bool = False
    ) -> None:
        if self.uses_clients_api and not via_events:
            async with self.staff() as http:
                response = await http.patch(
                    f"/api/clients/{client['id']}/", json={"company_name": company_name}
                )
            assert response.status_code == 200, response.text
            return
        data = {
            **client,
            "company_name": company_name,
            "status": "active",
            "plan_tier": "Starter",
        }
        await self.publish_client_event(
            "client.updated", {**data, "changed": ["company_name"]}
        )

    async def delete_client(self, client_id: str, *, via_events: bool = False) -> None:
        if self.uses_clients_api and not via_events:
            async with self.staff() as http:
                response = await http.delete(f"/api/clients/{client_id}/")
            assert response.status_code == 204, response.text
            return
        await self.publish_client_event("client.deleted", {"id": client_id})

    def log_lines(self, service: str = "billing") -> list[dict[str, Any]]:
        """The JSON log lines every replica of `service` has written so far."""
        lines = []
        for process in self.portal.system.processes[service]:
            for raw in process.log_path.read_text(errors="replace").splitlines():
                if raw.startswith("{"):
                    lines.append(json.loads(raw))
        return lines

    async def client_user(self, client_id: str | None) -> str:
        """A token of a new non-staff user of `client_id` (None: a user without a client)."""
        return await self.portal.create_user(unique("user"), client=client_id)

    # Invoices

    @staticmethod
    def invoice_body(client_id: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "client": client_id,
            "amount": "299.00",
            "type": "monthly",
            "due_date": "2099-02-28",
        }
        body.update(overrides)
        return body

    async def create_invoice(self, client_id: str, **overrides: Any) -> dict[str, Any]:
        async with self.staff() as http:
            response = await http.post(
                "/api/invoices/", json=self.invoice_body(client_id, **overrides)
            )
        assert response.status_code == 201, response.text
        return response.json()

    async def read_invoice(self, invoice_id: str) -> dict[str, Any]:
        async with self.staff() as http:
            response = await http.get(f"/api/invoices/{invoice_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    # The service's database and the event stream

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        """Run one statement on billing's own database; its rows, if any."""
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    async def outbox_is_empty(self) -> bool:
        rows = await self.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return rows[0][0] == 0

    async def published_events(
        self, invoice_id: str, *, settle: bool = True
    ) -> list[dict[str, Any]]:
        """Every `invoice.*` envelope about `invoice_id` on the stream, oldest first.

        With `settle`, first waits until billing's outbox holds nothing
        unpublished, so what the stream shows is everything billing recorded.
        """
        if settle:
            await wait_for(self.outbox_is_empty, what="billing's outbox to drain")
        return [
            envelope
            for envelope in await read_stream(self.nats_url, "invoice.>")
            if isinstance(envelope, dict)
            and isinstance(envelope.get("data"), dict)
            and envelope["data"].get("id") == invoice_id
        ]

    async def event_types(self, invoice_id: str) -> list[str]:
        return [
            envelope["type"] for envelope in await self.published_events(invoice_id)
        ]


async def read_stream(nats_url: str, subject: str) -> list[dict[str, Any]]:
    """Every message on `subject` in the portal's stream, decoded, oldest first."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        pending = (await js.stream_info(EVENTS_STREAM)).state.messages
        subscription = await js.pull_subscribe(
            subject,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
            ),
        )
        bodies: list[dict[str, Any]] = []
        while True:
            try:
                messages = await subscription.fetch(
                    min(max(pending, 1), 1000), timeout=0.5
                )
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for message in messages:
                try:
                    bodies.append(json.loads(message.data))
                except ValueError:
                    continue  # another test's deliberately malformed event
            if (await subscription.consumer_info()).num_pending == 0:
                break
        await subscription.unsubscribe()
        return bodies
    finally:
        await connection.close()


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


@pytest.fixture(scope="session")
def billing(portal, infra) -> BillingDriver:
    return BillingDriver(portal, infra.nats_url)


@pytest.fixture(scope="session")
def driver_for(infra) -> Callable[[Any], BillingDriver]:
    def make(portal) -> BillingDriver:
        return BillingDriver(portal, portal.system.infra.nats_url)

    return make
