"""The outbox and its relay against real PostgreSQL and real JetStream.

Each test gets a fresh database and a stream of its own (`T…` on `t….>`),
so the portal's real streams and other tests never see these events. A core
NATS subscription on the test's subjects counts every publish, including the
ones JetStream would drop as duplicates, so "published once" is checked at
the source and not only in the stream.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats
import pytest
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_common.bus import ensure_streams, make_broker
from portal_common.db import make_engine, make_sessionmaker, transaction
from portal_common.events import (
    CORRELATION_ID_HEADER,
    MSG_ID_HEADER,
    Envelope,
    outbox_table,
    processed_events_table,
    record_event,
)
from portal_common.outbox import OutboxRelay


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
    outbox: Table

    async def outbox_rows(self) -> list:
        async with self.sessions() as session:
            result = await session.execute(
                select(self.outbox).order_by(self.outbox.c.id)
            )
            return list(result.all())


@dataclass
class Topic:
    prefix: str
    stream: str
    received: list[Msg]

    def subject(self, verb: str) -> str:
        return f"{self.prefix}.{verb}"


@pytest.fixture
async def database(infra) -> AsyncIterator[Database]:
    engine = make_engine(await infra.create_database("outbox"), pool_size=4)
    metadata = MetaData()
    outbox = outbox_table(metadata)
    processed_events_table(metadata)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield Database(make_sessionmaker(engine), outbox)
    await engine.dispose()


@pytest.fixture(scope="module")
async def nats_client(infra) -> AsyncIterator[Client]:
    client = await nats.connect(
        infra.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    yield client
    await client.close()


@pytest.fixture
def js(nats_client: Client) -> JetStreamContext:
    return nats_client.jetstream()


@pytest.fixture
async def topic(nats_client: Client, js: JetStreamContext) -> AsyncIterator[Topic]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    stream = prefix.upper()
    config = StreamConfig(
        name=stream,
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=300,
    )
    await ensure_streams(js, [config])
    received: list[Msg] = []

    async def collect(msg: Msg) -> None:
        received.append(msg)

    subscription = await nats_client.subscribe(f"{prefix}.>", cb=collect)
    yield Topic(prefix, stream, received)
    await subscription.unsubscribe()
    await js.delete_stream(stream)


@pytest.fixture
async def broker(infra):
    bus = make_broker(infra.nats_url, name="outbox-test", reconnect_time_wait=0.2)
    await bus.connect()
    yield bus
    await bus.stop()


async def stored_messages(js: JetStreamContext, stream: str) -> list:
    count = (await js.stream_info(stream)).state.messages
    return [await js.get_msg(stream, seq) for seq in range(1, count + 1)]


async def test_rolled_back_event_is_never_published_and_committed_one_is_published_once(
    database: Database, js: JetStreamContext, topic: Topic, broker
) -> None:
    # A long poll interval: only the after-commit wake-up can publish in time.
    relay = OutboxRelay(
        database.sessions, broker, outbox=database.outbox, poll_interval=30
    )
    relay.start()

    async with database.sessions() as session:
        await record_event(
            session,
            topic.subject("abandoned"),
            {"n": 1},
            source="test",
            outbox=database.outbox,
        )
        await session.rollback()
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(request_id="req-42"):
        async with transaction(database.sessions) as session:
            envelope = await record_event(
                session,
                topic.subject("created"),
                {"ticket_id": uuid.UUID(int=7), "n": 2},
                source="support",
                outbox=database.outbox,
            )
    await wait_until(lambda: _count_at_least(topic.received, 1), timeout=5)
    latency = time.monotonic() - started
    await asyncio.sleep(0.5)
    await relay.stop()

    assert latency < 2.0
    assert len(topic.received) == 1
    stored = await stored_messages(js, topic.stream)
    assert len(stored) == 1
    message = stored[0]
    assert message.subject == topic.subject("created")
    assert message.headers[MSG_ID_HEADER] == envelope.event_id
    assert message.headers[CORRELATION_ID_HEADER] == "req-42"
    body = json.loads(message.data)
    assert body == envelope.to_dict()
    assert body["data"] == {"ticket_id": str(uuid.UUID(int=7)), "n": 2}
    assert body["occurred_at"].endswith("Z")
    assert Envelope.from_dict(body).event_id == envelope.event_id
    rows = await database.outbox_rows()
    assert [str(row.event_id) for row in rows] == [envelope.event_id]
    assert rows[0].published_at is not None


async def _count_at_least(items: list, count: int) -> bool:
    return len(items) >= count


async def test_event_written_while_nats_is_down_is_published_once_it_returns(
    infra, database: Database, js: JetStreamContext, topic: Topic, broker
) -> None:
    relay = OutboxRelay(
        database.sessions,
        broker,
        outbox=database.outbox,
        poll_interval=0.2,
        max_backoff=0.5,
    )
    relay.start()
    infra.nats.stop()
    try:
        async with transaction(database.sessions) as session:
            envelope = await record_event(
                session,
                topic.subject("updated"),
                {"n": 1},
                source="test",
                outbox=database.outbox,
            )
        await asyncio.sleep(1.0)
        rows_during_outage = await database.outbox_rows()
    finally:
        infra.nats.start()

    async def published() -> bool:
        return all(row.published_at is not None for row in await database.outbox_rows())

    await wait_until(published, timeout=15)
    await asyncio.sleep(0.3)
    await relay.stop()

    assert [row.published_at for row in rows_during_outage] == [None]
    stored = await stored_messages(js, topic.stream)
    assert [message.headers[MSG_ID_HEADER] for message in stored] == [envelope.event_id]
    assert json.loads(stored[0].data)["id"] == envelope.event_id


async def test_two_relays_on_one_outbox_publish_each_row_once(
    database: Database, js: JetStreamContext, topic: Topic, infra
) -> None:
    recorded: list[str] = []
    for batch in range(8):
        async with transaction(database.sessions) as session:
            for n in range(5):
                envelope = await record_event(
                    session,
                    topic.subject("created"),
                    {"batch": batch, "n": n},
                    source="test",
                    outbox=database.outbox,
                )
                recorded.append(envelope.event_id)
    brokers = [make_broker(infra.nats_url, name=f"replica-{i}") for i in range(2)]
    for bus in brokers:
        await bus.connect()
    relays = [
        OutboxRelay(database.sessions, bus, outbox=database.outbox, batch_size=3)
        for bus in brokers
    ]

    for relay in relays:
        relay.start()
    await wait_until(lambda: _count_at_least(topic.received, len(recorded)), timeout=10)
    await asyncio.sleep(0.5)
    for relay in relays:
        await relay.stop()
    for bus in brokers:
        await bus.stop()

    published_ids = [json.loads(msg.data)["id"] for msg in topic.received]
    assert sorted(published_ids) == sorted(recorded)
    assert len(published_ids) == len(set(published_ids)) == 40
    assert (await js.stream_info(topic.stream)).state.messages == 40
    rows = await database.outbox_rows()
    assert all(row.published_at is not None for row in rows)


async def test_a_subject_without_stream_is_set_aside_without_blocking_the_rest(
    database: Database, js: JetStreamContext, topic: Topic, broker
) -> None:
    relay = OutboxRelay(
        database.sessions, broker, outbox=database.outbox, poll_interval=0.2
    )
    async with transaction(database.sessions) as session:
        stray = await record_event(
            session, "nowhere.created", {"n": 1}, source="test", outbox=database.outbox
        )
        kept = await record_event(
            session,
            topic.subject("created"),
            {"n": 2},
            source="test",
            outbox=database.outbox,
        )

    relay.start()
    await wait_until(lambda: _count_at_least(topic.received, 1), timeout=5)

    # The subscriber can see the message before the relay has committed
    # what it did with the batch: wait for that record, not for the delivery.
    async def both_handled() -> bool:
        rows = {str(row.event_id): row for row in await database.outbox_rows()}
        return rows[kept.event_id].published_at is not None and rows[stray.event_id].attempts >= 1

    await wait_until(both_handled, timeout=5)
    await relay.stop()

    rows = {str(row.event_id): row for row in await database.outbox_rows()}
    assert rows[kept.event_id].published_at is not None
    assert rows[stray.event_id].published_at is None
    assert rows[stray.event_id].attempts == 1
    assert rows[stray.event_id].last_error == "no stream stores this subject"
    assert rows[stray.event_id].available_at > rows[stray.event_id].created_at


async def test_concurrent_start_ups_ensure_the_streams_without_failing(
    js: JetStreamContext,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = StreamConfig(
        name=prefix.upper(), subjects=[f"{prefix}.>"], storage=StorageType.FILE
    )
    changed = StreamConfig(
        name=prefix.upper(),
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=120,
    )

    await asyncio.gather(*(ensure_streams(js, [config]) for _ in range(5)))
    await asyncio.gather(*(ensure_streams(js, [changed]) for _ in range(3)))
    await asyncio.gather(*(ensure_streams(js) for _ in range(3)))

    info = await js.stream_info(prefix.upper())
    assert info.config.duplicate_window == 120
    await js.delete_stream(prefix.upper())
    events = await js.stream_info("PORTAL_EVENTS")
    assert "client.>" in events.config.subjects
    assert events.config.duplicate_window == 300
    assert (await js.stream_info("PORTAL_DLQ")).config.subjects == ["dlq.>"]
