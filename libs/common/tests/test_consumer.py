"""The durable idempotent consumer against real PostgreSQL and real JetStream.

Each test gets a fresh database, a stream of its own (`T…` on `t….>`) and a
service name of its own, so its durable consumers and dead letters
(`dlq.<service>.…` in the real `PORTAL_DLQ`) are its alone. Handlers append a
row to `applied` per call, so applying an event twice shows as two rows.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_common.bus import (
    ensure_streams,
    make_broker,
    publish_message,
    start_bus,
    stop_bus,
    subscribe_broadcast,
)
from portal_common.consumer import (
    DLQ_ATTEMPTS_HEADER,
    DLQ_REASON_HEADER,
    DLQ_SUBJECT_HEADER,
    EventConsumer,
    PermanentEventError,
    RawMessage,
    consume,
    consume_raw,
    mark_processed,
)
from portal_common.db import make_engine, make_sessionmaker
from portal_common.events import DEAD_LETTER_STREAM, Envelope, processed_events_table

FAST = {"ack_wait": 1.0, "max_wait": 1.0, "retry_delay": 0.2}


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class Database:
    sessions: async_sessionmaker[AsyncSession]
    applied: Table
    processed: Table

    async def applied_rows(self) -> list[tuple[str, str]]:
        async with self.sessions() as session:
            result = await session.execute(
                select(self.applied.c.event_id, self.applied.c.instance).order_by(
                    self.applied.c.id
                )
            )
            return [tuple(row) for row in result.all()]

    def handler(self, instance: str):
        """A handler that records which instance applied which event."""

        async def apply(session: AsyncSession, envelope: Envelope) -> None:
            await session.execute(
                insert(self.applied).values(
                    event_id=envelope.event_id, instance=instance
                )
            )

        return apply


@dataclass
class Topic:
    prefix: str
    stream: str
    service: str

    def subject(self, verb: str) -> str:
        return f"{self.prefix}.{verb}"

    @property
    def durable(self) -> str:
        return f"{self.service}-{self.prefix}"


@pytest.fixture
async def database(infra) -> AsyncIterator[Database]:
    engine = make_engine(await infra.create_database("consumer"), pool_size=4)
    metadata = MetaData()
    applied = Table(
        "applied",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("event_id", String(255), nullable=False),
        Column("instance", String(50), nullable=False),
    )
    processed = processed_events_table(metadata)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield Database(make_sessionmaker(engine), applied, processed)
    await engine.dispose()


@pytest.fixture(scope="module")
async def nats_client(infra) -> AsyncIterator[Client]:
    client = await nats.connect(infra.nats_url, max_reconnect_attempts=-1)
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


@pytest.fixture
def js(nats_client: Client) -> JetStreamContext:
    return nats_client.jetstream()


@pytest.fixture
async def topic(js: JetStreamContext) -> AsyncIterator[Topic]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StreamConfig(
        name=prefix.upper(),
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=300,
    )
    await ensure_streams(js, [config])
    yield Topic(prefix, prefix.upper(), service=f"svc{uuid.uuid4().hex[:6]}")
    await js.delete_stream(prefix.upper())


@pytest.fixture
async def brokers(infra) -> AsyncIterator[Callable[[], object]]:
    """Brokers standing for separate processes; stopped at the end."""
    started = []

    def new_broker():
        broker = make_broker(
            infra.nats_url, name="consumer-test", reconnect_time_wait=0.2
        )
        started.append(broker)
        return broker

    yield new_broker
    for broker in started:
        await stop_bus(broker)


async def publish_event(js: JetStreamContext, subject: str, data: dict) -> Envelope:
    envelope = Envelope.new(subject, data, source="test")
    await publish_message(
        js,
        subject,
        envelope.encode(),
        msg_id=envelope.event_id,
        headers=envelope.headers(),
    )
    return envelope


async def settled(js: JetStreamContext, topic: Topic, durable: str | None = None):
    """The consumer's state once nothing is pending or awaiting an ack."""
    name = durable or topic.durable
    info = None

    async def everything_acked() -> bool:
        nonlocal info
        info = await js.consumer_info(topic.stream, name)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await wait_until(everything_acked)
    return info


async def dead_letter(js: JetStreamContext, topic: Topic, subject: str):
    return await js.get_last_msg(DEAD_LETTER_STREAM, f"dlq.{topic.service}.{subject}")


class DiesBeforeAck(EventConsumer):
    """A consumer whose process dies right after its commit, before any ack."""

    async def _acknowledge(self, msg) -> None:
        return None


