"""What the support tests share: a real SMTP server, portals wired to it, and steps.

Each portal started here gets a NATS server of its own. All systems of a test
run would otherwise share one stream and one durable consumer per service,
and the support service of one system would take (and mail, from its own
database) events meant for another.

The helpers live on the `SupportWorld` fixture because pytest runs with
--import-mode=importlib, where a test module cannot import a sibling module.
Clients are created through the clients service when it runs in the system,
else by publishing the `client.created` event it would publish; invoices and
workflow events are published as billing and workflows would publish them.
"""

import asyncio
import email
import email.policy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import nats
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from portal_common.bus import publish_message
from portal_common.events import Envelope
from portal_common.testing.plugin import Portal, start_portal
from portal_deploy.embedded import EmbeddedNats, free_port

STAFF_EMAIL = "staff@agency.test"
MAIL_TIMEOUT = 20.0


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class Mail:
    """One message the SMTP server accepted."""

    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # Python folds some long subjects right after "Subject:"; the space
        # that leaves is folding whitespace, which mail programs drop too.
        return str(self.message["Subject"]).strip()

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    def mentions(self, marker: str) -> bool:
        return marker in self.subject or marker in self.text


class RecordingSmtp:
    """A real SMTP server (aiosmtpd) that keeps every mail it accepts.

    `refusing` makes it answer 451 to every recipient (a server that is up
    but failing); `stop()` and `start()` take it away entirely (connections
    refused) and bring it back on the same port.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self.refusing = False
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refusing:
            return "451 4.3.0 Mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(
            envelope.original_content, policy=email.policy.default
        )
        self.mails.append(Mail(recipients=list(envelope.rcpt_tos), message=message))
        return "250 Message accepted for delivery"


def mail_env(smtp: RecordingSmtp, nats_url: str) -> dict[str, str]:
    return {
        "PORTAL_NATS_URL": nats_url,
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(smtp.port),
        "PORTAL_SUPPORT_EMAIL": STAFF_EMAIL,
        "PORTAL_MAIL_RETRY_SECONDS": "0.5",
        "PORTAL_MAIL_MAX_RETRY_SECONDS": "2",
        "PORTAL_MAIL_POLL_SECONDS": "0.25",
        # A sender killed mid-send gives its mails back this soon.
        "PORTAL_MAIL_LEASE_SECONDS": "5",
    }


async def eventually(check: Callable[[], Any], *, timeout: float = MAIL_TIMEOUT) -> Any:
    """Await `check()` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"still not true after {timeout} s: {check.__qualname__}"
            )
        await asyncio.sleep(0.1)


