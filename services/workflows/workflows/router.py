"""HTTP endpoints of the workflows service: parse, call the service, shape the reply."""

import asyncio
import json
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from portal_common.bus import publish_message
from portal_common.errors import MethodNotAllowed, ValidationFailed
from portal_common.http import path_uuid, read_body, read_object
from portal_common.identity import CurrentUser, StaffUser
from workflows import service
from workflows.exceptions import BusUnavailable
from workflows.ingest import Execution, InvalidExecution, parse_execution
from workflows.runtime import runtime
from workflows.schemas import (
    ExecutionRecordCreate,
    StatsQuery,
    WorkflowCreate,
    WorkflowUpdate,
)

log = structlog.get_logger("workflows.router")

router = APIRouter(prefix="/api", tags=["workflows"])

N8N_EXECUTION_SUBJECT = "n8n.execution"
# Publications in flight at once for one ingest request.
PUBLISH_CONCURRENCY = 64


def _list_parameters(spec) -> dict[str, Any]:
    return {"parameters": spec.query_parameters()}


# Workflows


@router.get(
    "/workflows/", openapi_extra=_list_parameters(service.workflow_list_spec(None))
)
async def list_workflows(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """List workflows: staff see all, a client's users their own."""
    async with runtime.transaction() as session:
        return await service.list_workflows(
            session, request, identity, runtime.directory
        )


@router.post(
    "/workflows/", status_code=201, openapi_extra=WorkflowCreate.openapi_extra()
)
async def create_workflow(request: Request, identity: StaffUser) -> dict[str, Any]:
    """Register a client's n8n workflow (staff only)."""
    data = WorkflowCreate.validate(await read_object(request))
    async with runtime.transaction() as session:
        workflow_id = await service.create_workflow(
            session, runtime.directory, data, n8n_base_url=runtime.settings.n8n_base_url
        )
        return await service.read_workflow(session, workflow_id, identity)


@router.get("/workflows/{workflow_id}/")
async def read_workflow(workflow_id: str, identity: CurrentUser) -> dict[str, Any]:
    """Read one workflow."""
    object_id = path_uuid(workflow_id)
    async with runtime.transaction() as session:
        return await service.read_workflow(session, object_id, identity)


async def _update(
    request: Request, workflow_id: str, identity, *, partial: bool
) -> dict[str, Any]:
    object_id = path_uuid(workflow_id)
    data = WorkflowUpdate.validate(await read_object(request), partial=partial)
    async with runtime.transaction() as session:
        await service.update_workflow(
            session,
            runtime.directory,
            object_id,
            data,
            n8n_base_url=runtime.settings.n8n_base_url,
        )
        return await service.read_workflow(session, object_id, identity)


@router.put("/workflows/{workflow_id}/", openapi_extra=WorkflowUpdate.openapi_extra())
async def put_workflow(
    request: Request, workflow_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Replace a workflow's fields (staff only)."""
    return await _update(request, workflow_id, identity, partial=False)


@router.patch("/workflows/{workflow_id}/", openapi_extra=WorkflowUpdate.openapi_extra())
async def patch_workflow(
    request: Request, workflow_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Change some of a workflow's fields (staff only); `error` alerts the staff."""
    return await _update(request, workflow_id, identity, partial=True)


@router.delete("/workflows/{workflow_id}/", status_code=204)
async def delete_workflow(workflow_id: str, identity: StaffUser) -> Response:
    """Delete a workflow and its execution records (staff only)."""
    object_id = path_uuid(workflow_id)
    async with runtime.transaction() as session:
        await service.delete_workflow(session, object_id)
    return Response(status_code=204)


@router.patch("/workflows/{workflow_id}/activate/")
async def activate_workflow(
    request: Request, workflow_id: str, identity: StaffUser
) -> dict[str, Any]:
    """Set a workflow `active` or `paused` (staff only)."""
    object_id = path_uuid(workflow_id)
    body = await read_body(request)
    status = body.get("status") if isinstance(body, dict) else None
    async with runtime.transaction() as session:
        await service.activate_workflow(session, object_id, status)
        return await service.read_workflow(session, object_id, identity)


# Execution records


@router.get(
    "/executions/", openapi_extra=_list_parameters(service.record_list_spec(None))
)
async def list_executions(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """List daily execution records, newest day first."""
    async with runtime.transaction() as session:
        return await service.list_records(session, request, identity, runtime.directory)


@router.post(
    "/executions/", status_code=201, openapi_extra=ExecutionRecordCreate.openapi_extra()
)
async def create_execution(request: Request, identity: StaffUser) -> dict[str, Any]:
    """Record a workflow's executions of one day (staff only)."""
    data = ExecutionRecordCreate.validate(await read_object(request))
    async with runtime.transaction() as session:
        return await service.create_record(session, runtime.directory, data, identity)


STATS_PARAMETERS = {
    "parameters": [
        {
            "name": "days",
            "in": "query",
            "required": False,
            "description": "1 to 3650 (default 30): from today - days to today.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 3650},
        },
        *(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": "Staff only: one client's or one workflow's totals.",
                "schema": {"type": "string", "format": "uuid"},
            }
            for name in ("client", "workflow")
        ),
    ]
}
N8N_EXECUTION_SCHEMA = {
    "type": "object",
    "description": "An n8n execution object as n8n's REST API returns it.",
    "required": ["id", "workflowId"],
    "properties": {
        "id": {"type": ["string", "integer"]},
        "workflowId": {"type": ["string", "integer"]},
        "status": {"type": "string"},
        "startedAt": {"type": ["string", "null"], "format": "date-time"},
        "stoppedAt": {"type": ["string", "null"], "format": "date-time"},
    },
}
INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        N8N_EXECUTION_SCHEMA,
                        {"type": "array", "items": N8N_EXECUTION_SCHEMA},
                    ]
                }
            }
        },
    }
}


