"""The event envelope, the portal's streams and the tables of reliable events.

Every event the portal publishes is a JSON envelope (CONTRACT.md §5):

    {"id": "<uuid4>", "type": "ticket.created", "occurred_at": "…Z",
     "source": "support", "version": 1, "data": {…}}

published on the subject equal to its type, with the id also sent as the
`Nats-Msg-Id` header (JetStream then stores a re-published event once within
the stream's de-duplication window) and the request that caused it as the
`correlation_id` header.

How an event leaves a service (the transactional outbox):

1. Inside the request's transaction, `record_event` inserts the envelope into
   the service's `outbox` table. It adds and flushes; the edge commits. If the
   transaction rolls back, the event never existed.
2. After the commit, a hook wakes the in-process `OutboxRelay`
   (`portal_common.outbox`), which publishes the row and marks it published.

So a 2xx answer means the event is durably in the service's own database and
will reach JetStream as soon as NATS is reachable. What this does not give:
exactly-once publication forever. A row published whose `published_at`
update is lost is published again; JetStream drops the copy within its
de-duplication window (`DUPLICATE_WINDOW_SECONDS`), and beyond it consumers
drop it by event id (`processed_events_table`). Order is not guaranteed
either: several relays, retries and redeliveries can reorder events, so a
handler of `*.updated` events compares `occurred_at` or carries full state.

Both tables are declared by each service on its own `MetaData` through
`outbox_table` and `processed_events_table`, so they travel with the
service's Alembic history.
"""

import dataclasses
import datetime as dt
import decimal
import enum
import json
import re
import uuid
from typing import Any

import structlog
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    event,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

ENVELOPE_VERSION = 1

EVENTS_STREAM = "PORTAL_EVENTS"
DEAD_LETTER_STREAM = "PORTAL_DLQ"
DEAD_LETTER_PREFIX = "dlq"
EVENT_SUBJECTS = (
    "client.>",
    "workflow.>",
    "invoice.>",
    "ticket.>",
    "user.>",
    "token.>",
    "n8n.>",
    "health.>",
)
# Long enough to cover a relay retrying after a lost `published_at` update or
# a short NATS outage; consumers deduplicate anything older.
DUPLICATE_WINDOW_SECONDS = 300
EVENTS_MAX_AGE_SECONDS = 30 * 24 * 3600
DEAD_LETTERS_MAX_AGE_SECONDS = 90 * 24 * 3600

MSG_ID_HEADER = "Nats-Msg-Id"
EVENT_ID_HEADER = "event_id"
CORRELATION_ID_HEADER = "correlation_id"

OUTBOX_TABLE = "outbox"
PROCESSED_EVENTS_TABLE = "processed_events"

_EVENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")

log = structlog.get_logger("events")


class PermanentEventError(Exception):
    """A message that can never succeed: it goes to the dead-letter subject.

    Raise it from a consumer handler for an invalid payload or a reference
    that will never resolve. The message is not retried; its reason (the
    exception's message, so keep personal data and secrets out of it) travels
    with the dead letter. Any other exception counts as a passing failure and
    the message is redelivered with backoff.
    """


class MalformedEvent(PermanentEventError):
    """The bytes on the bus are not a valid event envelope."""


def portal_streams(*, replicas: int = 1) -> list[StreamConfig]:
    """The portal's JetStream streams: its events and their dead letters.

    `replicas` is 1 on a single server and 3 on the production cluster.
    """
    events = StreamConfig(
        name=EVENTS_STREAM,
        description="Events of the Monoliet client portal (CONTRACT.md section 5)",
        subjects=list(EVENT_SUBJECTS),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=EVENTS_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )
    dead_letters = StreamConfig(
        name=DEAD_LETTER_STREAM,
        description="Messages a portal consumer gave up on, with the reason",
        subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=DEAD_LETTERS_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )
    return [events, dead_letters]


