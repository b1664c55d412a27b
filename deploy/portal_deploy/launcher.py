"""`make run`: the whole portal on one machine, in the foreground.

Starts (or connects to) PostgreSQL and NATS, gives every service its own
database and applies its migrations, creates the bootstrap admin, then runs
each service and the gateway as separate processes. Ctrl-C stops the
processes and both servers. The test suite drives the same `System` class, so
the end-to-end tests run exactly what a user runs.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from portal_common.migrations import upgrade_to_head
from portal_deploy import secrets as portal_secrets
from portal_deploy.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    database_url_on,
    ensure_database,
    free_port,
)
from portal_deploy.mailsink import MailSink, smtp_host_configured
from portal_deploy.services import GATEWAY, ServiceSpec, installed_services


@dataclass
class Infrastructure:
    """PostgreSQL and NATS: embedded unless `PORTAL_*` URLs name existing servers."""

    data_dir: Path
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    external_nats_url: str | None = None

    @classmethod
    def start(cls, data_dir: Path, *, environ: dict[str, str] | None = None) -> "Infrastructure":
        environ = dict(os.environ if environ is None else environ)
        data_dir.mkdir(parents=True, exist_ok=True)
        infra = cls(data_dir=data_dir, external_nats_url=environ.get("PORTAL_NATS_URL") or None)
        needs_postgres = any(
            not environ.get(f"PORTAL_{spec.env_name}_DATABASE_URL") for spec in installed_services()
        ) or environ.get("PORTAL_FORCE_EMBEDDED_POSTGRES") == "1"
        if needs_postgres:
            infra.postgres = EmbeddedPostgres(data_dir / "postgres")
            infra.postgres.start()
        if infra.external_nats_url is None:
            infra.nats = EmbeddedNats(data_dir / "nats")
            infra.nats.start()
        return infra

    @property
    def nats_url(self) -> str:
        if self.external_nats_url:
            return self.external_nats_url
        assert self.nats is not None
        return self.nats.url

    def embedded_database_url(self, database: str) -> str:
        assert self.postgres is not None
        return self.postgres.url(database)

    def stop(self) -> None:
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()


@dataclass
class Process:
    spec: ServiceSpec
    port: int
    log_path: Path
    popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class System:
    """Every installed service plus the gateway, as child processes."""

    infra: Infrastructure
    data_dir: Path
    database_prefix: str = "portal"
    gateway_port: int = 8000
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    services: list[ServiceSpec] = field(default_factory=installed_services)
    processes: dict[str, list[Process]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    mail_sink: MailSink | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def database_url(self, spec: ServiceSpec) -> str:
        given = self.extra_env.get(f"PORTAL_{spec.env_name}_DATABASE_URL") or os.environ.get(
            f"PORTAL_{spec.env_name}_DATABASE_URL"
        )
        if given:
            return given
        return self.infra.embedded_database_url(f"{self.database_prefix}_{spec.name}")

    async def prepare(self) -> None:
        """Databases, migrations and the environment every process starts with."""
        self.env = {
            **os.environ,
            **portal_secrets.load_or_create(self.data_dir),
            "PORTAL_DATA_DIR": str(self.data_dir),
            "PORTAL_NATS_URL": self.infra.nats_url,
            "PORTAL_LOG_FORMAT": os.environ.get("PORTAL_LOG_FORMAT", "json"),
            **self.extra_env,
        }
        # No SMTP server configured: support mails into .eml files instead.
        if any(spec.name == "support" for spec in self.services) and not smtp_host_configured(self.env):
            self.mail_sink = MailSink(self.data_dir / "mail")
            host, port = self.mail_sink.start()
            self.env.update(PORTAL_SMTP_HOST=host, PORTAL_SMTP_PORT=str(port))
        for spec in self.services:
            url = self.database_url(spec)
            server_url = database_url_on(url, "postgres")
            await ensure_database(server_url, url.split("?")[0].rsplit("/", 1)[1])
            await asyncio.to_thread(upgrade_to_head, spec.migrations_dir(), url)
            self.env[f"PORTAL_{spec.env_name}_DATABASE_URL"] = url
        for spec in self.services:
            count = self.replicas.get(spec.name, 1)
            self.processes[spec.name] = [
                Process(spec, free_port(), self.data_dir / "logs" / f"{spec.name}-{index}.log")
                for index in range(count)
            ]
            self.env[f"PORTAL_{spec.env_name}_URL"] = ",".join(p.url for p in self.processes[spec.name])
        # The first gateway listens on the public port; more replicas (as a
        # load balancer would put behind one address) take free ports.
        self.processes[GATEWAY.name] = [
            Process(
                GATEWAY,
                self.gateway_port if index == 0 else free_port(),
                self.data_dir / "logs" / f"gateway-{index}.log",
            )
            for index in range(self.replicas.get(GATEWAY.name, 1))
        ]

    def _spawn(self, process: Process) -> None:
        process.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(process.log_path, "ab")
        process.popen = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", process.spec.app,
                "--host", "127.0.0.1",
                "--port", str(process.port),
                "--no-access-log",
                "--timeout-graceful-shutdown", "5",
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()

    async def _wait_healthy(self, processes: list[Process], *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            for process in processes:
                while True:
                    if process.popen is not None and process.popen.poll() is not None:
                        raise StartupFailed(startup_failure(process))
                    try:
                        if (await http.get(process.url + "/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{process.spec.name} not ready; see {process.log_path}")
                    await asyncio.sleep(0.1)

    async def start(self) -> None:
        if not self.env:
            await self.prepare()
        everything = [p for group in self.processes.values() for p in group]
        for process in everything:
            self._spawn(process)
        await self._wait_healthy(everything)

    def stop(self) -> None:
        everything = [p for group in self.processes.values() for p in group]
        for process in everything:
            if process.popen is not None and process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in everything:
            if process.popen is not None:
                try:
                    process.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.popen.kill()
                    process.popen.wait()
                process.popen = None
        if self.mail_sink is not None:
            self.mail_sink.stop()
            self.mail_sink = None

    async def restart_service(self, name: str, *, kill: bool = False, replica: int = 0) -> None:
        """Stop one replica (abruptly with `kill`) and start it again on the same port."""
        process = self.processes[name][replica]
        self.stop_process(process, kill=kill)
        self._spawn(process)
        await self._wait_healthy([process])

    def stop_process(self, process: Process, *, kill: bool = False) -> None:
        if process.popen is None:
            return
        if kill:
            process.popen.kill()
        else:
            process.popen.send_signal(signal.SIGTERM)
        process.popen.wait(timeout=15)
        process.popen = None

    def exited(self) -> list[Process]:
        return [
            p
            for group in self.processes.values()
            for p in group
            if p.popen is not None and p.popen.poll() is not None
        ]


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def ensure_bootstrap_admin(system: System) -> tuple[str, str, bool]:
    """Create the staff user named by PORTAL_ADMIN_USERNAME unless it exists.

    Returns the username, the password to print (only while it still works:
    once someone changed it, the stored one is of no use and is not shown),
    and whether the user was created now.
    """
    from auth.bootstrap import ensure_admin, password_still_works

    username = os.environ.get("PORTAL_ADMIN_USERNAME", "admin")
    email = os.environ.get("PORTAL_ADMIN_EMAIL", "admin@localhost")
    password, _ = portal_secrets.admin_password(system.data_dir)
    url = system.database_url(next(spec for spec in system.services if spec.name == "auth"))
    created = await ensure_admin(url, username=username, email=email, password=password)
    if not created and not await password_still_works(url, username=username, password=password):
        password = "(changed since it was set; not shown)"
    return username, password, created


class StartupFailed(Exception):
    """A process of the system could not start; the message says why in one line."""


def startup_failure(process: "Process") -> str:
    """The one line that explains why `process` stopped at start-up."""
    lines = tail(process.log_path, 200).splitlines()
    for line in lines:
        if line.startswith("configuration error:"):
            return line
    if any("address already in use" in line for line in lines):
        variable = "PORTAL_GATEWAY_PORT" if process.spec.name == "gateway" else "a service port"
        return f"configuration error: {variable}: port {process.port} is already in use"
    return f"{process.spec.name} stopped at start-up; see {process.log_path}"


async def main() -> int:
    data_dir = Path(os.environ.get("PORTAL_DATA_DIR", "./var")).resolve()
    port_text = os.environ.get("PORTAL_GATEWAY_PORT", "8000")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        print(f"configuration error: PORTAL_GATEWAY_PORT: not a port number: {port_text!r}", file=sys.stderr)
        return 2
    print(f"Starting the Monoliet portal; data in {data_dir}")
    infra = Infrastructure.start(data_dir)
    system = System(infra=infra, data_dir=data_dir, gateway_port=int(port_text))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await system.prepare()
        username, password, _ = await ensure_bootstrap_admin(system)
        try:
            await system.start()
        except StartupFailed as failure:
            print(failure, file=sys.stderr)
            return 2
        print(
            "\nThe portal is running.\n"
            f"  API:      {system.gateway_url}/api/\n"
            f"  Docs:     {system.gateway_url}/api/docs/\n"
            f"  Admin:    {username} / {password}\n"
            f"  Services: {', '.join(spec.name for spec in system.services)}\n"
            f"  Logs:     {data_dir / 'logs'}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping.is_set():
            for process in system.exited():
                print(f"{process.spec.name} exited ({process.popen.returncode}); restarting it.\n"
                      + tail(process.log_path, 10), file=sys.stderr)
                system._spawn(process)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
            except TimeoutError:
                pass
        print("Stopping…", flush=True)
        return 0
    finally:
        system.stop()
        infra.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
