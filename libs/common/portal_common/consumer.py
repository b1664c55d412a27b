"""Durable, idempotent JetStream consumers, and dead letters.

How it works. `consume(broker, service=…, subjects=…, handler=…, …)`
registers a JetStream pull consumer named after the service and the subject
family (`billing-client` for `client.>`), durable and shared by every replica
of the service, so each event is delivered to one replica at a time.
`start_bus` starts a pull loop per consumer on the broker's connection: one
`fetch` asks for up to `batch_size` messages and returns as soon as any are
there (or after `max_wait` seconds of nothing, then asks again). For one
batch the consumer opens one database transaction in which every message
gets its own SAVEPOINT:

* the envelope is parsed; a malformed one is poison;
* `(consumer, event id)` is inserted into the service's `processed_events`
  table (`ON CONFLICT DO NOTHING`); if it was there, the event is a duplicate
  and is skipped; a concurrent delivery of the same event to another replica
  waits on that row and then sees it as a duplicate;
* the handler runs: `await handler(session, envelope)`. It adds and flushes,
  never commits.

Then the transaction commits, and only after the commit each message is
settled: acked when applied or a duplicate; dead-lettered then terminated
when poison; nak'ed with a delay when it failed for a passing reason.

Failures. A handler raising `PermanentEventError`, or a message that cannot
be parsed, is poison: its savepoint is rolled back, the rest of the batch
goes on, and the message is published to `dlq.<service>.<subject>` (stream
`PORTAL_DLQ`) with the original payload and `Portal-Dlq-*` headers giving the
reason, subject, stream sequence, consumer and attempts, logged at ERROR and
terminated. Any other exception is passing: that message is nak'ed with a
delay that doubles per delivery (`retry_delay` up to `max_retry_delay`) and
the others still commit. If the database itself is gone (the session no
longer answers, or the commit fails), the whole batch is nak'ed. At the last
allowed delivery (`max_deliver`) a passing failure is dead-lettered with the
reason instead of being dropped. While a batch is being processed the
consumer tells JetStream it is in progress, so a slow database does not
cause a redelivery; a crashed process leaves its messages unacknowledged and
JetStream redelivers them after `ack_wait`.

Guarantees: an event's effects and its processed-events row commit together,
and the ack follows the commit, so an event is applied once per consumer
however often it is delivered (crash between commit and ack, redelivery,
replay, a re-publication after the de-duplication window). Not guaranteed:
order. Retries and replicas reorder events; handlers of `*.updated` events
compare `occurred_at` or carry full state. A dead letter whose publication
fails on the last delivery is logged at ERROR with its stream sequence; the
message is still in the stream for a person to replay.

Why not FastStream's `PullSub(batch=True)` subscriber: FastStream 0.7 keeps
fetching until the batch is full or its timeout ends, and nats-py ends a
late partial fetch with a plain `asyncio.TimeoutError` that FastStream does
not catch, so the messages gathered so far are dropped with the restarted
task. They come back only after `ack_wait`, and one on its last delivery is
lost without a dead letter. The loop here handles whatever one fetch
returns. FastStream still owns the connection, publishing and broadcasts.

Raw mode (`consume_raw`) is for messages that are not envelopes (n8n's
execution objects on `n8n.execution`). The handler gets the whole batch as
`RawMessage`s and does its own idempotency (for example with
`mark_processed` keyed on the execution id). It rejects one bad item with
`message.reject(reason)`; if it raises for a batch of several, each item is
retried alone in its own savepoint, so one bad item never blocks the others,
while a database outage still naks them all.
"""

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import structlog
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as JetStreamAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_common.bus import (
    describe_error,
    jetstream_of,
    publish_message,
    register_consumer,
)
from portal_common.events import (
    CORRELATION_ID_HEADER,
    DEAD_LETTER_PREFIX,
    DEFAULT_PROCESSED_EVENTS,
    EVENTS_STREAM,
    MSG_ID_HEADER,
    Envelope,
    MalformedEvent,
    PermanentEventError,
)

log = structlog.get_logger("consumer")

EventHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]

PROCESSED = "processed"
DUPLICATE = "duplicate"
RETRY = "retry"
DEAD_LETTER = "dead_lettered"

DLQ_REASON_HEADER = "Portal-Dlq-Reason"
DLQ_SUBJECT_HEADER = "Portal-Dlq-Subject"
DLQ_STREAM_HEADER = "Portal-Dlq-Stream"
DLQ_SEQUENCE_HEADER = "Portal-Dlq-Sequence"
DLQ_CONSUMER_HEADER = "Portal-Dlq-Consumer"
DLQ_ATTEMPTS_HEADER = "Portal-Dlq-Attempts"

