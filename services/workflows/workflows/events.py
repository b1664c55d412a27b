"""Payloads of the events the workflows service publishes: its public contract.

The clients service counts workflows from `workflow.created/updated/deleted`;
the support service mails the staff when `workflow.updated` shows a workflow
entering `error` (`status` "error", `previous_status` something else) and for
every `workflow.health_alert`.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from portal_common.fields import iso_datetime

WORKFLOW_CREATED = "workflow.created"
WORKFLOW_UPDATED = "workflow.updated"
WORKFLOW_DELETED = "workflow.deleted"
WORKFLOW_HEALTH_ALERT = "workflow.health_alert"


def workflow_created(workflow: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(workflow["id"]),
        "client_id": str(workflow["client_id"]),
        "workflow_name": workflow["workflow_name"],
        "n8n_workflow_id": workflow["n8n_workflow_id"],
        "status": workflow["status"],
    }


def workflow_updated(
    workflow: Mapping[str, Any],
    *,
    previous_status: str,
    changed: Iterable[str],
) -> dict[str, Any]:
    return {
        **workflow_created(workflow),
        "previous_status": previous_status,
        "changed": sorted(changed),
    }


def workflow_deleted(workflow: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(workflow["id"]),
        "client_id": str(workflow["client_id"]),
        "status": workflow["status"],
    }


def workflow_health_alert(
    workflow: Mapping[str, Any],
    *,
    condition: str,
    success_rate: float | None,
    threshold: float,
    last_execution: datetime | None,
    period_days: int,
) -> dict[str, Any]:
    return {
        "id": str(workflow["id"]),
        "client_id": str(workflow["client_id"]),
        "workflow_name": workflow["workflow_name"],
        "n8n_workflow_id": workflow["n8n_workflow_id"],
        "condition": condition,
        "success_rate": success_rate,
        "threshold": threshold,
        "last_execution": iso_datetime(last_execution),
        "period_days": period_days,
    }
