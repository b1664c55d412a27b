"""Queries of the workflows service; they return rows and never commit."""

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.identity import Identity
from workflows.models import clients, execution_records, workflows

# The workflow's `success_rate` looks at its most recent records only.
SUCCESS_RATE_RECORDS = 30


def owned_by_caller(
    client_column: ColumnElement[Any], identity: Identity
) -> ColumnElement[bool]:
    """Staff see every client's rows; a client's user their own; anyone else none."""
    if identity.is_staff:
        return true()
    if identity.client_id is None:
        return false()
    return client_column == identity.client_id


def workflows_visible_to(identity: Identity) -> Select[Any]:
    """Workflows with their client's name, as far as the caller may see them."""
    return (
        select(workflows, clients.c.company_name.label("client_name"))
        .select_from(
            workflows.outerjoin(clients, clients.c.id == workflows.c.client_id)
        )
        .where(owned_by_caller(workflows.c.client_id, identity))
    )


async def find_workflow(
    session: AsyncSession, workflow_id: UUID, identity: Identity
) -> dict[str, Any] | None:
    statement = workflows_visible_to(identity).where(workflows.c.id == workflow_id)
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def lock_workflow(
    session: AsyncSession, workflow_id: UUID
) -> dict[str, Any] | None:
    statement = select(workflows).where(workflows.c.id == workflow_id).with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def n8n_workflow_id_taken(
    session: AsyncSession, n8n_workflow_id: str, *, exclude: UUID | None = None
) -> bool:
    statement = select(workflows.c.id).where(
        workflows.c.n8n_workflow_id == n8n_workflow_id
    )
    if exclude is not None:
        statement = statement.where(workflows.c.id != exclude)
    return await session.scalar(statement) is not None


async def success_rates(
    session: AsyncSession, workflow_ids: Sequence[UUID]
) -> dict[UUID, float | None]:
    """Each workflow's success rate over its last 30 records, in one grouped query.

    None for a workflow without records, 0.0 when its records count nothing.
    """
    if not workflow_ids:
        return {}
    recent = (
        select(execution_records.c.success_count, execution_records.c.total_count)
        .where(execution_records.c.workflow_id == workflows.c.id)
        .order_by(execution_records.c.execution_date.desc())
        .limit(SUCCESS_RATE_RECORDS)
        .lateral("recent")
    )
    statement = (
        select(
            workflows.c.id,
            func.sum(recent.c.success_count).label("successes"),
            func.sum(recent.c.total_count).label("total"),
        )
        .select_from(workflows.join(recent, true()))
        .where(workflows.c.id.in_(workflow_ids))
        .group_by(workflows.c.id)
    )
    rates: dict[UUID, float | None] = dict.fromkeys(workflow_ids)
    for row in await session.execute(statement):
        rates[row.id] = round(row.successes / row.total * 100, 2) if row.total else 0.0
    return rates


def records_visible_to(identity: Identity) -> Select[Any]:
    """Execution records with workflow and client names, as the caller may see them."""
    return (
        select(
            execution_records,
            workflows.c.workflow_name,
            clients.c.company_name.label("client_name"),
        )
        .select_from(
            execution_records.join(
                workflows, workflows.c.id == execution_records.c.workflow_id
            ).outerjoin(clients, clients.c.id == execution_records.c.client_id)
        )
        .where(owned_by_caller(execution_records.c.client_id, identity))
    )


async def find_record(
    session: AsyncSession, record_id: UUID, identity: Identity
) -> dict[str, Any] | None:
    statement = records_visible_to(identity).where(execution_records.c.id == record_id)
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def record_exists(
    session: AsyncSession, workflow_id: UUID, execution_date: dt.date
) -> bool:
    statement = select(execution_records.c.id).where(
        execution_records.c.workflow_id == workflow_id,
        execution_records.c.execution_date == execution_date,
    )
    return await session.scalar(statement) is not None


async def execution_totals(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    conditions: Sequence[ColumnElement[bool]],
) -> tuple[int, int, int]:
    """(total, successes, errors) of the records dated from start to end inclusive."""
    statement = select(
        func.coalesce(func.sum(execution_records.c.total_count), 0),
        func.coalesce(func.sum(execution_records.c.success_count), 0),
        func.coalesce(func.sum(execution_records.c.error_count), 0),
    ).where(
        execution_records.c.execution_date >= start,
        execution_records.c.execution_date <= end,
        *conditions,
    )
    total, successes, errors = (await session.execute(statement)).one()
    return int(total), int(successes), int(errors)
