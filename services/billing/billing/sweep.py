"""The overdue and reminder sweep: an in-process scheduler, one replica at a time.

Every replica runs `SweepScheduler`: once at start-up, then every
`PORTAL_BILLING_SWEEP_INTERVAL_SECONDS` (an hour by default). A run opens one
transaction and first tries PostgreSQL's transaction-level advisory lock
`SWEEP_LOCK_KEY`; a replica that does not get it skips this run, because
another replica is sweeping. The lock ends with the transaction, so a replica
that dies mid-sweep holds nothing.

The sweep is idempotent whoever runs it and however often: an invoice's
overdue notice and reminder are each recorded once (markers on the row), and
the events go through the outbox with the changes. What it does not give:
exact timing. An invoice that becomes overdue at midnight is announced by the
first sweep after midnight, up to one interval later (reads show it overdue
from midnight on regardless).
"""

import asyncio
from contextlib import suppress

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import service
from billing.clock import Clock
from portal_common.bus import describe_error

log = structlog.get_logger("billing.sweep")

# Any constant works: the lock space is this service's own database.
SWEEP_LOCK_KEY = 0x6269_6C6C_0001


async def sweep_invoices(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> bool:
    """Run the sweep once unless another replica is; True when this one ran it."""
    async with sessions() as session, session.begin():
        locked = await session.scalar(
            select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY))
        )
        if not locked:
            log.debug("invoice.sweep_skipped")
            return False
        overdue = await service.mark_overdue_invoices(session, clock)
        reminded = await service.remind_due_soon_invoices(session, clock)
    log.info(
        "invoice.sweep_finished",
        today=clock.today().isoformat(),
        overdue=overdue,
        due_soon=reminded,
    )
    return True


class SweepScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        interval_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="invoice-sweep")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await sweep_invoices(self._sessions, self._clock)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The database may be briefly away; the next run tries again.
                log.warning("invoice.sweep_failed", reason=describe_error(error))
            await asyncio.sleep(self._interval)
