"""Counting n8n executions into daily execution records, exactly once.

How it works. n8n (or `POST /api/executions/events/`) publishes raw n8n
execution objects on `n8n.execution`, one object or a list per message
(CONTRACT.md §5). The consumer takes a batch of messages per fetch and
handles the whole batch in one transaction:

1. `parse_execution` checks each item; a malformed one gets a reason and
   its message is dead-lettered, while the other items are still counted.
2. Executions still `running`, `waiting` or `new` are skipped: the same
   execution is reported again when it finishes. Within the batch, the first
   finished report of an execution id is the one kept.
3. The n8n workflow ids are looked up (workflow rows locked in id order). For
   ids nobody has registered, a transaction-scoped advisory lock per n8n id
   is taken and the ids are looked up again: registering a workflow takes the
   same lock, so either the registration is seen here, or it sees the pending
   executions this batch stores.
4. Every execution goes into `n8n_execution` in one
   `INSERT … ON CONFLICT DO NOTHING RETURNING`: the rows that come back are
   executions never seen before, and only those are counted. Another replica
   inserting the same id at the same moment waits for this transaction and
   then skips it. Executions of unknown workflows are stored uncounted
   (pending) and counted by `count_pending_executions` when the workflow is
   registered.
5. The counted executions are summed per (workflow, day) and applied in one
   `INSERT … ON CONFLICT DO UPDATE` over all keys, then per workflow
   (`execution_count`, `last_execution`) in one UPDATE.

So a batch costs a constant number of statements whatever its size, which is
what lets one consumer keep up with a busy n8n instance.

Guarantees: an execution id is counted at most once, and the mark that it was
counted commits with the counts; the message is acknowledged only after that
commit, so a crash loses nothing (JetStream redelivers) and doubles nothing
(the id is already there). Statuses map as the contract says: success → a
success; error, crashed, unknown (and n8n's older `failed`) → an error;
canceled → the total only. The day is the `startedAt` date, else the
`stoppedAt` date, in PORTAL_TIME_ZONE.

Not guaranteed: a later report of the same execution with another outcome
(n8n does not send one) does not change the count; the first finished report
wins. An execution whose workflow was deleted stays counted for that deleted
workflow and is not counted again if the n8n id is registered anew.
"""

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from workflows.models import N8N_ID_LENGTH, n8n_executions, workflows

SUCCESS = "success"
ERROR = "error"
CANCELED = "canceled"

# https://docs.n8n.io/api/api-reference/ (ExecutionStatus); `failed` is the
# name older n8n versions stored for an error.
OUTCOMES = {
    "success": SUCCESS,
    "error": ERROR,
    "crashed": ERROR,
    "unknown": ERROR,
    "failed": ERROR,
    "canceled": CANCELED,
}
UNFINISHED = frozenset({"running", "waiting", "new"})


