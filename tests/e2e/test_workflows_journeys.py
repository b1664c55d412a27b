"""Journeys across the clients, auth and workflows services, through the gateway."""

import asyncio
import datetime as dt
import time
import uuid


async def eventually(check, *, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout} s (last value {value!r})"
            )
        await asyncio.sleep(0.05)


async def new_client(http) -> dict:
    response = await http.post(
        "/api/clients/",
        json={
            "company_name": f"Journey {uuid.uuid4().hex[:8]}",
            "contact_name": "Jane Doe",
            "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "plan_tier": "E-commerce Essentials",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_client_created_through_the_api_gets_its_workflow_at_once(portal):
    async with portal.client(portal.admin_token) as http:
        client = await new_client(http)
        # No waiting: the workflows service asks the clients service once.
        workflow = await http.post(
            "/api/workflows/",
            json={
                "client": client["id"],
                "workflow_name": "Order sync",
                "n8n_workflow_id": f"J{uuid.uuid4().hex}",
            },
        )

    assert workflow.status_code == 201, workflow.text
    assert workflow.json()["client"] == client["id"]
    assert workflow.json()["client_name"] == client["company_name"]


async def test_n8n_reports_reach_the_client_users_lists_and_the_counts_reach_the_client(
    portal,
):
    async with portal.client(portal.admin_token) as http:
        client = await new_client(http)
        workflow = (
            await http.post(
                "/api/workflows/",
                json={
                    "client": client["id"],
                    "workflow_name": "Invoices",
                    "n8n_workflow_id": f"J{uuid.uuid4().hex}",
                },
            )
        ).json()
        paused = await http.post(
            "/api/workflows/",
            json={
                "client": client["id"],
                "workflow_name": "Paused one",
                "n8n_workflow_id": f"J{uuid.uuid4().hex}",
                "status": "paused",
            },
        )
        assert paused.status_code == 201
        today = dt.datetime.now(dt.UTC).replace(microsecond=0)
        reports = [
            {
                "id": f"j-{uuid.uuid4().hex}",
                "workflowId": workflow["n8n_workflow_id"],
                "status": status,
                "finished": status == "success",
                "mode": "trigger",
                "startedAt": today.isoformat().replace("+00:00", "Z"),
                "stoppedAt": today.isoformat().replace("+00:00", "Z"),
            }
            for status in ("success", "success", "success", "error")
        ]
        ingested = await http.post("/api/executions/events/", json=reports)
    token = await portal.create_user(
        f"journey{uuid.uuid4().hex[:8]}", client=client["id"]
    )

    async def counted():
        async with portal.client(token) as http:
            listed = (await http.get("/api/workflows/")).json()
        rows = {w["id"]: w for w in listed["results"]}
        return (
            rows if rows.get(workflow["id"], {}).get("execution_count") == 4 else None
        )

    async def client_counts():
        async with portal.client(portal.admin_token) as http:
            body = (await http.get(f"/api/clients/{client['id']}/")).json()
        return (
            body
            if (body["workflows_count"], body["active_workflows_count"]) == (2, 1)
            else None
        )

    assert ingested.status_code == 202
    assert ingested.json() == {"accepted": 4, "rejected": []}
    rows = await eventually(counted)
    assert rows[workflow["id"]]["success_rate"] == 75.0
    assert len(rows) == 2
    async with portal.client(token) as http:
        stats = (await http.get("/api/executions/stats/", params={"days": 1})).json()
    assert (
        stats["total_executions"],
        stats["total_successes"],
        stats["success_rate"],
    ) == (4, 3, 75.0)
    await eventually(client_counts)


async def test_deleting_a_client_removes_its_workflows_and_records(portal):
    async with portal.client(portal.admin_token) as http:
        client = await new_client(http)
        workflow = (
            await http.post(
                "/api/workflows/",
                json={
                    "client": client["id"],
                    "workflow_name": "Short-lived",
                    "n8n_workflow_id": f"J{uuid.uuid4().hex}",
                },
            )
        ).json()
        record = await http.post(
            "/api/executions/",
            json={
                "client": client["id"],
                "workflow": workflow["id"],
                "execution_date": "2024-01-17",
                "total_count": 1,
            },
        )
        assert record.status_code == 201
        deleted = await http.delete(f"/api/clients/{client['id']}/")

        async def gone():
            workflow_answer = await http.get(f"/api/workflows/{workflow['id']}/")
            record_answer = await http.get(f"/api/executions/{record.json()['id']}/")
            return workflow_answer.status_code == record_answer.status_code == 404

        assert deleted.status_code == 204
        await eventually(gone)