class SupportWorld:
    """A started portal, its SMTP server and NATS, and the steps tests repeat."""

    def __init__(self, portal: Portal, smtp: RecordingSmtp, nats_url: str) -> None:
        self.portal = portal
        self.smtp = smtp
        self.nats_url = nats_url
        self.admin_token = portal.admin_token

    unique = staticmethod(unique)
    eventually = staticmethod(eventually)

    @property
    def system(self):
        return self.portal.system

    def runs(self, service: str) -> bool:
        return service in self.system.processes

    def http(self, token: str | None = None):
        return self.portal.client(token)

    # Clients and users

    async def make_client(self, **overrides: Any) -> dict[str, Any]:
        """A new client, known to support; `{id, company_name, contact_name, email}`."""
        client = {
            "company_name": unique("Company "),
            "contact_name": unique("Contact "),
            "email": f"{unique('contact')}@client.test",
            **overrides,
        }
        if self.runs("clients"):
            body = {
                **client,
                "plan_tier": "Starter",
                "setup_fee": "0.00",
                "monthly_fee": "299.00",
            }
            async with self.http(self.admin_token) as http:
                response = await http.post("/api/clients/", json=body)
            assert response.status_code == 201, response.text
            client["id"] = response.json()["id"]
        else:
            client["id"] = str(uuid.uuid4())
            await self.publish("client.created", self.client_state(client))
        await eventually(lambda: self._support_knows(client["id"]))
        return client

    @staticmethod
    def client_state(client: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": client["id"],
            "company_name": client["company_name"],
            "contact_name": client["contact_name"],
            "email": client["email"],
            "status": "active",
            "plan_tier": "Starter",
        }

    async def _support_knows(self, client_id: str) -> bool:
        async with self.http(self.admin_token) as http:
            response = await http.get(
                "/api/support-tickets/", params={"client": client_id}
            )
        return response.status_code == 200

    async def client_user(self, client_id: str | None) -> str:
        """A token of a new non-staff user of `client_id` (None: without a client)."""
        username = unique("user")
        body = {"username": username, "password": "pw-Secret-123", "client": client_id}

        async def created() -> bool:
            # Without the clients service, auth learns of the client from
            # its event, a moment after support did.
            async with self.http(self.admin_token) as http:
                response = await http.post("/api/auth/users/", json=body)
            assert response.status_code in (201, 400), response.text
            return response.status_code == 201

        await eventually(created)
        return await self.portal.login(username, "pw-Secret-123")

    # Tickets

    async def open_ticket(self, token: str, **body: Any) -> dict[str, Any]:
        body = {"subject": unique("Subject "), "description": "placeholder", **body}
        async with self.http(token) as http:
            response = await http.post("/api/support-tickets/", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def change_ticket(self, ticket_id: str, **body: Any) -> dict[str, Any]:
        async with self.http(self.admin_token) as http:
            response = await http.patch(f"/api/support-tickets/{ticket_id}/", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    # Events, as the other services publish them

    async def publish(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        envelope: Envelope | None = None,
        msg_id: str | None = None,
    ) -> Envelope:
        """Publish an envelope; a new `msg_id` makes JetStream keep it twice."""
        envelope = envelope or Envelope.new(event_type, data, source="test")
        connection = await nats.connect(self.nats_url)
        try:
            await publish_message(
                connection.jetstream(),
                envelope.subject,
                envelope.encode(),
                msg_id=msg_id or envelope.event_id,
                headers=envelope.headers(),
            )
        finally:
            await connection.close()
        return envelope

    async def issue_invoice(self, client_id: str, **overrides: Any) -> dict[str, Any]:
        """An invoice, through billing if it runs, else published."""
        if self.runs("billing"):
            body = {
                "client": client_id,
                "amount": "299.00",
                "type": "monthly",
                "due_date": "2030-02-28",
            }
            async with self.http(self.admin_token) as http:
                response = await http.post("/api/invoices/", json={**body, **overrides})
            assert response.status_code == 201, response.text
            invoice = response.json()
            return {**invoice, "client_id": client_id}
        invoice = self.invoice_payload(client_id, **overrides)
        await self.publish("invoice.created", invoice)
        return invoice

    @staticmethod
    def invoice_payload(client_id: str, **overrides: Any) -> dict[str, Any]:
        number = f"INV-2030-{uuid.uuid4().int % 900 + 100}{uuid.uuid4().hex[:4]}"
        return {
            "id": str(uuid.uuid4()),
            "client_id": client_id,
            "invoice_number": number,
            "amount": "299.00",
            "type": "monthly",
            "status": "pending",
            "due_date": "2030-02-28",
            "paid_date": None,
            "previous_status": None,
            **overrides,
        }

    # Mail

    def mails_about(self, marker: str, *, to: str | None = None) -> list[Mail]:
        return [
            mail
            for mail in list(self.smtp.mails)
            if mail.mentions(marker) and (to is None or to in mail.recipients)
        ]

    async def wait_for_mails(
        self, marker: str, count: int, *, to: str | None = None
    ) -> list[Mail]:
        """The mails about `marker` once there are at least `count` of them."""

        async def arrived() -> list[Mail]:
            found = self.mails_about(marker, to=to)
            return found if len(found) >= count else []

        return await eventually(arrived)

    async def notifications(self, **params: Any) -> list[dict[str, Any]]:
        async with self.http(self.admin_token) as http:
            response = await http.get(
                "/api/notifications/", params={"page_size": 100, **params}
            )
        assert response.status_code == 200, response.text
        return response.json()["results"]

    async def notifications_about(
        self, marker: str, **params: Any
    ) -> list[dict[str, Any]]:
        return [
            row
            for row in await self.notifications(**params)
            if marker in row["subject"]
        ]

    # The service's own database, for time travel and seeding

    async def support_sql(self, statement: str, **params: Any) -> None:
        engine = create_async_engine(self.system.env["PORTAL_SUPPORT_DATABASE_URL"])
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement), params)
        finally:
            await engine.dispose()

    async def support_sql_value(self, statement: str, **params: Any) -> Any:
        engine = create_async_engine(self.system.env["PORTAL_SUPPORT_DATABASE_URL"])
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text(statement), params)).scalar()
        finally:
            await engine.dispose()


@pytest.fixture(scope="session")
def nats_servers(run_dir: Path):
    """Start a NATS server of its own for one portal; all stop at the end."""
    servers: list[EmbeddedNats] = []

    def start() -> str:
        server = EmbeddedNats(run_dir / f"support-nats-{len(servers)}" / "store")
        server.start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def smtp_factory():
    """Start a recording SMTP server; all stop at the end."""
    servers: list[RecordingSmtp] = []

    def start() -> RecordingSmtp:
        server = RecordingSmtp()
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


async def start_world(
    system_factory, nats_servers, smtp_factory, **options: Any
) -> SupportWorld:
    smtp = smtp_factory()
    nats_url = nats_servers()
    portal = await start_portal(
        system_factory, extra_env=mail_env(smtp, nats_url), **options
    )
    return SupportWorld(portal, smtp, nats_url)


@pytest.fixture(scope="session")
async def world(system_factory, nats_servers, smtp_factory) -> SupportWorld:
    """One portal with support wired to a recording SMTP server, shared by the tests."""
    return await start_world(system_factory, nats_servers, smtp_factory)


@pytest.fixture(scope="session")
def world_factory(system_factory, nats_servers, smtp_factory):
    """Start another such portal, e.g. with two support replicas."""

    async def start(**options: Any) -> SupportWorld:
        return await start_world(system_factory, nats_servers, smtp_factory, **options)

    return start