def format_timestamp(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, as the contract writes it."""
    utc = moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return parsed.astimezone(dt.UTC)


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_data(value: Any) -> Any:
    """`value` as plain JSON types: models, UUIDs, Decimals (as strings), dates."""
    return json.loads(json.dumps(value, default=_json_default))


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """One event as it travels on the bus; `to_dict` is its JSON form."""

    event_id: str
    event_type: str
    occurred_at: dt.datetime
    source: str
    data: dict[str, Any]
    version: int = ENVELOPE_VERSION
    # Travels in the `correlation_id` header, not in the JSON body.
    correlation_id: str | None = None

    @classmethod
    def new(
        cls,
        event_type: str,
        data: Any,
        *,
        source: str,
        correlation_id: str | None = None,
        version: int = ENVELOPE_VERSION,
    ) -> "Envelope":
        if not _EVENT_TYPE.match(event_type):
            raise ValueError(f"invalid event type {event_type!r}: want entity.verb")
        payload = to_json_data(data)
        if not isinstance(payload, dict):
            raise ValueError("event data must be a JSON object")
        return cls(
            event_id=str(uuid.uuid4()),
            event_type=event_type,
            occurred_at=dt.datetime.now(dt.UTC),
            source=source,
            data=payload,
            version=version,
            correlation_id=correlation_id,
        )

    @property
    def subject(self) -> str:
        return self.event_type

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.event_type,
            "occurred_at": format_timestamp(self.occurred_at),
            "source": self.source,
            "version": self.version,
            "data": self.data,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    def headers(self) -> dict[str, str]:
        headers = {MSG_ID_HEADER: self.event_id, EVENT_ID_HEADER: self.event_id}
        if self.correlation_id:
            headers[CORRELATION_ID_HEADER] = self.correlation_id
        return headers

    @classmethod
    def from_dict(cls, body: Any, *, correlation_id: str | None = None) -> "Envelope":
        """Validate a decoded envelope; raises `MalformedEvent` with the reason."""
        if not isinstance(body, dict):
            raise MalformedEvent("envelope is not a JSON object")
        for name, kind in (("id", str), ("type", str), ("source", str)):
            if not isinstance(body.get(name), kind) or not body[name]:
                raise MalformedEvent(f"envelope field {name!r} missing or not a string")
        if len(body["id"]) > 200:
            raise MalformedEvent("envelope id longer than 200 characters")
        if not isinstance(body.get("data"), dict):
            raise MalformedEvent("envelope field 'data' missing or not an object")
        version = body.get("version", ENVELOPE_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedEvent("envelope field 'version' is not an integer")
        try:
            occurred_at = parse_timestamp(body["occurred_at"])
        except (KeyError, TypeError, ValueError):
            raise MalformedEvent(
                "envelope field 'occurred_at' missing or invalid"
            ) from None
        return cls(
            event_id=body["id"],
            event_type=body["type"],
            occurred_at=occurred_at,
            source=body["source"],
            data=body["data"],
            version=version,
            correlation_id=correlation_id,
        )

    @classmethod
    def decode(cls, raw: bytes, *, correlation_id: str | None = None) -> "Envelope":
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise MalformedEvent("payload is not JSON") from None
        return cls.from_dict(body, correlation_id=correlation_id)


def outbox_table(metadata: MetaData, name: str = OUTBOX_TABLE) -> Table:
    """The outbox: events written with the change they announce, not yet sent.

    `id` orders the rows; `available_at` delays a row that JetStream refused
    (see `portal_common.outbox`); published rows are pruned after a while.
    """
    return Table(
        name,
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("correlation_id", String(128), nullable=True),
        Column(
            "created_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=func.now(),
        ),
        Column(
            "available_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=func.now(),
        ),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", String(500), nullable=True),
        Index(
            f"ix_{name}_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
    )


def processed_events_table(
    metadata: MetaData, name: str = PROCESSED_EVENTS_TABLE
) -> Table:
    """Which consumer has applied which event (or other dedupe key), and when."""
    return Table(
        name,
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", String(255), primary_key=True),
        Column(
            "processed_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=func.now(),
        ),
    )


# The standard tables, for callers that do not pass their own: a service whose
# tables have the standard names needs no reference to its Table objects.
_DEFAULTS = MetaData()
DEFAULT_OUTBOX = outbox_table(_DEFAULTS)
DEFAULT_PROCESSED_EVENTS = processed_events_table(_DEFAULTS)

# Relays running in this process; `record_event` wakes them after a commit.
_relay_wakeups: set[Any] = set()
_WAKE_HOOK = "portal_outbox_wake_hook"


def register_relay_wakeup(wakeup: Any) -> None:
    """Have `wakeup.set()` called after every commit that recorded an event."""
    _relay_wakeups.add(wakeup)


def unregister_relay_wakeup(wakeup: Any) -> None:
    _relay_wakeups.discard(wakeup)


def _wake_relays(_session: Any) -> None:
    for wakeup in list(_relay_wakeups):
        wakeup.set()


def current_correlation_id() -> str | None:
    """The id of what caused the current work: a consumed event's or the request's."""
    bound = structlog.contextvars.get_contextvars()
    value = bound.get("correlation_id") or bound.get("request_id")
    return str(value) if value else None


async def record_event(
    session: AsyncSession,
    event_type: str,
    data: Any,
    *,
    source: str,
    outbox: Table | None = None,
) -> Envelope:
    """Write an event to the outbox in the caller's transaction; return its envelope.

    `data` is a mapping or a Pydantic model; UUIDs, Decimals and datetimes
    become strings. The row is only inserted (never committed here): the event
    exists if and only if the caller's transaction commits, and the relay of
    this process is woken right after that commit.

    Raises `ValueError` for an event type that is not `entity.verb` or data
    that is not a JSON object.
    """
    table = DEFAULT_OUTBOX if outbox is None else outbox
    envelope = Envelope.new(
        event_type, data, source=source, correlation_id=current_correlation_id()
    )

    await session.execute(
        insert(table).values(
            event_id=uuid.UUID(envelope.event_id),
            subject=envelope.subject,
            envelope=envelope.to_dict(),
            correlation_id=envelope.correlation_id,
        )
    )

    if not session.info.get(_WAKE_HOOK):
        event.listen(session.sync_session, "after_commit", _wake_relays)
        session.info[_WAKE_HOOK] = True
    log.debug("event.recorded", event_id=envelope.event_id, subject=envelope.subject)
    return envelope
