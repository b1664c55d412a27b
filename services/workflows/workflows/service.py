"""Workflows and their daily execution records: the business rules.

Every change other services must hear about is recorded in the outbox in the
same transaction: `workflow.created`, `workflow.updated` (with
`previous_status`, so entering `error` is visible) and `workflow.deleted`.
Functions here add and flush; the router's transaction commits.
"""

import datetime as dt
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from portal_common.clients_copy import ClientDirectory
from portal_common.errors import NotFound, ValidationFailed
from portal_common.events import record_event
from portal_common.fields import iso_date, iso_datetime, rate
from portal_common.identity import Identity
from portal_common.listing import (
    ChoiceFilter,
    DateFilter,
    FilterError,
    ListSpec,
    UUIDFilter,
    paginate,
)
from workflows import events, repository
from workflows.exceptions import (
    DuplicateExecutionRecord,
    DuplicateN8nWorkflow,
    InvalidActivation,
    UnknownObject,
)
from workflows.ingest import count_pending_executions, lock_n8n_workflow_ids
from workflows.models import (
    WORKFLOW_STATUSES,
    execution_records,
    n8n_executions,
    workflows,
)

log = structlog.get_logger("workflows")
SOURCE = "workflows"
ACTIVATION_STATUSES = ("active", "paused")
UPDATABLE_FIELDS = (
    "client_id",
    "workflow_name",
    "n8n_workflow_id",
    "n8n_workflow_url",
    "description",
    "status",
)
# Public names of the fields in `workflow.updated`'s `changed`.
PUBLIC_NAMES = {"client_id": "client"}


def n8n_workflow_url(base_url: str, n8n_workflow_id: str) -> str:
    """The reference's generated link: <base>/workflow/<n8n id>."""
    return f"{base_url.rstrip('/')}/workflow/{n8n_workflow_id}"




def _client_exists(directory: ClientDirectory):
    async def exists(
        session: AsyncSession, client_id: UUID, identity: Identity | None
    ) -> bool:
        return await directory.find_client(session, client_id) is not None

    return exists


def workflow_list_spec(directory: ClientDirectory) -> ListSpec:
    return ListSpec(
        filters=(
            ChoiceFilter("status", workflows.c.status, WORKFLOW_STATUSES),
            UUIDFilter(
                "client",
                workflows.c.client_id,
                exists=_client_exists(directory),
                owner_scoped=True,
            ),
        ),
        search=(workflows.c.workflow_name, workflows.c.n8n_workflow_id),
        ordering={
            "workflow_name": workflows.c.workflow_name,
            "created_at": workflows.c.created_at,
            "last_execution": workflows.c.last_execution,
        },
        default_ordering=("-created_at",),
        tiebreak=workflows.c.id,
    )


def record_filters(directory: ClientDirectory) -> tuple[Any, ...]:
    return (
        DateFilter("execution_date", execution_records.c.execution_date),
        UUIDFilter(
            "client",
            execution_records.c.client_id,
            exists=_client_exists(directory),
            owner_scoped=True,
        ),
        UUIDFilter(
            "workflow",
            execution_records.c.workflow_id,
            exists=workflows.c.id,
            owner=workflows.c.client_id,
        ),
    )


def record_list_spec(directory: ClientDirectory) -> ListSpec:
    return ListSpec(
        filters=record_filters(directory),
        ordering={
            "execution_date": execution_records.c.execution_date,
            "total_count": execution_records.c.total_count,
            "created_at": execution_records.c.created_at,
        },
        default_ordering=("-execution_date",),
        tiebreak=execution_records.c.id,
    )


def workflow_body(row: Any, success_rate: float | None) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "client": str(row["client_id"]),
        "client_name": row["client_name"],
        "workflow_name": row["workflow_name"],
        "n8n_workflow_id": row["n8n_workflow_id"],
        "n8n_workflow_url": row["n8n_workflow_url"],
        "description": row["description"],
        "status": row["status"],
        "last_execution": iso_datetime(row["last_execution"]),
        "execution_count": row["execution_count"],
        "success_rate": success_rate,
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }


