"""Workflow counts kept from workflow.* events published on the real bus."""

import dataclasses
import datetime as dt
import uuid

import nats

from portal_common.events import Envelope
from portal_common.testing.plugin import eventually, publish_event

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def workflow_event(
    event_type: str, workflow_id: str, client_id: str, status: str, minutes: int
) -> Envelope:
    data = {"id": workflow_id, "client_id": client_id, "status": status}
    if event_type != "workflow.deleted":
        data.update(workflow_name="Order sync", n8n_workflow_id="WF1")
    envelope = Envelope.new(event_type, data, source="workflows")
    return dataclasses.replace(envelope, occurred_at=T0 + dt.timedelta(minutes=minutes))


async def publish(portal, envelope: Envelope) -> None:
    await publish_event(
        portal.system.infra.nats_url, envelope.event_type, {}, envelope=envelope
    )


async def resend(portal, envelope: Envelope) -> None:
    """The same event under another message id, as after the dedupe window."""
    connection = await nats.connect(portal.system.infra.nats_url)
    try:
        headers = {**envelope.headers(), "Nats-Msg-Id": f"{envelope.event_id}:resend"}
        await connection.jetstream().publish(
            envelope.subject, envelope.encode(), headers=headers
        )
    finally:
        await connection.close()


async def counts(portal, client_id: str) -> tuple[int, int]:
    async with portal.client(portal.admin_token) as http:
        body = (await http.get(f"/api/clients/{client_id}/")).json()
    return body["workflows_count"], body["active_workflows_count"]


async def wait_for_marker(portal, make_client) -> None:
    """Publish a workflow of a fresh client; once counted, all before it was handled."""
    marker = await make_client()
    await publish(
        portal,
        workflow_event(
            "workflow.created", str(uuid.uuid4()), marker["id"], "active", 0
        ),
    )

    async def counted():
        return await counts(portal, marker["id"]) == (1, 1)

    assert await eventually(counted, timeout=30), (
        "the marker workflow was never counted"
    )


class TestWorkflowCountProjection:
    async def test_counts_survive_duplicates_and_out_of_order_delivery(
        self, portal, make_client, make_client_user
    ):
        client = await make_client()
        w1, w2, w3 = (str(uuid.uuid4()) for _ in range(3))
        w1_created = workflow_event("workflow.created", w1, client["id"], "active", 1)
        w1_paused = workflow_event("workflow.updated", w1, client["id"], "paused", 2)
        w1_active = workflow_event("workflow.updated", w1, client["id"], "active", 3)
        w2_created = workflow_event("workflow.created", w2, client["id"], "active", 1)
        w2_deleted = workflow_event("workflow.deleted", w2, client["id"], "active", 4)
        w3_created = workflow_event("workflow.created", w3, client["id"], "paused", 1)

        for envelope in (
            w1_active,
            w1_created,
            w2_deleted,
            w1_paused,
            w3_created,
            w2_created,
        ):
            await publish(portal, envelope)
        for envelope in (w1_paused, w2_created, w1_created, w3_created):
            await resend(portal, envelope)
        await wait_for_marker(portal, make_client)

        assert await counts(portal, client["id"]) == (2, 1)
        token = await make_client_user(client["id"])
        async with portal.client(token) as http:
            own = (await http.get("/api/clients/me/")).json()
        assert own["workflows_count"] == 2
        async with portal.client(portal.admin_token) as http:
            listed = (
                await http.get(
                    "/api/clients/", params={"search": client["company_name"]}
                )
            ).json()
        assert [
            (c["workflows_count"], c["active_workflows_count"])
            for c in listed["results"]
        ] == [(2, 1)]

    async def test_a_status_change_moves_the_active_count(self, portal, make_client):
        client = await make_client()
        workflow_id = str(uuid.uuid4())
        await publish(
            portal,
            workflow_event("workflow.created", workflow_id, client["id"], "active", 1),
        )
        await wait_for_marker(portal, make_client)
        assert await counts(portal, client["id"]) == (1, 1)

        await publish(
            portal,
            workflow_event("workflow.updated", workflow_id, client["id"], "error", 2),
        )
        await wait_for_marker(portal, make_client)

        assert await counts(portal, client["id"]) == (1, 0)

    async def test_a_deletion_before_its_creation_leaves_nothing_counted(
        self, portal, make_client
    ):
        client = await make_client()
        workflow_id = str(uuid.uuid4())

        await publish(
            portal,
            workflow_event("workflow.deleted", workflow_id, client["id"], "active", 5),
        )
        await publish(
            portal,
            workflow_event("workflow.created", workflow_id, client["id"], "active", 1),
        )
        await publish(
            portal,
            workflow_event("workflow.updated", workflow_id, client["id"], "active", 9),
        )
        await wait_for_marker(portal, make_client)

        assert await counts(portal, client["id"]) == (0, 0)

    async def test_malformed_and_unrelated_workflow_events_block_nothing(
        self, portal, make_client
    ):
        client = await make_client()
        broken = Envelope.new(
            "workflow.created",
            {"id": "abc", "client_id": client["id"]},
            source="workflows",
        )
        alert = Envelope.new(
            "workflow.health_alert",
            {"id": str(uuid.uuid4()), "client_id": client["id"], "condition": "silent"},
            source="workflows",
        )

        await publish(portal, broken)
        await publish(portal, alert)
        await publish(
            portal,
            workflow_event(
                "workflow.created", str(uuid.uuid4()), client["id"], "active", 1
            ),
        )
        await wait_for_marker(portal, make_client)

        assert await counts(portal, client["id"]) == (1, 1)