class InvalidExecution(ValueError):
    """An item that can never be counted; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Execution:
    """One n8n execution report, checked."""

    execution_id: str
    n8n_workflow_id: str
    status: str
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    execution_date: dt.date | None

    @property
    def outcome(self) -> str | None:
        """success, error or canceled; None while the execution is unfinished."""
        return OUTCOMES.get(self.status)

    @property
    def message_id(self) -> str:
        """`Nats-Msg-Id` for publishing this report: one per execution and status."""
        return f"{self.execution_id}:{self.status}"


def parse_execution(item: Any, zone: ZoneInfo) -> Execution:
    """Check one n8n execution object; raises InvalidExecution with the reason.

    Fields other than id, workflowId, status, finished, waitTill, startedAt
    and stoppedAt are ignored, and `mode` is not checked against a list.
    """
    if not isinstance(item, dict):
        raise InvalidExecution("not a JSON object")
    execution_id = _identifier(item, "id")
    n8n_workflow_id = _identifier(item, "workflowId")
    status = _status(item)
    started_at = _timestamp(item, "startedAt")
    stopped_at = _timestamp(item, "stoppedAt")

    execution_date = None
    if status not in UNFINISHED:
        moment = started_at or stopped_at
        if moment is None:
            raise InvalidExecution(
                "a finished execution has neither startedAt nor stoppedAt"
            )
        execution_date = moment.astimezone(zone).date()
    return Execution(
        execution_id=execution_id,
        n8n_workflow_id=n8n_workflow_id,
        status=status,
        started_at=started_at,
        stopped_at=stopped_at,
        execution_date=execution_date,
    )


def _identifier(item: dict[str, Any], name: str) -> str:
    """n8n ids are strings; older servers and scripts send numbers (123 == "123")."""
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidExecution(f"{name} missing or neither a string nor an integer")
    text_value = str(value)
    if not text_value.strip():
        raise InvalidExecution(f"{name} is blank")
    if len(text_value) > N8N_ID_LENGTH:
        raise InvalidExecution(f"{name} longer than {N8N_ID_LENGTH} characters")
    if not _storable(text_value):
        raise InvalidExecution(f"{name} contains characters that cannot be stored")
    return text_value


def _storable(value: str) -> bool:
    """PostgreSQL text holds neither NUL nor lone surrogates (JSON allows both)."""
    return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def _status(item: dict[str, Any]) -> str:
    status = item.get("status")
    if status is None:
        return _legacy_status(item)
    if not isinstance(status, str):
        raise InvalidExecution("status is not a string")
    if status not in OUTCOMES and status not in UNFINISHED:
        raise InvalidExecution(f"unknown status {status[:40]!r}")
    return status


def _legacy_status(item: dict[str, Any]) -> str:
    # Executions stored before n8n had `status` (n8n 0.x) carry only these
    # fields; n8n's own migration derived the status the same way
    # (packages/cli/src/databases/migrations/common/*-AddStatusToExecutions).
    if item.get("waitTill"):
        return "waiting"
    if item.get("finished") is True:
        return "success"
    if item.get("stoppedAt"):
        return "error"
    return "running"


def _timestamp(item: dict[str, Any], name: str) -> dt.datetime | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidExecution(f"{name} is not an ISO 8601 timestamp")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidExecution(f"{name} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidExecution(f"{name} is out of range") from None


@dataclasses.dataclass
class Summary:
    """What one batch did."""

    counted: int = 0
    pending: int = 0
    duplicates: int = 0
    unfinished: int = 0
    pending_workflow_ids: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True, slots=True)
class _Counted:
    workflow_id: UUID
    client_id: UUID
    outcome: str
    execution_date: dt.date
    stopped_at: dt.datetime | None


async def record_executions(
    session: AsyncSession, reports: Sequence[Execution]
) -> Summary:
    """Count each finished execution once; keep those of unknown workflows pending."""
    summary = Summary()
    finished: dict[str, Execution] = {}
    for report in reports:
        if report.outcome is None:
            summary.unfinished += 1
        elif report.execution_id in finished:
            summary.duplicates += 1
        else:
            finished[report.execution_id] = report
    if not finished:
        return summary

    known = await _find_workflows(
        session, {r.n8n_workflow_id for r in finished.values()}
    )
    unknown = {r.n8n_workflow_id for r in finished.values()} - known.keys()
    if unknown:
        await lock_n8n_workflow_ids(session, unknown)
        known.update(await _find_workflows(session, unknown))

    inserted = await _insert_executions(session, finished.values(), known)
    summary.duplicates += len(finished) - len(inserted)
    counted = []
    for execution_id in inserted:
        report = finished[execution_id]
        workflow = known.get(report.n8n_workflow_id)
        if workflow is None:
            summary.pending += 1
            summary.pending_workflow_ids.add(report.n8n_workflow_id)
            continue
        assert report.outcome is not None and report.execution_date is not None
        counted.append(
            _Counted(
                workflow_id=workflow[0],
                client_id=workflow[1],
                outcome=report.outcome,
                execution_date=report.execution_date,
                stopped_at=report.stopped_at,
            )
        )
    await _apply_counts(session, counted)
    summary.counted = len(counted)
    return summary


async def lock_n8n_workflow_ids(
    session: AsyncSession, n8n_workflow_ids: Iterable[str]
) -> None:
    """Serialise "is this n8n workflow registered?" with registering it.

    Transaction-scoped advisory locks, taken in a fixed order so two batches
    never wait on each other in a circle.
    """
    keys = sorted(f"n8n-workflow:{value}" for value in set(n8n_workflow_ids))
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
            "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
        ),
        {"keys": keys},
    )


async def count_pending_executions(
    session: AsyncSession,
    *,
    workflow_id: UUID,
    client_id: UUID,
    n8n_workflow_id: str,
) -> int:
    """Count the executions that waited for this n8n workflow; how many.

    Call in the transaction that registers the workflow, after
    `lock_n8n_workflow_ids` for its n8n id and the insert or update.
    """
    rows = (
        await session.execute(
            n8n_executions.update()
            .where(
                n8n_executions.c.n8n_workflow_id == n8n_workflow_id,
                n8n_executions.c.is_counted.is_(False),
            )
            .values(workflow_id=workflow_id, is_counted=True)
            .returning(
                n8n_executions.c.status,
                n8n_executions.c.execution_date,
                n8n_executions.c.stopped_at,
            )
        )
    ).all()
    counted = [
        _Counted(
            workflow_id=workflow_id,
            client_id=client_id,
            outcome=OUTCOMES[row.status],
            execution_date=row.execution_date,
            stopped_at=row.stopped_at,
        )
        for row in rows
    ]
    await _apply_counts(session, counted)
    return len(counted)


async def _find_workflows(
    session: AsyncSession, n8n_workflow_ids: set[str]
) -> dict[str, tuple[UUID, UUID]]:
    """n8n id → (workflow id, client id); the rows are locked in id order."""
    rows = await session.execute(
        select(workflows.c.n8n_workflow_id, workflows.c.id, workflows.c.client_id)
        .where(workflows.c.n8n_workflow_id.in_(sorted(n8n_workflow_ids)))
        .order_by(workflows.c.id)
        .with_for_update()
    )
    return {row.n8n_workflow_id: (row.id, row.client_id) for row in rows}


_INSERT_EXECUTIONS = text(
    "INSERT INTO n8n_execution "
    "(execution_id, n8n_workflow_id, workflow_id, status, execution_date, "
    "stopped_at, is_counted) "
    "SELECT * FROM unnest("
    "CAST(:execution_ids AS text[]), CAST(:n8n_workflow_ids AS text[]), "
    "CAST(:workflow_ids AS uuid[]), CAST(:statuses AS text[]), "
    "CAST(:dates AS date[]), CAST(:stopped AS timestamptz[]), "
    "CAST(:counted AS boolean[])) "
    "ORDER BY 1 "
    "ON CONFLICT (execution_id) DO NOTHING "
    "RETURNING execution_id"
)


async def _insert_executions(
    session: AsyncSession,
    reports: Iterable[Execution],
    known: dict[str, tuple[UUID, UUID]],
) -> list[str]:
    """Store the executions; the ids that were new (only those count)."""
    ordered = sorted(reports, key=lambda report: report.execution_id)
    workflow_ids = [known.get(r.n8n_workflow_id, (None, None))[0] for r in ordered]
    result = await session.execute(
        _INSERT_EXECUTIONS,
        {
            "execution_ids": [r.execution_id for r in ordered],
            "n8n_workflow_ids": [r.n8n_workflow_id for r in ordered],
            "workflow_ids": workflow_ids,
            "statuses": [r.status for r in ordered],
            "dates": [r.execution_date for r in ordered],
            "stopped": [r.stopped_at for r in ordered],
            "counted": [workflow_id is not None for workflow_id in workflow_ids],
        },
    )
    return list(result.scalars())


_UPSERT_RECORDS = text(
    "INSERT INTO execution_record "
    "(client_id, workflow_id, execution_date, total_count, success_count, error_count) "
    "SELECT * FROM unnest("
    "CAST(:client_ids AS uuid[]), CAST(:workflow_ids AS uuid[]), "
    "CAST(:dates AS date[]), CAST(:totals AS integer[]), "
    "CAST(:successes AS integer[]), CAST(:errors AS integer[])) "
    "ORDER BY 2, 3 "
    "ON CONFLICT (workflow_id, execution_date) DO UPDATE SET "
    "total_count = execution_record.total_count + EXCLUDED.total_count, "
    "success_count = execution_record.success_count + EXCLUDED.success_count, "
    "error_count = execution_record.error_count + EXCLUDED.error_count, "
    "updated_at = now()"
)

_UPDATE_WORKFLOWS = text(
    "UPDATE workflow SET "
    "execution_count = workflow.execution_count + counted.executions, "
    "last_execution = GREATEST(workflow.last_execution, counted.last_stopped) "
    "FROM unnest(CAST(:workflow_ids AS uuid[]), CAST(:executions AS integer[]), "
    "CAST(:last_stopped AS timestamptz[])) AS counted(id, executions, last_stopped) "
    "WHERE workflow.id = counted.id"
)


async def _apply_counts(session: AsyncSession, counted: Sequence[_Counted]) -> None:
    """Add counted executions to their days and workflows: two statements."""
    if not counted:
        return
    days: dict[tuple[UUID, dt.date], list[int]] = defaultdict(lambda: [0, 0, 0])
    clients: dict[UUID, UUID] = {}
    per_workflow: dict[UUID, list[Any]] = {}
    for execution in counted:
        totals = days[(execution.workflow_id, execution.execution_date)]
        totals[0] += 1
        totals[1] += execution.outcome == SUCCESS
        totals[2] += execution.outcome == ERROR
        clients[execution.workflow_id] = execution.client_id
        entry = per_workflow.setdefault(execution.workflow_id, [0, None])
        entry[0] += 1
        if execution.stopped_at is not None and (
            entry[1] is None or execution.stopped_at > entry[1]
        ):
            entry[1] = execution.stopped_at

    keys = sorted(days)
    await session.execute(
        _UPSERT_RECORDS,
        {
            "client_ids": [clients[workflow_id] for workflow_id, _ in keys],
            "workflow_ids": [workflow_id for workflow_id, _ in keys],
            "dates": [day for _, day in keys],
            "totals": [days[key][0] for key in keys],
            "successes": [days[key][1] for key in keys],
            "errors": [days[key][2] for key in keys],
        },
    )
    workflow_ids = sorted(per_workflow)
    await session.execute(
        _UPDATE_WORKFLOWS,
        {
            "workflow_ids": workflow_ids,
            "executions": [per_workflow[w][0] for w in workflow_ids],
            "last_stopped": [per_workflow[w][1] for w in workflow_ids],
        },
    )
