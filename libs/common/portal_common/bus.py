"""The connection to NATS: the broker, the streams, publishing, broadcasts.

`make_broker` builds a FastStream `NatsBroker` that never gives up
reconnecting (nats-py's default stops after about two minutes, which would
leave a relay unable to publish until the process restarts). `start_bus`
connects it, creates or updates the portal's streams and the durable
consumers registered with `portal_common.consumer`, then starts the
subscribers and consumers; `stop_bus` lets each consumer finish its batch
and closes the connection. Every replica of every service runs `start_bus`
at start-up; creating a stream or consumer that exists with the same
configuration is a no-op in JetStream, and a changed configuration is
applied as an update, so concurrent start-ups do not fail.

`publish_message` is the one way the portal publishes to JetStream: it
refuses at once while the connection is down (the caller keeps its data and
retries), sets `Nats-Msg-Id` and waits for the stream's acknowledgement, so a
return means the message is stored.

`subscribe_broadcast` is for the gateway: a plain core-NATS subscription,
so every replica sees every `token.revoked` and `user.updated` (JetStream
publishes reach core subscribers too). Core NATS delivers at most once and
only while subscribed: a replica that was disconnected may have missed a
revocation, so it should drop its cache when the connection comes back
(`make_broker(on_reconnect=…)`). The server also takes a few milliseconds
after start-up before a new subscription receives anything, which is
harmless for a replica that starts with an empty cache.
"""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import structlog
from faststream import Context
from faststream.nats import NatsBroker
from faststream.nats.message import NatsMessage
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, PubAck, StreamConfig
from nats.js.errors import BadRequestError, ServiceUnavailableError

from portal_common.events import (
    CORRELATION_ID_HEADER,
    MSG_ID_HEADER,
    Envelope,
    MalformedEvent,
    portal_streams,
)

log = structlog.get_logger("bus")

Bus = NatsBroker | JetStreamContext

# JetStream's answer to creating a stream that exists with another config.
STREAM_NAME_IN_USE = 10058

# Durable consumers registered per broker by `portal_common.consumer`;
# `start_bus` creates or updates and then starts them, `stop_bus` stops them.
_registered_consumers: weakref.WeakKeyDictionary[
    NatsBroker, list["ManagedConsumer"]
] = weakref.WeakKeyDictionary()


class ManagedConsumer(Protocol):
    stream: str

    def consumer_config(self) -> ConsumerConfig: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class NatsUnavailable(Exception):
    """NATS cannot be reached right now; retry later."""


def make_broker(
    nats_url: str,
    *,
    name: str,
    reconnect_time_wait: float = 1.0,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    **options: Any,
) -> NatsBroker:
    """A NatsBroker for service `name` that reconnects forever.

    `on_reconnect` is awaited each time the connection comes back. Extra
    `options` go to `NatsBroker` unchanged.
    """
    return NatsBroker(
        nats_url,
        name=f"portal-{name}",
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=reconnect_time_wait,
        reconnected_cb=on_reconnect,
        # FastStream's per-message access log would double ours.
        log_level=logging.DEBUG,
        **options,
    )


def jetstream_of(bus: Bus) -> tuple[JetStreamContext, Client]:
    """The JetStream context and connection behind a broker or context.

    Raises `NatsUnavailable` when the broker has not connected yet.
    """
    if isinstance(bus, JetStreamContext):
        return bus, bus._nc
    state = bus.config.connection_state
    if not state:
        raise NatsUnavailable("the broker is not connected")
    return state.stream, state.connection


def is_connected(bus: Bus) -> bool:
    try:
        _, connection = jetstream_of(bus)
    except NatsUnavailable:
        return False
    return connection.is_connected