def record_body(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "client": str(row["client_id"]),
        "client_name": row["client_name"],
        "workflow": str(row["workflow_id"]),
        "workflow_name": row["workflow_name"],
        "execution_date": iso_date(row["execution_date"]),
        "total_count": row["total_count"],
        "success_count": row["success_count"],
        "error_count": row["error_count"],
        "success_rate": rate(row["success_count"], row["total_count"]),
        "created_at": iso_datetime(row["created_at"]),
    }


# Workflows


async def list_workflows(
    session: AsyncSession,
    request: Request,
    identity: Identity,
    directory: ClientDirectory,
) -> dict[str, Any]:
    """One page of the caller's workflows: paginate's two statements, one for rates."""
    page = await paginate(
        session,
        request,
        repository.workflows_visible_to(identity),
        workflow_list_spec(directory),
        identity=identity,
    )
    rates = await repository.success_rates(session, [row["id"] for row in page.rows])
    return page.body(lambda row: workflow_body(row, rates[row["id"]]))


async def read_workflow(
    session: AsyncSession, workflow_id: UUID, identity: Identity
) -> dict[str, Any]:
    row = await repository.find_workflow(session, workflow_id, identity)
    if row is None:
        raise NotFound()
    rates = await repository.success_rates(session, [workflow_id])
    return workflow_body(row, rates[workflow_id])


async def _require_client(
    session: AsyncSession, directory: ClientDirectory, client_id: UUID
) -> None:
    if await directory.find_client(session, client_id) is None:
        raise UnknownObject("client", client_id)


async def _claim_n8n_workflow_id(
    session: AsyncSession, n8n_workflow_id: str, *, exclude: UUID | None = None
) -> None:
    # The lock also makes ingestion of this n8n id wait, so executions that
    # arrived before the workflow are counted exactly once (workflows.ingest).
    await lock_n8n_workflow_ids(session, [n8n_workflow_id])
    if await repository.n8n_workflow_id_taken(
        session, n8n_workflow_id, exclude=exclude
    ):
        raise DuplicateN8nWorkflow()


async def create_workflow(
    session: AsyncSession,
    directory: ClientDirectory,
    data: dict[str, Any],
    *,
    n8n_base_url: str,
) -> UUID:
    """Register a client's n8n workflow; executions that waited for it are counted."""
    await _require_client(session, directory, data["client_id"])
    await _claim_n8n_workflow_id(session, data["n8n_workflow_id"])

    values = {name: data[name] for name in UPDATABLE_FIELDS if name in data}
    if not values.get("n8n_workflow_url"):
        values["n8n_workflow_url"] = n8n_workflow_url(
            n8n_base_url, data["n8n_workflow_id"]
        )
    row = (
        (
            await session.execute(
                workflows.insert().values(**values).returning(workflows)
            )
        )
        .mappings()
        .one()
    )
    waiting = await count_pending_executions(
        session,
        workflow_id=row["id"],
        client_id=row["client_id"],
        n8n_workflow_id=row["n8n_workflow_id"],
    )

    await record_event(
        session, events.WORKFLOW_CREATED, events.workflow_created(row), source=SOURCE
    )
    log.info(
        "workflow.created",
        workflow_id=str(row["id"]),
        client_id=str(row["client_id"]),
        waiting_executions_counted=waiting,
    )
    return row["id"]


