"""The workflows service's process-wide state: settings, database, bus, client copy."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from portal_common.clients_copy import ClientDirectory
from portal_common.runtime import BusRuntime
from workflows.config import WorkflowsSettings
from workflows.health import HealthCheckScheduler
from workflows.models import clients


class WorkflowsRuntime(BusRuntime[WorkflowsSettings]):
    directory: ClientDirectory
    health: HealthCheckScheduler

    def open_service(self, settings: WorkflowsSettings) -> None:
        self.open(settings, settings.workflows_database_url)
        self.directory = ClientDirectory(
            clients,
            clients_url=settings.clients_url,
            internal_token=settings.internal_token,
        )
        self.health = HealthCheckScheduler(
            self.sessions,
            interval_seconds=settings.workflow_health_interval_seconds,
            threshold=settings.workflow_health_threshold,
            zone=settings.zone,
        )

    @asynccontextmanager
    async def lifespan(self, _app=None) -> AsyncIterator[None]:
        async with super().lifespan(_app):
            self.health.start()
            try:
                yield
            finally:
                await self.health.stop()


runtime = WorkflowsRuntime()
