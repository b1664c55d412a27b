"""The portal's processes, one entry each.

Adding a service to the system is one `ServiceSpec` here: the launcher starts
it, gives it its own database and migrations, and the gateway learns its URL
from `PORTAL_<NAME>_URL`.
"""

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    app: str
    has_database: bool = True

    @property
    def env_name(self) -> str:
        return self.name.upper()

    def is_installed(self) -> bool:
        module = self.app.split(":")[0]
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    def migrations_dir(self) -> Path:
        package = importlib.util.find_spec(self.name)
        assert package is not None and package.origin is not None
        return Path(package.origin).parent.parent / "migrations"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("auth", "auth.main:app"),
    ServiceSpec("clients", "clients.main:app"),
    ServiceSpec("workflows", "workflows.main:app"),
    ServiceSpec("billing", "billing.main:app"),
    ServiceSpec("support", "support.main:app"),
)

GATEWAY = ServiceSpec("gateway", "gateway.main:app", has_database=False)


def installed_services() -> list[ServiceSpec]:
    """The services to run: those whose code is present, narrowed by PORTAL_SERVICES.

    `PORTAL_SERVICES=auth,clients` starts only those two (the gateway answers
    503 for the others), which is handy while one service is being worked on.
    """
    wanted = {name.strip() for name in os.environ.get("PORTAL_SERVICES", "").split(",") if name.strip()}
    return [spec for spec in SERVICES if spec.is_installed() and (not wanted or spec.name in wanted)]
