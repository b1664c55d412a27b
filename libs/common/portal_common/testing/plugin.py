"""Pytest fixtures every test of the portal shares.

One real PostgreSQL and one real NATS server per test run: the embedded ones
from PyPI wheels, or existing servers named by `PORTAL_TEST_POSTGRES_URL`
(a `postgresql+asyncpg://` URL of a role that may create databases) and
`PORTAL_TEST_NATS_URL`, or throwaway containers through testcontainers with
`PORTAL_TEST_CONTAINERS=1` where a Docker engine runs. Each test module or system gets fresh databases, so
nothing depends on rows another test left behind.

`system` starts every installed service and the gateway with the same
launcher `make run` uses; tests talk to it over HTTP like any client.
"""

import asyncio
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from portal_deploy.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    database_url_on,
    ensure_database,
)


class TestInfrastructure:
    """The servers of this run, and fresh databases on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None
        self.server_url = os.environ.get("PORTAL_TEST_POSTGRES_URL", "")
        self.external_nats_url = os.environ.get("PORTAL_TEST_NATS_URL", "")

    def start(self) -> None:
        if os.environ.get("PORTAL_TEST_CONTAINERS") == "1":
            self._start_containers()
        if not self.server_url:
            self.postgres = EmbeddedPostgres(self.root / "postgres")
            self.postgres.start()
            self.server_url = self.postgres.url("postgres")
        if not self.external_nats_url:
            self.nats = EmbeddedNats(self.root / "nats")
            self.nats.start()

    def _start_containers(self) -> None:
        """PostgreSQL and NATS as throwaway containers, where a Docker engine runs.

        Opt-in with PORTAL_TEST_CONTAINERS=1. Written for machines with Docker;
        the machine this project is built on has none, so this path has not
        been run there (the embedded servers are the default and what CI uses).
        """
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs
        from testcontainers.postgres import PostgresContainer

        postgres = PostgresContainer("postgres:16", driver="asyncpg")
        postgres.start()
        nats = DockerContainer("nats:2.10").with_command("-js").with_exposed_ports(4222)
        nats.start()
        wait_for_logs(nats, "Server is ready")
        self._containers = [postgres, nats]
        self.server_url = postgres.get_connection_url()
        self.external_nats_url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"

    def stop(self) -> None:
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()
        for container in getattr(self, "_containers", []):
            container.stop()

    @property
    def nats_url(self) -> str:
        return self.external_nats_url or self.nats.url  # type: ignore[union-attr]

    async def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; its `postgresql+asyncpg://` URL."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        await ensure_database(self.server_url, name)
        return database_url_on(self.server_url, name)

    def restart_nats(self, *, kill: bool = False) -> None:
        """Stop the embedded NATS server and start it again on the same port and store."""
        assert self.nats is not None, "only the embedded NATS server can be restarted"
        (self.nats.kill if kill else self.nats.stop)()
        self.nats.start()


@pytest.fixture(scope="session")
def run_dir() -> Iterator[Path]:
    """A folder of this run's own, outside pytest's numbered temp folders.

    pytest prunes old numbered folders when another run starts, which would
    pull the data folder from under a server still in use by a parallel run.
    """
    folder = Path(tempfile.mkdtemp(prefix="portal-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def infra(run_dir: Path) -> Iterator[TestInfrastructure]:
    servers = TestInfrastructure(run_dir / "infra")
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture(scope="session")
def system_factory(infra: TestInfrastructure, run_dir: Path):
    """Start a whole portal (services + gateway) on the run's servers.

    Returns an async function taking optional `extra_env` and `replicas`;
    every system started is stopped at the end of the session.
    """
    from portal_deploy.embedded import free_port
    from portal_deploy.launcher import Infrastructure, System

    started: list[System] = []
    own_servers: list[EmbeddedNats] = []

    async def start(
        *,
        extra_env: dict[str, str] | None = None,
        replicas: dict[str, int] | None = None,
        shared_nats: bool = False,
    ) -> System:
        data_dir = Path(tempfile.mkdtemp(prefix="portal-", dir=run_dir))
        prefix = f"s{uuid.uuid4().hex[:8]}"
        # Two systems on one NATS server would share durable consumers (same
        # names) and take each other's events, so each system gets its own
        # server unless it is the run's shared portal or names one.
        nats_url = (extra_env or {}).get("PORTAL_NATS_URL")
        if not nats_url and shared_nats:
            nats_url = infra.nats_url
        if not nats_url:
            server = EmbeddedNats(data_dir / "nats")
            server.start()
            own_servers.append(server)
            nats_url = server.url
        # Several systems share the run's PostgreSQL: small pools each.
        env = {"PORTAL_DB_POOL_SIZE": "8", **(extra_env or {}), "PORTAL_NATS_URL": nats_url}
        shared = Infrastructure(data_dir=data_dir, external_nats_url=nats_url)
        system = System(
            infra=shared,
            data_dir=data_dir,
            database_prefix=prefix,
            gateway_port=free_port(),
            extra_env=env,
            replicas=replicas or {},
        )
        if env.get("PORTAL_SERVICES"):
            wanted = set(env["PORTAL_SERVICES"].split(","))
            system.services = [spec for spec in system.services if spec.name in wanted]
        for spec in system.services:
            name = f"{prefix}_{spec.name}"
            await ensure_database(infra.server_url, name)
            system.extra_env.setdefault(
                f"PORTAL_{spec.env_name}_DATABASE_URL", database_url_on(infra.server_url, name)
            )
        await system.prepare()
        started.append(system)
        await system.start()
        return system

    yield start
    for system in started:
        system.stop()
    for server in own_servers:
        server.stop()


SHARED_PORTAL_ENV = {
    "PORTAL_TRUSTED_PROXIES": "127.0.0.1",
    "PORTAL_CORS_ORIGINS": "http://frontend.test",
}


class Portal:
    """A started system plus conveniences for talking to it as a user would."""

    def __init__(self, system, admin_username: str, admin_password: str) -> None:
        self.system = system
        self.url = system.gateway_url
        self.admin_username = admin_username
        self.admin_password = admin_password
        self.admin_token = ""

    def client(self, token: str | None = None, **kwargs) -> httpx.AsyncClient:
        headers = {"Authorization": f"Token {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30.0, **kwargs)

    async def login(self, username: str, password: str) -> str:
        async with self.client() as http:
            response = await http.post("/api/auth/token/", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    async def create_user(self, username: str, *, password: str = "pw-Secret-123", is_staff: bool = False,
                          client: str | None = None, email: str | None = None) -> str:
        """Create a user through the API and return a fresh token of theirs."""
        async with self.client(self.admin_token) as http:
            response = await http.post(
                "/api/auth/users/",
                json={
                    "username": username,
                    "password": password,
                    "email": email or f"{username}@example.com",
                    "is_staff": is_staff,
                    "client": client,
                },
            )
        assert response.status_code == 201, response.text
        return await self.login(username, password)


async def start_portal(system_factory, **kwargs) -> Portal:
    from portal_deploy.launcher import ensure_bootstrap_admin

    system = await system_factory(**kwargs)
    username, _, _ = await ensure_bootstrap_admin(system)
    from portal_deploy.secrets import admin_password

    password, _ = admin_password(system.data_dir)
    portal = Portal(system, username, password)
    portal.admin_token = await portal.login(username, password)
    return portal


@pytest.fixture(scope="session")
async def portal(system_factory) -> AsyncIterator[Portal]:
    """The whole system, shared by every test of the run that only reads and adds.

    127.0.0.1 is a trusted proxy here, so tests can act from distinct
    addresses with X-Forwarded-For (login throttling counts per address).
    """
    yield await start_portal(system_factory, extra_env=SHARED_PORTAL_ENV, shared_nats=True)


async def publish_event(nats_url: str, event_type: str, data: dict, *, source: str = "test", envelope=None):
    """Publish one envelope onto the portal's stream, as a service's relay would."""
    import nats

    from portal_common.bus import publish_message
    from portal_common.events import Envelope

    envelope = envelope or Envelope.new(event_type, data, source=source)
    connection = await nats.connect(nats_url)
    try:
        await publish_message(
            connection.jetstream(), envelope.subject, envelope.encode(),
            msg_id=envelope.event_id, headers=envelope.headers(),
        )
    finally:
        await connection.close()
    return envelope


async def eventually(check, *, timeout: float = 10.0, interval: float = 0.1):
    """Await `check()` until it returns a truthy value or `timeout` passes; the last value."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)