__all__ = [
    "EventConsumer",
    "MalformedEvent",
    "PermanentEventError",
    "RawMessage",
    "consume",
    "consume_raw",
    "durable_name",
    "mark_processed",
]


@dataclasses.dataclass(eq=False)
class RawMessage:
    """One message of a raw batch: decoded JSON plus its delivery facts."""

    subject: str
    data: Any
    msg_id: str | None
    headers: dict[str, str]
    sequence: int
    attempt: int
    rejection: str | None = None

    def reject(self, reason: str) -> None:
        """Send this message to the dead-letter subject with `reason`.

        The rest of the batch is committed as usual. Keep personal data and
        secrets out of `reason`.
        """
        self.rejection = reason


RawHandler = Callable[[AsyncSession, list[RawMessage]], Awaitable[None]]


@dataclasses.dataclass(eq=False)
class _Delivery:
    msg: Msg
    subject: str
    attempt: int
    sequence: int
    headers: dict[str, str]
    envelope: Envelope | None = None
    raw: RawMessage | None = None
    outcome: str | None = None
    reason: str = ""
    error: BaseException | None = None
    batch_wide: bool = False
    settled: bool = False

    @property
    def event_id(self) -> str | None:
        if self.envelope is not None:
            return self.envelope.event_id
        return self.headers.get(MSG_ID_HEADER)

    def poison(self, reason: str) -> None:
        self.outcome, self.reason = DEAD_LETTER, reason

    def retry(self, error: BaseException, *, batch_wide: bool = False) -> None:
        self.outcome, self.error, self.reason = RETRY, error, describe_error(error)
        self.batch_wide = batch_wide


class _BatchAborted(Exception):
    """The database stopped answering in the middle of a batch."""


async def mark_processed(
    session: AsyncSession,
    processed: Table,
    *,
    consumer: str,
    key: str,
) -> bool:
    """Record that `consumer` has applied `key`; False if it already had.

    Runs in the caller's transaction, so the mark commits with the work. A
    concurrent transaction holding the same key makes this wait until that
    one ends, then answer False if it committed.
    """
    statement = (
        pg_insert(processed)
        .values(consumer=consumer, event_id=key)
        .on_conflict_do_nothing()
        .returning(processed.c.event_id)
    )
    return (await session.execute(statement)).first() is not None


def durable_name(service: str, subjects: Sequence[str]) -> str:
    """`billing-client` for `client.>`, `workflows-n8n_execution` for `n8n.execution`.

    All replicas of a service derive the same name, so they share one position.
    """
    parts = [service]
    for subject in subjects:
        tokens = [token for token in subject.split(".") if token not in ("*", ">")]
        parts.append("_".join(tokens) or "all")
    return "-".join(parts)