async def update_workflow(
    session: AsyncSession,
    directory: ClientDirectory,
    workflow_id: UUID,
    data: dict[str, Any],
    *,
    n8n_base_url: str,
) -> None:
    """Change a workflow (staff); moving it to another client moves its records too."""
    current = await repository.lock_workflow(session, workflow_id)
    if current is None:
        raise NotFound()
    client_moves = "client_id" in data and data["client_id"] != current["client_id"]
    if client_moves:
        await _require_client(session, directory, data["client_id"])
    n8n_id_changes = (
        "n8n_workflow_id" in data
        and data["n8n_workflow_id"] != current["n8n_workflow_id"]
    )
    if n8n_id_changes:
        await _claim_n8n_workflow_id(
            session, data["n8n_workflow_id"], exclude=workflow_id
        )

    values = {name: data[name] for name in UPDATABLE_FIELDS if name in data}
    n8n_id = values.get("n8n_workflow_id", current["n8n_workflow_id"])
    generated_before = n8n_workflow_url(n8n_base_url, current["n8n_workflow_id"])
    if "n8n_workflow_url" in values and not values["n8n_workflow_url"]:
        values["n8n_workflow_url"] = n8n_workflow_url(n8n_base_url, n8n_id)
    elif (
        n8n_id_changes
        and "n8n_workflow_url" not in values
        and current["n8n_workflow_url"] == generated_before
    ):
        # A generated link follows the id; one set by hand stays.
        values["n8n_workflow_url"] = n8n_workflow_url(n8n_base_url, n8n_id)
    await _apply_update(session, current, values)
    if client_moves:
        await session.execute(
            update(execution_records)
            .where(execution_records.c.workflow_id == workflow_id)
            .values(client_id=data["client_id"])
        )
    if n8n_id_changes:
        await count_pending_executions(
            session,
            workflow_id=workflow_id,
            client_id=values.get("client_id", current["client_id"]),
            n8n_workflow_id=n8n_id,
        )


async def activate_workflow(
    session: AsyncSession, workflow_id: UUID, status: Any
) -> None:
    """Set a workflow active or paused; anything else is the reference's 400."""
    current = await repository.lock_workflow(session, workflow_id)
    if current is None:
        raise NotFound()
    if not isinstance(status, str) or status not in ACTIVATION_STATUSES:
        raise InvalidActivation()
    await _apply_update(session, current, {"status": status})


async def _apply_update(
    session: AsyncSession, current: dict[str, Any], values: dict[str, Any]
) -> None:
    changed = [name for name, value in values.items() if current[name] != value]
    row = (
        (
            await session.execute(
                update(workflows)
                .where(workflows.c.id == current["id"])
                .values(**values, updated_at=dt.datetime.now(dt.UTC))
                .returning(workflows)
            )
        )
        .mappings()
        .one()
    )

    payload = events.workflow_updated(
        row,
        previous_status=current["status"],
        changed=[PUBLIC_NAMES.get(name, name) for name in changed],
    )
    await record_event(session, events.WORKFLOW_UPDATED, payload, source=SOURCE)
    log.info(
        "workflow.updated",
        workflow_id=str(row["id"]),
        changed=payload["changed"],
        status=row["status"],
        previous_status=current["status"],
    )


