"""Request bodies of the workflows API, validated the Django REST Framework way."""

import re

from portal_common.fields import (
    CharField,
    ChoiceField,
    DateField,
    IntegerField,
    ReadOnly,
    RelatedIdField,
    Serializer,
)
from workflows.models import (
    INTEGER_MAX,
    N8N_ID_LENGTH,
    NAME_LENGTH,
    URL_LENGTH,
    WORKFLOW_STATUSES,
)

# Django's URLValidator, reduced to what a link to an n8n editor needs.
_URL = re.compile(r"^https?://[^\s/?#]+(?::\d{1,5})?(?:[/?#]\S*)?\Z", re.IGNORECASE)


def url_rule(value: str) -> str | None:
    return None if value == "" or _URL.match(value) else "Enter a valid URL."


class WorkflowCreate(Serializer):
    id = ReadOnly()
    client = RelatedIdField(source="client_id")
    client_name = ReadOnly()
    workflow_name = CharField(max_length=NAME_LENGTH)
    n8n_workflow_id = CharField(max_length=N8N_ID_LENGTH)
    # Generated from PORTAL_N8N_BASE_URL and the n8n id when left out or blank.
    n8n_workflow_url = CharField(
        max_length=URL_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        validators=[url_rule],
    )
    description = CharField(required=False, allow_blank=True, default="")
    status = ChoiceField(WORKFLOW_STATUSES, required=False, default="active")
    last_execution = ReadOnly()
    execution_count = ReadOnly()
    success_rate = ReadOnly()
    created_at = ReadOnly()
    updated_at = ReadOnly()


class WorkflowUpdate(WorkflowCreate):
    pass


class ExecutionRecordCreate(Serializer):
    id = ReadOnly()
    client = RelatedIdField(source="client_id")
    client_name = ReadOnly()
    workflow = RelatedIdField(source="workflow_id")
    workflow_name = ReadOnly()
    execution_date = DateField()
    total_count = IntegerField(
        min_value=0, max_value=INTEGER_MAX, required=False, default=0
    )
    success_count = IntegerField(
        min_value=0, max_value=INTEGER_MAX, required=False, default=0
    )
    error_count = IntegerField(
        min_value=0, max_value=INTEGER_MAX, required=False, default=0
    )
    success_rate = ReadOnly()
    created_at = ReadOnly()


class StatsQuery(Serializer):
    days = IntegerField(min_value=1, max_value=3650, required=False, default=30)