class EventConsumer:
    """One durable consumer; build it with `consume` or `consume_raw`."""

    def __init__(
        self,
        *,
        service: str,
        subjects: str | Sequence[str],
        handler: EventHandler | RawHandler,
        sessions: async_sessionmaker[AsyncSession],
        processed: Table | None = None,
        raw: bool = False,
        stream: str = EVENTS_STREAM,
        durable: str | None = None,
        batch_size: int = 50,
        max_wait: float = 5.0,
        ack_wait: float = 30.0,
        max_deliver: int = 20,
        retry_delay: float = 1.0,
        max_retry_delay: float = 120.0,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
    ) -> None:
        if max_deliver < 2:
            raise ValueError("max_deliver must allow at least one redelivery")
        self.service = service
        self.subjects = [subjects] if isinstance(subjects, str) else list(subjects)
        self.durable = durable or durable_name(service, self.subjects)
        self.stream = stream
        self._handler: Callable[[AsyncSession, Any], Awaitable[None]] = handler
        self._sessions = sessions
        self._processed = DEFAULT_PROCESSED_EVENTS if processed is None else processed
        self._raw = raw
        self._batch_size = batch_size
        self._max_wait = max_wait
        self._ack_wait = ack_wait
        self._max_deliver = max_deliver
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._deliver_policy = deliver_policy
        self._bus: NatsBroker | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    def consumer_config(self) -> ConsumerConfig:
        """The JetStream consumer: explicit acks, redeliveries, our filter."""
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            description=f"{self.service} consumer of {', '.join(self.subjects)}",
            deliver_policy=self._deliver_policy,
            ack_policy=JetStreamAckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=self._max_deliver,
            filter_subjects=list(self.subjects),
            max_ack_pending=max(1000, 4 * self._batch_size),
        )

    def register(self, broker: NatsBroker) -> None:
        """Attach to `broker`: `start_bus` starts the consumer, `stop_bus` stops it."""
        if broker.running:
            raise RuntimeError("register consumers before start_bus()")
        self._bus = broker
        register_consumer(broker, self)

    async def start(self) -> None:
        """Bind to the durable consumer and start pulling; `start_bus` calls it."""
        if self._task is not None:
            return
        assert self._bus is not None, "register() the consumer first"
        js, _ = jetstream_of(self._bus)
        self._subscription = await js.pull_subscribe_bind(self.durable, self.stream)
        self._stopping = False
        self._task = asyncio.create_task(self._pull(), name=f"consumer-{self.durable}")

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let the current batch commit and settle (up to `grace` s), then stop.

        Messages fetched but not settled are redelivered after `ack_wait`.
        """
        self._stopping = True
        if self._task is None:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._subscription is not None:
            with suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _pull(self) -> None:
        assert self._subscription is not None and self._bus is not None
        _, connection = jetstream_of(self._bus)
        failing_since: float | None = None
        stall_reported = False
        backoff = 0.5
        while not self._stopping:
            try:
                messages = await self._subscription.fetch(
                    self._batch_size, timeout=self._max_wait
                )
            except TimeoutError:
                # Nothing arrived within max_wait (nats-py raises its own
                # TimeoutError or asyncio's; both are this one).
                continue
            except Exception as error:
                if connection.is_closed:
                    log.info("consumer.stopped", consumer=self.durable)
                    return
                now = time.monotonic()
                if failing_since is None:
                    failing_since, stall_reported = now, False
                    log.warning(
                        "consumer.fetch_failed",
                        consumer=self.durable,
                        reason=describe_error(error),
                    )
                elif not stall_reported and now - failing_since > 60:
                    stall_reported = True
                    log.error(
                        "consumer.fetch_stalled",
                        consumer=self.durable,
                        reason=describe_error(error),
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue

            if failing_since is not None:
                log.info(
                    "consumer.fetch_resumed",
                    consumer=self.durable,
                    outage_seconds=round(time.monotonic() - failing_since, 1),
                )
                failing_since, backoff = None, 0.5
            self._idle.clear()
            try:
                await self.handle_batch(messages)
            except Exception:
                # A bug in this module: the unsettled messages come back
                # after ack_wait.
                log.exception("consumer.batch_failed", consumer=self.durable)
            finally:
                self._idle.set()

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds before redelivery after the `attempt`-th delivery failed."""
        return min(self._retry_delay * 2 ** (attempt - 1), self._max_retry_delay)

    async def handle_batch(self, messages: list[Msg]) -> None:
        """Apply, commit, then settle one fetched batch."""
        deliveries = [self._delivery(msg) for msg in messages]
        for delivery in deliveries:
            self._decode(delivery)

        keepalive = asyncio.create_task(self._keep_in_progress(deliveries))
        try:
            await self._apply(deliveries)
        finally:
            keepalive.cancel()

        for delivery in deliveries:
            await self._settle(delivery)
        if self._raw:
            # Raw streams (n8n executions) arrive by the thousand: one line
            # per batch, not per message, keeps logging off the hot path.
            outcomes = Counter(delivery.outcome for delivery in deliveries)
            log.info("events.batch_processed", consumer=self.durable, **outcomes)

    def _delivery(self, msg: Msg) -> _Delivery:
        metadata = msg.metadata
        return _Delivery(
            msg=msg,
            subject=msg.subject,
            attempt=metadata.num_delivered,
            sequence=metadata.sequence.stream,
            headers=dict(msg.headers or {}),
        )

    def _decode(self, delivery: _Delivery) -> None:
        correlation_id = delivery.headers.get(CORRELATION_ID_HEADER)
        with self._bound(delivery):
            if delivery.attempt > 1:
                log.warning("event.redelivered")
            if not self._raw:
                try:
                    delivery.envelope = Envelope.decode(
                        delivery.msg.data, correlation_id=correlation_id
                    )
                except MalformedEvent as error:
                    delivery.poison(f"malformed envelope: {error}")
                return
            try:
                data = json.loads(delivery.msg.data)
            except (UnicodeDecodeError, ValueError):
                delivery.poison("payload is not JSON")
                return
            delivery.raw = RawMessage(
                subject=delivery.subject,
                data=data,
                msg_id=delivery.headers.get(MSG_ID_HEADER),
                headers=delivery.headers,
                sequence=delivery.sequence,
                attempt=delivery.attempt,
            )

    async def _apply(self, deliveries: list[_Delivery]) -> None:
        pending = [delivery for delivery in deliveries if delivery.outcome is None]
        if not pending:
            return
        try:
            async with self._sessions() as session:
                if self._raw:
                    await self._apply_raw(session, pending)
                else:
                    for delivery in pending:
                        await self._apply_envelope(session, delivery)
                await session.commit()
        except Exception as error:
            cause = error.__cause__ if isinstance(error, _BatchAborted) else error
            for delivery in pending:
                if delivery.outcome != DEAD_LETTER:
                    delivery.retry(cause or error, batch_wide=True)

    async def _apply_envelope(self, session: AsyncSession, delivery: _Delivery) -> None:
        envelope = delivery.envelope
        assert envelope is not None
        with self._bound(delivery):
            try:
                async with session.begin_nested():
                    is_new = await mark_processed(
                        session,
                        self._processed,
                        consumer=self.durable,
                        key=envelope.event_id,
                    )
                    if is_new:
                        await self._handler(session, envelope)
            except PermanentEventError as error:
                delivery.poison(str(error) or type(error).__name__)
            except Exception as error:
                delivery.retry(error)
                await self._check_session(session, error)
            else:
                delivery.outcome = PROCESSED if is_new else DUPLICATE

    async def _apply_raw(self, session: AsyncSession, pending: list[_Delivery]) -> None:
        with structlog.contextvars.bound_contextvars(
            consumer=self.durable, batch_size=len(pending)
        ):
            try:
                async with session.begin_nested():
                    batch = [delivery.raw for delivery in pending]
                    await self._handler(session, batch)
            except Exception as error:
                await self._check_session(session, error)
                if len(pending) == 1:
                    self._classify(pending[0], error)
                    return
                log.warning("event.batch_isolated", reason=describe_error(error))
            else:
                for delivery in pending:
                    self._raw_outcome(delivery)
                return

            # Something in the batch failed: find out which, one item at a time.
            for delivery in pending:
                assert delivery.raw is not None
                delivery.raw.rejection = None
                try:
                    async with session.begin_nested():
                        await self._handler(session, [delivery.raw])
                except Exception as error:
                    self._classify(delivery, error)
                    await self._check_session(session, error)
                else:
                    self._raw_outcome(delivery)

    @staticmethod
    def _raw_outcome(delivery: _Delivery) -> None:
        assert delivery.raw is not None
        if delivery.raw.rejection is not None:
            delivery.poison(delivery.raw.rejection)
        else:
            delivery.outcome = PROCESSED

    @staticmethod
    def _classify(delivery: _Delivery, error: BaseException) -> None:
        if isinstance(error, PermanentEventError):
            delivery.poison(str(error) or type(error).__name__)
        else:
            delivery.retry(error)

    @staticmethod
    async def _check_session(session: AsyncSession, error: BaseException) -> None:
        """Abort the batch when the failure took the database connection with it."""
        try:
            await session.execute(text("SELECT 1"))
        except Exception:
            raise _BatchAborted from error

    async def _settle(self, delivery: _Delivery) -> None:
        with self._bound(delivery):
            try:
                await self._settle_one(delivery)
            except Exception as error:
                # JetStream redelivers after ack_wait; the processed-events
                # row makes that harmless.
                log.warning(
                    "event.settle_failed",
                    outcome=delivery.outcome,
                    reason=describe_error(error),
                )

    async def _settle_one(self, delivery: _Delivery) -> None:
        if delivery.outcome == PROCESSED:
            await self._acknowledge(delivery.msg)
            if not self._raw:
                log.info("event.processed", outcome=PROCESSED)
        elif delivery.outcome == DUPLICATE:
            await self._acknowledge(delivery.msg)
            log.warning("event.duplicate_skipped", outcome=DUPLICATE)
        elif delivery.outcome == RETRY and delivery.attempt < self._max_deliver:
            delay = self.retry_delay_for(delivery.attempt)
            await delivery.msg.nak(delay=delay)
            # One traceback per failing message, not one per retry, and none
            # for a batch that failed because the database went away.
            show_traceback = delivery.attempt == 1 and not delivery.batch_wide
            log.warning(
                "event.retry_scheduled",
                outcome=RETRY,
                retry_in_seconds=delay,
                reason=delivery.reason,
                exc_info=delivery.error if show_traceback else None,
            )
        else:
            if delivery.outcome == RETRY:
                delivery.reason = (
                    f"gave up after {delivery.attempt} deliveries: {delivery.reason}"
                )
            await self._dead_letter(delivery)
        delivery.settled = True

    async def _acknowledge(self, msg: Msg) -> None:
        await msg.ack()

    async def _dead_letter(self, delivery: _Delivery) -> None:
        reason = delivery.reason.replace("\r", " ").replace("\n", " ")[:500]
        stream = delivery.msg.metadata.stream
        headers = {
            DLQ_REASON_HEADER: reason,
            DLQ_SUBJECT_HEADER: delivery.subject,
            DLQ_STREAM_HEADER: stream,
            DLQ_SEQUENCE_HEADER: str(delivery.sequence),
            DLQ_CONSUMER_HEADER: self.durable,
            DLQ_ATTEMPTS_HEADER: str(delivery.attempt),
        }
        for name in (CORRELATION_ID_HEADER, "event_id"):
            if name in delivery.headers:
                headers[name] = delivery.headers[name]
        subject = f"{DEAD_LETTER_PREFIX}.{self.service}.{delivery.subject}"
        assert self._bus is not None, "register() the consumer first"
        try:
            await publish_message(
                self._bus,
                subject,
                delivery.msg.data,
                msg_id=f"dlq:{self.durable}:{stream}:{delivery.sequence}",
                headers=headers,
            )
        except Exception as error:
            log.error(
                "event.dead_letter_failed",
                outcome=delivery.outcome,
                reason=reason,
                error=describe_error(error),
                stream_sequence=delivery.sequence,
            )
            if delivery.attempt < self._max_deliver:
                await delivery.msg.nak(delay=self.retry_delay_for(delivery.attempt))
            return
        await delivery.msg.term()
        log.error(
            "event.dead_lettered",
            outcome=DEAD_LETTER,
            reason=reason,
            dead_letter_subject=subject,
            exc_info=delivery.error,
        )

    async def _keep_in_progress(self, deliveries: list[_Delivery]) -> None:
        # Cap the extension: a batch stuck for ten ack waits is given back
        # to JetStream rather than held for ever.
        interval = max(self._ack_wait / 3, 0.2)
        deadline = time.monotonic() + 10 * self._ack_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            for delivery in deliveries:
                if not delivery.settled:
                    try:
                        await delivery.msg.in_progress()
                    except Exception:
                        return

    @contextmanager
    def _bound(self, delivery: _Delivery) -> Iterator[None]:
        # Events recorded by the handler inherit the correlation id, or the
        # consumed event's id when its chain started without a request.
        correlation_id = (
            delivery.headers.get(CORRELATION_ID_HEADER) or delivery.event_id
        )
        with structlog.contextvars.bound_contextvars(
            consumer=self.durable,
            event_id=delivery.event_id,
            subject=delivery.subject,
            correlation_id=correlation_id,
            attempt=delivery.attempt,
        ):
            yield


