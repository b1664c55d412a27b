"""The outbox relay: publishes committed outbox rows to JetStream.

How it works. A background task (`OutboxRelay.start()` in a service's
lifespan) repeatedly claims up to `batch_size` unpublished rows, oldest
first, with `SELECT … FOR UPDATE SKIP LOCKED`, publishes each one with its
event id as `Nats-Msg-Id`, waits for JetStream's acknowledgement, sets
`published_at` and commits. Replicas of a service each run a relay; the row
locks make them share the rows instead of publishing the same ones. The
relay wakes right after a transaction that recorded an event commits (see
`portal_common.events.record_event`) and otherwise polls every
`poll_interval` seconds, which also picks up rows committed by other
replicas or left behind by a crash.

When NATS is down the rows simply stay: the relay logs
`outbox.publish_failed` once per outage (WARNING), `outbox.publish_stalled`
once if the outage outlasts `stall_after` seconds (ERROR), backs off, and
publishes as soon as the connection is back (`outbox.publish_resumed`). A
row that JetStream refuses while NATS is up (no stream for its subject, a
message too large) is set aside with `available_at` pushed into the future,
its error in `last_error`, and logged at ERROR, so it does not block the rows
behind it.

Guarantees: every committed row is published at least once, in roughly the
order it was recorded. A row is published twice only if its `published_at`
update is lost (crash or database failure right after the publish);
JetStream drops that copy within its de-duplication window and consumers
drop it by event id after that. Not guaranteed: strict ordering (replicas,
retries and set-aside rows reorder events). Published rows are deleted after
`retention`.
"""

import asyncio
import datetime as dt
import json
import time
from typing import Any

import structlog
from nats.errors import MaxPayloadError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_common.bus import (
    Bus,
    NatsUnavailable,
    describe_error,
    is_connected,
    publish_message,
)
from portal_common.events import (
    CORRELATION_ID_HEADER,
    DEFAULT_OUTBOX,
    EVENT_ID_HEADER,
    register_relay_wakeup,
    unregister_relay_wakeup,
)

log = structlog.get_logger("outbox")

# Errors that mean "NATS is not usable right now" rather than "this row is bad".
_OUTAGE_ERRORS = (NatsUnavailable, NatsTimeoutError, ServiceUnavailableError, OSError)
# Errors that mean JetStream refused this one message while NATS works.
_ROW_ERRORS = (NoStreamResponseError, APIError, MaxPayloadError, ValueError, TypeError)