async def publish_message(
    bus: Bus,
    subject: str,
    payload: bytes,
    *,
    msg_id: str,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> PubAck:
    """Publish to JetStream and wait until the stream has stored the message.

    `msg_id` becomes `Nats-Msg-Id`, so a retry within the stream's
    de-duplication window is stored once (`PubAck.duplicate` is then true).
    Raises `NatsUnavailable` without trying while disconnected, or the
    nats-py error (timeout, no stream for the subject, …) when the publish
    fails.
    """
    js, connection = jetstream_of(bus)
    if not connection.is_connected:
        raise NatsUnavailable("the NATS connection is down")
    all_headers = {**(headers or {}), MSG_ID_HEADER: msg_id}
    return await js.publish(subject, payload, timeout=timeout, headers=all_headers)


def register_consumer(broker: NatsBroker, consumer: ManagedConsumer) -> None:
    """Have `start_bus` ensure and start `consumer`, and `stop_bus` stop it."""
    _registered_consumers.setdefault(broker, []).append(consumer)


async def _with_jetstream_retry(operation: Callable[[], Awaitable[Any]]) -> Any:
    # Right after a server (re)start JetStream may answer 503 or not at all
    # for a few seconds while it recovers its streams.
    for attempt in range(20):
        try:
            return await operation()
        except (ServiceUnavailableError, NatsTimeoutError, NoRespondersError):
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def ensure_streams(
    bus: Bus,
    streams: Iterable[StreamConfig] | None = None,
    *,
    replicas: int = 1,
) -> None:
    """Create the streams, or update them to this configuration; idempotent.

    `streams` defaults to `portal_streams(replicas=replicas)`. Raises the
    JetStream error when a stream cannot be brought to its configuration
    (for example its subjects overlap another stream's).
    """
    js, _ = jetstream_of(bus)
    for config in streams if streams is not None else portal_streams(replicas=replicas):

        async def create_or_update(config: StreamConfig = config) -> None:
            try:
                await js.add_stream(config=config)
            except BadRequestError as error:
                if error.err_code != STREAM_NAME_IN_USE:
                    raise
                await js.update_stream(config=config)
                log.info("bus.stream_updated", stream=config.name)

        await _with_jetstream_retry(create_or_update)


async def ensure_consumers(broker: NatsBroker) -> None:
    """Create or update every durable consumer registered on `broker`."""
    js, _ = jetstream_of(broker)
    for consumer in _registered_consumers.get(broker, []):
        config = consumer.consumer_config()

        async def create_or_update(
            stream: str = consumer.stream, config: ConsumerConfig = config
        ) -> None:
            await js.add_consumer(stream, config=config)

        await _with_jetstream_retry(create_or_update)
        log.debug(
            "bus.consumer_ensured", stream=consumer.stream, consumer=config.durable_name
        )


async def start_bus(
    broker: NatsBroker,
    *,
    streams: Iterable[StreamConfig] | None = None,
    replicas: int = 1,
) -> None:
    """Connect, ensure streams and registered consumers, start them all.

    Waits for NATS if it is not up yet (the broker reconnects forever). Call
    it after registering consumers and broadcast subscriptions. Raises the
    JetStream error when a stream or consumer cannot be configured.
    """
    await broker.connect()
    await ensure_streams(broker, streams, replicas=replicas)
    await ensure_consumers(broker)
    await broker.start()
    consumers = _registered_consumers.get(broker, [])
    for consumer in consumers:
        await consumer.start()
    # Make sure the server has the subscriptions before we report ready, so
    # a broadcast published right after start-up is not missed.
    _, connection = jetstream_of(broker)
    await connection.flush()
    log.info("bus.started", consumers=len(consumers))


async def stop_bus(broker: NatsBroker) -> None:
    """Let each consumer finish its current batch, then close the connection."""
    for consumer in _registered_consumers.get(broker, []):
        await consumer.stop()
    await broker.stop()


async def _keep_bytes(message: NatsMessage) -> Any:
    return message.body


def subscribe_broadcast(
    broker: NatsBroker,
    subjects: str | Sequence[str],
    handler: Callable[[Envelope], Awaitable[None]],
) -> list[Any]:
    """Call `handler(envelope)` for every event on `subjects`, on every replica.

    A plain core-NATS subscription without a queue group: at most once, no
    acknowledgement, nothing replayed after a disconnection. A malformed
    message is logged and skipped; an exception in `handler` is logged.
    Register before `start_bus`.
    """
    names = [subjects] if isinstance(subjects, str) else list(subjects)
    subscribers = []
    for subject in names:

        async def on_message(
            body: Any,
            message: Any = Context("message"),  # noqa: B008 (FastStream's injection)
        ) -> None:
            correlation_id = (message.headers or {}).get(CORRELATION_ID_HEADER)
            try:
                envelope = Envelope.decode(body, correlation_id=correlation_id)
            except MalformedEvent as error:
                log.warning(
                    "broadcast.malformed",
                    subject=message.raw_message.subject,
                    reason=str(error),
                )
                return
            with structlog.contextvars.bound_contextvars(
                event_id=envelope.event_id,
                subject=envelope.subject,
                correlation_id=correlation_id,
            ):
                try:
                    await handler(envelope)
                except Exception:
                    log.exception("broadcast.handler_failed")

        subscriber = broker.subscriber(subject, decoder=_keep_bytes, no_reply=True)
        subscriber(on_message)
        subscribers.append(subscriber)
    return subscribers


def describe_error(error: BaseException, *, limit: int = 300) -> str:
    """A one-line reason for logs and dead letters, without SQL parameters."""
    original = getattr(error, "orig", None)
    shown = original if isinstance(original, BaseException) else error
    text = f"{type(shown).__name__}: {shown}".replace("\r", " ").replace("\n", " ")
    return text[:limit]


__all__ = [
    "Bus",
    "NatsUnavailable",
    "describe_error",
    "ensure_consumers",
    "ensure_streams",
    "is_connected",
    "jetstream_of",
    "make_broker",
    "publish_message",
    "register_consumer",
    "start_bus",
    "stop_bus",
    "subscribe_broadcast",
]