@router.get("/executions/stats/", openapi_extra=STATS_PARAMETERS)
async def execution_stats(request: Request, identity: CurrentUser) -> dict[str, Any]:
    """Totals over the last `days` days (default 30); staff may add client, workflow."""
    raw_days = request.query_params.get("days", "")
    query = StatsQuery.validate({"days": raw_days} if raw_days != "" else {})
    today = service.today_in(runtime.settings.zone)
    async with runtime.transaction() as session:
        return await service.execution_stats(
            session,
            request,
            identity,
            runtime.directory,
            days=query["days"],
            today=today,
        )


@router.post("/executions/events/", status_code=202, openapi_extra=INGEST_BODY)
async def ingest_executions(request: Request, identity: StaffUser) -> JSONResponse:
    """Take n8n execution objects onto the bus; 202 once stored (staff only)."""
    body = await read_body(request)
    if isinstance(body, dict):
        items = [body]
    elif isinstance(body, list):
        items = body
    else:
        raise ValidationFailed.non_field(
            "Expected an n8n execution object or a list of them."
        )

    accepted: list[tuple[Execution, Any]] = []
    rejected = []
    for index, item in enumerate(items):
        try:
            accepted.append((parse_execution(item, runtime.settings.zone), item))
        except InvalidExecution as error:
            rejected.append({"index": index, "reason": str(error)})
    await _publish_executions(accepted)

    log.info("executions.ingested", accepted=len(accepted), rejected=len(rejected))
    return JSONResponse(
        {"accepted": len(accepted), "rejected": rejected}, status_code=202
    )


async def _publish_executions(accepted: list[tuple[Execution, Any]]) -> None:
    """Publish each report and wait until JetStream stored all of them."""
    limit = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def publish(execution: Execution, item: Any) -> None:
        async with limit:
            await publish_message(
                runtime.broker,
                N8N_EXECUTION_SUBJECT,
                json.dumps(item, separators=(",", ":")).encode(),
                msg_id=execution.message_id,
            )

    results = await asyncio.gather(
        *(publish(execution, item) for execution, item in accepted),
        return_exceptions=True,
    )
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        # Some may be stored already; a retry by the caller is harmless (same
        # message ids, and executions are counted once by id).
        log.warning(
            "executions.ingest_failed",
            failed=len(failures),
            error_type=type(failures[0]).__name__,
        )
        raise BusUnavailable()


@router.get("/executions/events/", include_in_schema=False)
async def ingest_executions_get(request: Request) -> None:
    raise MethodNotAllowed(request.method)


@router.get("/executions/{record_id}/")
async def read_execution(record_id: str, identity: CurrentUser) -> dict[str, Any]:
    """Read one daily execution record."""
    object_id = path_uuid(record_id)
    async with runtime.transaction() as session:
        return await service.read_record(session, object_id, identity)