def consume(
    broker: NatsBroker,
    *,
    service: str,
    subjects: str | Sequence[str],
    handler: EventHandler,
    sessions: async_sessionmaker[AsyncSession],
    processed: Table | None = None,
    **options: Any,
) -> EventConsumer:
    """Handle every event on `subjects` once per `service`, in its transaction.

    `handler(session, envelope)` runs inside the batch's transaction after the
    duplicate check; it adds and flushes, and raises `PermanentEventError`
    for an event that can never succeed. `processed` is the service's
    processed-events table (default: the standard one). `options` tune the
    consumer: `batch_size`, `max_wait`, `ack_wait`, `max_deliver`,
    `retry_delay`, `max_retry_delay`, `stream`, `durable`, `deliver_policy`.
    Call before `start_bus`.
    """
    consumer = EventConsumer(
        service=service,
        subjects=subjects,
        handler=handler,
        sessions=sessions,
        processed=processed,
        **options,
    )
    consumer.register(broker)
    return consumer


def consume_raw(
    broker: NatsBroker,
    *,
    service: str,
    subjects: str | Sequence[str],
    handler: RawHandler,
    sessions: async_sessionmaker[AsyncSession],
    **options: Any,
) -> EventConsumer:
    """Like `consume`, for messages that are plain JSON rather than envelopes.

    `handler(session, messages)` gets a batch of `RawMessage`s (payloads that
    are not JSON are dead-lettered before it is called) and must be
    idempotent itself, for example with `mark_processed`. It calls
    `message.reject(reason)` for an item that can never succeed.
    """
    consumer = EventConsumer(
        service=service,
        subjects=subjects,
        handler=handler,
        sessions=sessions,
        raw=True,
        **options,
    )
    consumer.register(broker)
    return consumer