async def test_consumer_killed_between_commit_and_ack_does_not_apply_the_event_twice(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    first = brokers()
    dying = DiesBeforeAck(
        service=topic.service,
        subjects=topic.subject(">"),
        handler=database.handler("first"),
        sessions=database.sessions,
        stream=topic.stream,
        **FAST,
    )
    dying.register(first)
    await start_bus(first, streams=[])
    event = await publish_event(js, topic.subject("created"), {"n": 1})

    async def applied_once() -> bool:
        return len(await database.applied_rows()) == 1

    await wait_until(applied_once)
    await stop_bus(first)
    second = brokers()
    consume(
        second,
        service=topic.service,
        subjects=topic.subject(">"),
        handler=database.handler("second"),
        sessions=database.sessions,
        stream=topic.stream,
        **FAST,
    )
    await start_bus(second, streams=[])
    info = await settled(js, topic)

    assert dying.durable == topic.durable
    # One delivery to the dead instance, one redelivery to the fresh one.
    assert info.delivered.consumer_seq == 2
    assert await database.applied_rows() == [(event.event_id, "first")]


async def test_poison_message_is_dead_lettered_and_the_next_one_is_handled(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.data.get("client") == "unknown":
            raise PermanentEventError("client does not exist")
        await database.handler("one")(session, envelope)

    garbage = b'{"id": "not an envelope"'
    await publish_message(js, topic.subject("garbage"), garbage, msg_id="garbage-1")
    await publish_event(js, topic.subject("orphaned"), {"client": "unknown"})
    good = await publish_event(js, topic.subject("created"), {"client": "known"})
    broker = brokers()
    consume(
        broker,
        service=topic.service,
        subjects=topic.subject(">"),
        handler=handler,
        sessions=database.sessions,
        stream=topic.stream,
        **FAST,
    )

    await start_bus(broker, streams=[])
    info = await settled(js, topic)

    assert await database.applied_rows() == [(good.event_id, "one")]
    assert info.delivered.consumer_seq == 3
    malformed = await dead_letter(js, topic, topic.subject("garbage"))
    assert malformed.data == garbage
    assert (
        malformed.headers[DLQ_REASON_HEADER]
        == "malformed envelope: payload is not JSON"
    )
    assert malformed.headers[DLQ_SUBJECT_HEADER] == topic.subject("garbage")
    refused = await dead_letter(js, topic, topic.subject("orphaned"))
    assert refused.headers[DLQ_REASON_HEADER] == "client does not exist"
    assert Envelope.decode(refused.data).data == {"client": "unknown"}
    async with database.sessions() as session:
        processed = (await session.execute(select(database.processed.c.event_id))).all()
    assert [row.event_id for row in processed] == [good.event_id]


async def test_two_instances_of_one_service_handle_each_event_exactly_once(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    for instance in ("a", "b"):
        broker = brokers()
        consume(
            broker,
            service=topic.service,
            subjects=topic.subject(">"),
            handler=database.handler(instance),
            sessions=database.sessions,
            stream=topic.stream,
            batch_size=5,
            **FAST,
        )
        await start_bus(broker, streams=[])

    published = [
        (await publish_event(js, topic.subject("created"), {"n": n})).event_id
        for n in range(40)
    ]
    await settled(js, topic)
    await asyncio.sleep(0.3)

    rows = await database.applied_rows()
    assert sorted(event_id for event_id, _ in rows) == sorted(published)
    assert len(rows) == 40


async def test_transient_failure_is_redelivered_and_then_handled_once(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    calls: dict[str, int] = {}

    async def flaky(session: AsyncSession, envelope: Envelope) -> None:
        calls[envelope.event_id] = calls.get(envelope.event_id, 0) + 1
        if envelope.data["flaky"] and calls[envelope.event_id] == 1:
            raise ConnectionError("upstream timed out")
        await database.handler("one")(session, envelope)

    first = await publish_event(js, topic.subject("created"), {"flaky": True})
    second = await publish_event(js, topic.subject("created"), {"flaky": False})
    broker = brokers()
    consume(
        broker,
        service=topic.service,
        subjects=topic.subject(">"),
        handler=flaky,
        sessions=database.sessions,
        stream=topic.stream,
        **FAST,
    )

    await start_bus(broker, streams=[])
    info = await settled(js, topic)

    assert calls == {first.event_id: 2, second.event_id: 1}
    assert sorted(await database.applied_rows()) == sorted(
        [(first.event_id, "one"), (second.event_id, "one")]
    )
    assert info.delivered.consumer_seq == 3


async def test_transient_failure_on_the_last_delivery_is_dead_lettered_not_dropped(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    async def always_failing(session: AsyncSession, envelope: Envelope) -> None:
        raise TimeoutError("database statement timed out")

    event = await publish_event(js, topic.subject("created"), {"n": 1})
    broker = brokers()
    consume(
        broker,
        service=topic.service,
        subjects=topic.subject(">"),
        handler=always_failing,
        sessions=database.sessions,
        stream=topic.stream,
        max_deliver=3,
        **{**FAST, "retry_delay": 0.1},
    )

    await start_bus(broker, streams=[])
    await settled(js, topic)

    letter = await dead_letter(js, topic, topic.subject("created"))
    assert Envelope.decode(letter.data).event_id == event.event_id
    assert letter.headers[DLQ_ATTEMPTS_HEADER] == "3"
    assert letter.headers[DLQ_REASON_HEADER] == (
        "gave up after 3 deliveries: TimeoutError: database statement timed out"
    )
    assert await database.applied_rows() == []


async def test_raw_batch_sets_aside_bad_items_and_commits_the_others(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    async def count_executions(
        session: AsyncSession, messages: list[RawMessage]
    ) -> None:
        for message in messages:
            if message.data.get("status") == "bogus":
                message.reject("unknown status")
                continue
            if message.data.get("workflowId") is None:
                raise PermanentEventError("execution without workflowId")
            if await mark_processed(
                session, database.processed, consumer="stats", key=message.data["id"]
            ):
                await session.execute(
                    insert(database.applied).values(
                        event_id=message.data["id"], instance="raw"
                    )
                )

    reports = [
        (b"{not json", "r1"),
        (b'{"id": "5001", "workflowId": "W1", "status": "success"}', "5001:success"),
        (b'{"id": "5002", "workflowId": "W1", "status": "bogus"}', "5002:bogus"),
        (b'{"id": "5003", "workflowId": null, "status": "success"}', "5003:success"),
        (b'{"id": "5001", "workflowId": "W1", "status": "success"}', "5001:resend"),
        (b'{"id": "5004", "workflowId": "W1", "status": "error"}', "5004:error"),
    ]
    for payload, msg_id in reports:
        await publish_message(js, topic.subject("execution"), payload, msg_id=msg_id)
    broker = brokers()
    consume_raw(
        broker,
        service=topic.service,
        subjects=topic.subject("execution"),
        handler=count_executions,
        sessions=database.sessions,
        stream=topic.stream,
        **FAST,
    )

    await start_bus(broker, streams=[])
    info = await settled(js, topic, f"{topic.service}-{topic.prefix}_execution")

    assert await database.applied_rows() == [("5001", "raw"), ("5004", "raw")]
    assert info.delivered.consumer_seq == len(reports)
    dead = await js.stream_info(
        DEAD_LETTER_STREAM, subjects_filter=f"dlq.{topic.service}.>"
    )
    assert dead.state.subjects == {
        f"dlq.{topic.service}.{topic.subject('execution')}": 3
    }
    last = await dead_letter(js, topic, topic.subject("execution"))
    assert last.headers[DLQ_REASON_HEADER] == "execution without workflowId"


async def test_broadcast_reaches_every_replica(
    js: JetStreamContext, topic: Topic, brokers
) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}
    for replica in seen:
        broker = brokers()

        async def drop_cached_identity(
            envelope: Envelope, replica: str = replica
        ) -> None:
            seen[replica].append(envelope.data["token"])

        subscribe_broadcast(broker, topic.subject("revoked"), drop_cached_identity)
        await start_bus(broker, streams=[])
    # The server may take a few milliseconds after start-up before a new
    # subscription receives anything; wait until both are live.
    while not all(seen.values()):
        await publish_event(js, topic.subject("revoked"), {"token": "warm-up"})
        await asyncio.sleep(0.05)

    tokens = ["hash-1", "hash-2", "hash-3"]
    for token in tokens:
        await publish_event(js, topic.subject("revoked"), {"token": token})

    def revoked(replica: str) -> list[str]:
        return [token for token in seen[replica] if token != "warm-up"]

    async def both_saw_all() -> bool:
        return all(len(revoked(replica)) >= 3 for replica in seen)

    await wait_until(both_saw_all, timeout=5)
    await asyncio.sleep(0.2)
    assert revoked("a") == tokens
    assert revoked("b") == tokens


class DatabaseOutage:
    """Sessions on the real database, or on a port where nothing listens."""

    def __init__(self, working: async_sessionmaker[AsyncSession]) -> None:
        self.working = working
        self.broken = make_sessionmaker(
            make_engine("postgresql+asyncpg://portal:x@127.0.0.1:9/none", pool_size=1)
        )
        self.is_down = True

    def __call__(self) -> AsyncSession:
        return (self.broken if self.is_down else self.working)()


async def test_database_outage_leaves_the_whole_batch_for_redelivery(
    database: Database, js: JetStreamContext, topic: Topic, brokers
) -> None:
    sessions = DatabaseOutage(database.sessions)
    published = [
        (await publish_event(js, topic.subject("created"), {"n": n})).event_id
        for n in range(3)
    ]
    broker = brokers()
    consume(
        broker,
        service=topic.service,
        subjects=topic.subject(">"),
        handler=database.handler("one"),
        sessions=sessions,
        stream=topic.stream,
        **{**FAST, "retry_delay": 0.5},
    )

    await start_bus(broker, streams=[])

    async def first_deliveries_failed() -> bool:
        info = await js.consumer_info(topic.stream, topic.durable)
        return info.delivered.consumer_seq == 3 and info.num_ack_pending == 3

    await wait_until(first_deliveries_failed)
    await asyncio.sleep(0.2)
    sessions.is_down = False
    info = await settled(js, topic)

    assert sorted(event_id for event_id, _ in await database.applied_rows()) == sorted(
        published
    )
    assert info.delivered.consumer_seq == 6
    dead = await js.stream_info(
        DEAD_LETTER_STREAM, subjects_filter=f"dlq.{topic.service}.>"
    )
    assert not dead.state.subjects
