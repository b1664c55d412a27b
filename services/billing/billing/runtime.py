"""The billing service's process-wide state: settings, database, clock, client copy, sweep."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

from billing.clock import Clock
from billing.config import BillingSettings
from billing.models import clients
from billing.sweep import SweepScheduler
from portal_common.clients_copy import ClientDirectory
from portal_common.runtime import BusRuntime


def consumer_name(database_url: str) -> str:
    """The durable consumer of `client.*` events: `billing-client-<database>`.

    A durable's position and the processed-events table it pairs with live
    together, so the name follows the database: every replica of one
    deployment shares it, while two deployments (or test systems) that share
    one NATS server but not a database each receive every event.
    """
    database = make_url(database_url).database or "billing"
    return "billing-client-" + re.sub(r"[^A-Za-z0-9_-]", "_", database)


class BillingRuntime(BusRuntime[BillingSettings]):
    directory: ClientDirectory
    clock: Clock
    sweeper: SweepScheduler

    def open_service(self, settings: BillingSettings) -> None:
        self.open(settings, settings.billing_database_url)
        self.directory = ClientDirectory(
            clients,
            clients_url=settings.clients_url,
            internal_token=settings.internal_token,
        )
        self.clock = Clock.configured(settings.time_zone, settings.billing_fake_now)
        self.sweeper = SweepScheduler(
            self.sessions,
            self.clock,
            interval_seconds=settings.billing_sweep_interval_seconds,
        )

    @asynccontextmanager
    async def lifespan(self, app=None) -> AsyncIterator[None]:
        async with super().lifespan(app):
            self.sweeper.start()
            try:
                yield
            finally:
                await self.sweeper.stop()


runtime = BillingRuntime()