class OutboxRelay:
    """Publishes a service's outbox to JetStream in the background.

    `sessions` opens sessions on the service's database; `bus` is the
    service's `NatsBroker` (or a nats-py JetStream context); `outbox` is the
    service's outbox table (default: the standard table named `outbox`).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        outbox: Table | None = None,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        max_backoff: float = 5.0,
        stall_after: float = 60.0,
        retention: dt.timedelta = dt.timedelta(days=7),
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._outbox = DEFAULT_OUTBOX if outbox is None else outbox
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._max_backoff = max_backoff
        self._stall_after = stall_after
        self._retention = retention
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outage_since: float | None = None
        self._stall_reported = False
        self._last_prune = 0.0
        self._prune_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task; call once, from the running event loop."""
        if self._task is not None:
            return
        register_relay_wakeup(self._wakeup)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop after the current batch is rolled back or committed."""
        unregister_relay_wakeup(self._wakeup)
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    def wake(self) -> None:
        """Publish now instead of at the next poll."""
        self._wakeup.set()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                published = await self.publish_pending()
                self._maybe_prune_soon()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._report_failure(error)
                await self._sleep_through_outage(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue

            backoff = 0.2
            self._report_recovery()
            if published < self._batch_size:
                await self._wait_for_work()

    async def publish_pending(self) -> int:
        """Claim and publish one batch; the number of rows claimed.

        Raises `NatsUnavailable` (or the nats-py error) when NATS is not
        usable, after committing whatever was published before it failed,
        and the SQLAlchemy error when the database is not.
        """
        if not is_connected(self._bus):
            raise NatsUnavailable("the NATS connection is down")
        table = self._outbox

        async with self._sessions() as session, session.begin():
            claim = (
                select(table)
                .where(
                    table.c.published_at.is_(None),
                    table.c.available_at <= func.clock_timestamp(),
                )
                .order_by(table.c.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = (await session.execute(claim)).all()
            if not rows:
                return 0

            # Sent in order on one connection, so JetStream stores them in order.
            results = await asyncio.gather(
                *(self._publish(row) for row in rows), return_exceptions=True
            )
            published = [
                row.id
                for row, result in zip(rows, results, strict=True)
                if result is None
            ]
            if published:
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(published))
                    .values(published_at=func.now(), attempts=table.c.attempts + 1)
                )

            outage: BaseException | None = None
            for row, result in zip(rows, results, strict=True):
                if result is None:
                    continue
                if isinstance(result, _ROW_ERRORS) and not isinstance(
                    result, _OUTAGE_ERRORS
                ):
                    await self._set_aside(session, row, result)
                else:
                    outage = outage or result

        if published:
            log.debug("outbox.published", count=len(published))
        if outage is not None:
            raise outage
        return len(rows)

    async def _publish(self, row: Any) -> None:
        headers = {EVENT_ID_HEADER: str(row.event_id)}
        if row.correlation_id:
            headers[CORRELATION_ID_HEADER] = row.correlation_id
        body = json.dumps(row.envelope, separators=(",", ":")).encode()
        await publish_message(
            self._bus,
            row.subject,
            body,
            msg_id=str(row.event_id),
            headers=headers,
            timeout=self._publish_timeout,
        )

    async def _set_aside(
        self, session: AsyncSession, row: Any, error: BaseException
    ) -> None:
        attempts = row.attempts + 1
        delay = min(2**attempts, 300)
        reason = (
            "no stream stores this subject"
            if isinstance(error, NoStreamResponseError)
            else describe_error(error)
        )
        table = self._outbox
        await session.execute(
            update(table)
            .where(table.c.id == row.id)
            .values(
                attempts=attempts,
                last_error=reason[:500],
                available_at=func.clock_timestamp() + dt.timedelta(seconds=delay),
            )
        )
        # One line per attempt, at most one every five minutes per row.
        log.error(
            "outbox.row_refused",
            event_id=str(row.event_id),
            subject=row.subject,
            attempts=attempts,
            retry_in_seconds=delay,
            reason=reason,
        )

    def _report_failure(self, error: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._stall_reported = False
            log.warning("outbox.publish_failed", reason=describe_error(error))
        elif not self._stall_reported and now - self._outage_since >= self._stall_after:
            self._stall_reported = True
            log.error(
                "outbox.publish_stalled",
                outage_seconds=round(now - self._outage_since),
                reason=describe_error(error),
            )

    def _report_recovery(self) -> None:
        if self._outage_since is None:
            return
        log.info(
            "outbox.publish_resumed",
            outage_seconds=round(time.monotonic() - self._outage_since, 1),
        )
        self._outage_since = None

    async def _sleep_through_outage(self, backoff: float) -> None:
        # While disconnected, check the connection often (it costs nothing)
        # so the rows go out as soon as NATS is back, not after the backoff.
        deadline = time.monotonic() + backoff
        was_connected = is_connected(self._bus)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if not was_connected and is_connected(self._bus):
                return

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval)
        except TimeoutError:
            pass
        self._wakeup.clear()

    def _maybe_prune_soon(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 3600:
            return
        self._last_prune = now
        self._prune_task = asyncio.create_task(self._prune(), name="outbox-prune")

    async def _prune(self) -> None:
        table = self._outbox
        cutoff = func.now() - self._retention
        try:
            async with self._sessions() as session, session.begin():
                result = await session.execute(
                    delete(table).where(table.c.published_at < cutoff)
                )
        except Exception as error:
            log.warning("outbox.prune_failed", reason=describe_error(error))
            return
        if result.rowcount:
            log.info("outbox.pruned", count=result.rowcount)