async def delete_workflow(session: AsyncSession, workflow_id: UUID) -> None:
    """Delete a workflow and its execution records (staff)."""
    row = (
        (
            await session.execute(
                delete(workflows)
                .where(workflows.c.id == workflow_id)
                .returning(workflows)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound()
    await record_event(
        session, events.WORKFLOW_DELETED, events.workflow_deleted(row), source=SOURCE
    )
    log.info(
        "workflow.deleted",
        workflow_id=str(workflow_id),
        client_id=str(row["client_id"]),
    )


async def remove_client_workflows(session: AsyncSession, client_id: UUID) -> int:
    """A deleted client's workflows go, with their records and waiting executions."""
    rows = (
        (
            await session.execute(
                delete(workflows)
                .where(workflows.c.client_id == client_id)
                .returning(workflows)
            )
        )
        .mappings()
        .all()
    )
    n8n_ids = [row["n8n_workflow_id"] for row in rows]
    if n8n_ids:
        await session.execute(
            delete(n8n_executions).where(
                n8n_executions.c.n8n_workflow_id.in_(n8n_ids),
                n8n_executions.c.is_counted.is_(False),
            )
        )
    for row in rows:
        await record_event(
            session,
            events.WORKFLOW_DELETED,
            events.workflow_deleted(row),
            source=SOURCE,
        )
    return len(rows)


# Execution records


async def list_records(
    session: AsyncSession,
    request: Request,
    identity: Identity,
    directory: ClientDirectory,
) -> dict[str, Any]:
    page = await paginate(
        session,
        request,
        repository.records_visible_to(identity),
        record_list_spec(directory),
        identity=identity,
    )
    return page.body(record_body)


async def read_record(
    session: AsyncSession, record_id: UUID, identity: Identity
) -> dict[str, Any]:
    row = await repository.find_record(session, record_id, identity)
    if row is None:
        raise NotFound()
    return record_body(row)


async def create_record(
    session: AsyncSession,
    directory: ClientDirectory,
    data: dict[str, Any],
    identity: Identity,
) -> dict[str, Any]:
    """Record one workflow's executions of one day by hand (staff)."""
    client_known = await directory.find_client(session, data["client_id"]) is not None
    workflow = await repository.lock_workflow(session, data["workflow_id"])
    errors: dict[str, list[str]] = {}
    if not client_known:
        errors.update(UnknownObject("client", data["client_id"]).detail)
    if workflow is None:
        errors.update(UnknownObject("workflow", data["workflow_id"]).detail)
    if errors:
        raise ValidationFailed(errors)

    if await repository.record_exists(
        session, data["workflow_id"], data["execution_date"]
    ):
        raise DuplicateExecutionRecord()
    if data["success_count"] + data["error_count"] > data["total_count"]:
        raise ValidationFailed.non_field(
            "success_count + error_count must not exceed total_count."
        )
    if workflow["client_id"] != data["client_id"]:
        raise ValidationFailed.non_field("The workflow does not belong to this client.")

    values = {
        name: data[name]
        for name in (
            "client_id",
            "workflow_id",
            "execution_date",
            "total_count",
            "success_count",
            "error_count",
        )
    }
    try:
        async with session.begin_nested():
            record_id = await session.scalar(
                execution_records.insert()
                .values(**values)
                .returning(execution_records.c.id)
            )
    except IntegrityError:
        raise DuplicateExecutionRecord() from None
    log.info(
        "execution_record.created",
        record_id=str(record_id),
        workflow_id=str(data["workflow_id"]),
    )
    return await read_record(session, record_id, identity)


async def execution_stats(
    session: AsyncSession,
    request: Request,
    identity: Identity,
    directory: ClientDirectory,
    *,
    days: int,
    today: dt.date,
) -> dict[str, Any]:
    """Totals from today - days to today; staff may narrow by client and workflow."""
    conditions = [repository.owned_by_caller(execution_records.c.client_id, identity)]
    if identity.is_staff:
        conditions += await _stats_filters(session, request, identity, directory)
    start = today - dt.timedelta(days=days)
    total, successes, errors = await repository.execution_totals(
        session, start=start, end=today, conditions=conditions
    )
    return {
        "total_executions": total,
        "total_successes": successes,
        "total_errors": errors,
        "success_rate": rate(successes, total),
        "period_start": iso_date(start),
        "period_end": iso_date(today),
    }


async def _stats_filters(
    session: AsyncSession,
    request: Request,
    identity: Identity,
    directory: ClientDirectory,
) -> list[Any]:
    """The list's `client` and `workflow` filters, answering bad values the same way."""
    conditions = []
    errors: dict[str, list[str]] = {}
    for record_filter in record_filters(directory):
        if record_filter.param not in ("client", "workflow"):
            continue
        raw = request.query_params.get(record_filter.param, "").replace("\x00", "")
        if raw == "":
            continue
        try:
            conditions.append(await record_filter.condition(raw, session, identity))
        except FilterError as error:
            errors[record_filter.param] = [str(error)]
    if errors:
        raise ValidationFailed(errors)
    return conditions


def today_in(zone: Any, now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(zone).date()
