"""n8n executions and client events through real JetStream into the running service."""

import json
import uuid
from pathlib import Path

import pytest

# A copy of the field cases' n8n-executions.json (real-shaped execution objects).
CASES = Path(__file__).parent / "n8n-executions.json"


def n8n_objects() -> list[dict]:
    return json.loads(CASES.read_text())


async def registered(bench, client_id, n8n_workflow_id=None) -> dict:
    return await bench.create_workflow(
        client_id, n8n_workflow_id=n8n_workflow_id or bench.unique("WF")
    )


class TestC10N8nIdsAndPayloadShapes:
    """Case C10: real payload shapes, numeric ids, case-sensitive and unknown workflow ids."""

    async def test_a_to_f(self, bench, client_a):
        w1 = await registered(bench, client_a["id"], "WFPLACEHOLDER001")
        w2 = await registered(bench, client_a["id"], "123")
        objects = n8n_objects()
        a = objects[0]
        b = {
            "id": 4002,
            "finished": True,
            "mode": "trigger",
            "retryOf": None,
            "retrySuccessId": None,
            "status": "success",
            "startedAt": "2025-03-04T12:00:00.000Z",
            "stoppedAt": "2025-03-04T12:00:01.000Z",
            "workflowId": 123,
            "waitTill": None,
        }
        c = objects[1]
        d = {**a, "id": "4004", "mode": "evaluation"}
        e = {**a, "id": "4005", "workflowId": "wfplaceholder001"}
        f = {**a, "id": "4006", "workflowId": "ZZZZZZZZZZZZZZZZ"}
        dead_letters_before = await bench.dead_letter_count()

        for name, item in zip("abcdef", (a, b, c, d, e, f), strict=True):
            await bench.publish_executions(
                item, msg_id=f"c10-{name}-{uuid.uuid4().hex[:6]}"
            )
        await bench.settled()

        assert await bench.records(w1["id"]) == {
            "2025-03-04": (2, 2, 0),
            "2025-03-05": (1, 0, 1),
        }
        assert await bench.records(w2["id"]) == {"2025-03-04": (1, 1, 0)}
        first = await bench.workflow(w1["id"])
        assert first["execution_count"] == 3
        assert first["last_execution"] == "2025-03-05T08:01:25.750000Z"
        assert (await bench.workflow(w2["id"]))["execution_count"] == 1
        # e and f are acknowledged (the consumer settled), not dead-lettered,
        # and no workflow appeared for them.
        assert await bench.dead_letter_count() == dead_letters_before
        async with bench.admin as http:
            search = (
                await http.get("/api/workflows/", params={"search": "ZZZZZZZZZZZZZZZZ"})
            ).json()
            lower = (
                await http.get("/api/workflows/", params={"search": "wfplaceholder001"})
            ).json()
        assert search["count"] == 0
        assert {w["n8n_workflow_id"] for w in lower["results"]} == {"WFPLACEHOLDER001"}

        # ids are compared as strings: "4002" is the execution 4002 already counted.
        await bench.publish_executions(
            {**b, "id": "4002", "workflowId": "123"}, msg_id="c10-b-again"
        )
        await bench.settled()

        assert (await bench.workflow(w2["id"]))["execution_count"] == 1
        assert await bench.records(w2["id"]) == {"2025-03-04": (1, 1, 0)}


class TestIngestion:
    async def test_the_same_execution_delivered_three_times_counts_once(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        report = bench.execution("dup-" + uuid.uuid4().hex, workflow["n8n_workflow_id"])

        for copy in range(3):
            await bench.publish_executions(
                report, msg_id=f"{report['id']}:success:{copy}"
            )
        await bench.settled()

        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 1, 0)}
        assert (await bench.workflow(workflow["id"]))["execution_count"] == 1

    async def test_running_then_success_counts_once_and_running_alone_not_at_all(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        n8n_id = workflow["n8n_workflow_id"]
        finished_later = "run-" + uuid.uuid4().hex

        await bench.publish_executions(
            bench.execution(finished_later, n8n_id, status="running", stopped_at=None)
        )
        for status in ("running", "waiting", "new"):
            await bench.publish_executions(
                bench.execution(f"{status}-{uuid.uuid4().hex}", n8n_id, status=status)
            )
        await bench.settled()
        before = await bench.workflow(workflow["id"])
        await bench.publish_executions(
            bench.execution(finished_later, n8n_id, status="success")
        )
        await bench.settled()

        assert (before["execution_count"], before["last_execution"]) == (0, None)
        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 1, 0)}
        assert (await bench.workflow(workflow["id"]))["execution_count"] == 1

    async def test_statuses_count_as_the_contract_says(self, bench, client_a):
        workflow = await registered(bench, client_a["id"])
        statuses = ["success", "error", "crashed", "unknown", "canceled"]

        await bench.publish_executions(
            [
                bench.execution(
                    f"{s}-{uuid.uuid4().hex}", workflow["n8n_workflow_id"], status=s
                )
                for s in statuses
            ]
        )
        await bench.settled()

        # canceled counts in the total only.
        assert await bench.records(workflow["id"]) == {"2025-03-07": (5, 1, 3)}
        body = await bench.workflow(workflow["id"])
        assert body["execution_count"] == 5
        assert body["success_rate"] == 20.0

    async def test_the_first_finished_report_of_an_execution_wins(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        execution_id = "first-" + uuid.uuid4().hex

        await bench.publish_executions(
            bench.execution(execution_id, workflow["n8n_workflow_id"], status="error")
        )
        await bench.settled()
        await bench.publish_executions(
            bench.execution(execution_id, workflow["n8n_workflow_id"], status="success")
        )
        await bench.settled()

        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 0, 1)}

    async def test_a_list_with_one_malformed_item_counts_the_rest_and_sets_the_message_aside(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        n8n_id = workflow["n8n_workflow_id"]
        batch = [
            bench.execution("ok1-" + uuid.uuid4().hex, n8n_id),
            {"id": "broken", "status": "success", "startedAt": "2025-03-07T10:00:00Z"},
            bench.execution("ok2-" + uuid.uuid4().hex, n8n_id, status="error"),
        ]
        before = await bench.dead_letter_count()

        ack = await bench.publish_executions(batch)
        await bench.settled()

        assert await bench.records(workflow["id"]) == {"2025-03-07": (2, 1, 1)}
        assert await bench.dead_letter_count() == before + 1
        letter = await bench.last_dead_letter()
        assert (
            letter.headers["Portal-Dlq-Reason"]
            == "item 1: workflowId missing or neither a string nor an integer"
        )
        assert letter.headers["Portal-Dlq-Sequence"] == str(ack.seq)
        assert json.loads(letter.data) == batch

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (b"not json at all", "payload is not JSON"),
            (b'"a string"', "not a JSON object"),
            (
                b'{"id": "x", "workflowId": "y", "status": "success"}',
                "a finished execution has neither startedAt nor stoppedAt",
            ),
            (
                b'{"id": "x", "workflowId": "y", "status": "exploded", "startedAt": null}',
                "unknown status 'exploded'",
            ),
            (
                b'{"id": true, "workflowId": "y", "status": "success"}',
                "id missing or neither a string nor an integer",
            ),
            (
                b'{"id": "x", "workflowId": "y", "status": "success", "startedAt": "yesterday"}',
                "startedAt is not an ISO 8601 timestamp",
            ),
            (
                b'{"id": "x\\u0000", "workflowId": "y", "status": "success", "startedAt": null}',
                "id contains characters that cannot be stored",
            ),
        ],
    )
    async def test_a_malformed_message_is_set_aside_and_does_not_block_the_next(
        self, bench, client_a, payload, reason
    ):
        workflow = await registered(bench, client_a["id"])

        bad = await bench.publish_executions(payload, msg_id=uuid.uuid4().hex)
        await bench.publish_executions(
            bench.execution("after-" + uuid.uuid4().hex, workflow["n8n_workflow_id"])
        )
        await bench.settled()

        letter = await bench.last_dead_letter()
        assert letter.headers["Portal-Dlq-Sequence"] == str(bad.seq)
        assert letter.headers["Portal-Dlq-Reason"] == reason
        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 1, 0)}

    async def test_executions_of_an_unknown_workflow_are_counted_once_it_is_registered(
        self, bench, client_a
    ):
        n8n_id = bench.unique("LATER")
        reports = [
            bench.execution(
                f"late-{n}-{uuid.uuid4().hex}",
                n8n_id,
                status=status,
                started_at=started,
                stopped_at=started,
            )
            for n, (status, started) in enumerate(
                [
                    ("success", "2025-03-01T10:00:00Z"),
                    ("error", "2025-03-01T11:00:00Z"),
                    ("success", "2025-03-02T10:00:00Z"),
                ]
            )
        ]
        await bench.publish_executions(reports)
        await bench.settled()

        workflow = await registered(bench, client_a["id"], n8n_id)
        await bench.publish_executions(reports[0], msg_id=uuid.uuid4().hex)
        await bench.settled()

        assert workflow["execution_count"] == 3
        assert workflow["last_execution"] == "2025-03-02T10:00:00Z"
        assert await bench.records(workflow["id"]) == {
            "2025-03-01": (2, 1, 1),
            "2025-03-02": (1, 1, 0),
        }
        assert (await bench.workflow(workflow["id"]))["execution_count"] == 3

    async def test_renaming_a_workflow_to_an_n8n_id_that_ran_counts_those_executions(
        self, bench, client_a
    ):
        n8n_id = bench.unique("RENAMED")
        await bench.publish_executions(
            bench.execution("renamed-" + uuid.uuid4().hex, n8n_id)
        )
        await bench.settled()
        workflow = await registered(bench, client_a["id"])

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/", json={"n8n_workflow_id": n8n_id}
            )

        assert response.json()["execution_count"] == 1
        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 1, 0)}

    async def test_the_day_and_last_execution_come_from_the_timestamps(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        n8n_id = workflow["n8n_workflow_id"]
        reports = [
            # Latest stop arrives first; an older one must not move last_execution back.
            bench.execution(
                "t1-" + uuid.uuid4().hex,
                n8n_id,
                started_at="2025-02-10T09:00:00Z",
                stopped_at="2025-02-10T09:05:00Z",
            ),
            bench.execution(
                "t2-" + uuid.uuid4().hex,
                n8n_id,
                started_at=None,
                stopped_at="2025-02-09T23:59:59.500Z",
            ),
            # stoppedAt a little before startedAt (n8n clock skew): the day is startedAt's.
            bench.execution(
                "t3-" + uuid.uuid4().hex,
                n8n_id,
                started_at="2025-01-31T23:59:58.120Z",
                stopped_at="2025-01-31T23:59:57.000Z",
            ),
            bench.execution(
                "t4-" + uuid.uuid4().hex,
                n8n_id,
                started_at="2025-02-01T00:00:00+01:00",
                stopped_at=None,
            ),
        ]

        for report in reports:
            await bench.publish_executions(report)
        await bench.settled()

        assert await bench.records(workflow["id"]) == {
            "2025-02-10": (1, 1, 0),
            "2025-02-09": (1, 1, 0),
            "2025-01-31": (2, 2, 0),
        }
        assert (await bench.workflow(workflow["id"]))[
            "last_execution"
        ] == "2025-02-10T09:05:00Z"


class TestHttpIngest:
    async def test_staff_publish_a_list_and_malformed_items_are_named(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        n8n_id = workflow["n8n_workflow_id"]
        running_then_done = "http-" + uuid.uuid4().hex
        items = [
            bench.execution("http-" + uuid.uuid4().hex, n8n_id),
            {"id": "no-workflow", "status": "success"},
            bench.execution(
                running_then_done, n8n_id, status="running", stopped_at=None
            ),
            bench.execution(running_then_done, n8n_id, status="success"),
            "text",
        ]

        async with bench.admin as http:
            response = await http.post("/api/executions/events/", json=items)
        await bench.settled()

        assert response.status_code == 202
        assert response.json() == {
            "accepted": 3,
            "rejected": [
                {
                    "index": 1,
                    "reason": "workflowId missing or neither a string nor an integer",
                },
                {"index": 4, "reason": "not a JSON object"},
            ],
        }
        assert await bench.records(workflow["id"]) == {"2025-03-07": (2, 2, 0)}

    async def test_one_object_and_a_repeat_are_accepted_and_counted_once(
        self, bench, client_a
    ):
        workflow = await registered(bench, client_a["id"])
        report = bench.execution(
            str(uuid.uuid4().int % 10**12),
            workflow["n8n_workflow_id"],
            status="crashed",
        )

        async with bench.admin as http:
            first = await http.post("/api/executions/events/", json=report)
            again = await http.post("/api/executions/events/", json=[report, report])
        await bench.settled()

        assert first.status_code == 202 and first.json() == {
            "accepted": 1,
            "rejected": [],
        }
        assert again.json() == {"accepted": 2, "rejected": []}
        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 0, 1)}

    async def test_an_empty_list_accepts_nothing(self, bench):
        async with bench.admin as http:
            response = await http.post("/api/executions/events/", json=[])

        assert (response.status_code, response.json()) == (
            202,
            {"accepted": 0, "rejected": []},
        )

    async def test_bodies_that_are_not_executions_are_400(self, bench):
        async with bench.admin as http:
            scalar = await http.post("/api/executions/events/", json="text")
            broken = await http.post(
                "/api/executions/events/",
                content=b"[{",
                headers={"Content-Type": "application/json"},
            )
            get = await http.get("/api/executions/events/")

        assert scalar.status_code == 400
        assert scalar.json() == {
            "non_field_errors": ["Expected an n8n execution object or a list of them."]
        }
        assert broken.status_code == 400 and broken.json()["detail"].startswith(
            "JSON parse error - "
        )
        assert (get.status_code, get.json()) == (
            405,
            {"detail": 'Method "GET" not allowed.'},
        )

    async def test_client_users_are_forbidden_and_anonymous_callers_unauthenticated(
        self, bench, client_a
    ):
        report = bench.execution("nope-" + uuid.uuid4().hex, "whatever")

        async with bench.portal.client(client_a["token"]) as http:
            client_user = await http.post("/api/executions/events/", json=report)
        async with bench.portal.client() as http:
            anonymous = await http.post("/api/executions/events/", json=report)

        assert (client_user.status_code, client_user.json()) == (
            403,
            {"detail": "You do not have permission to perform this action."},
        )
        assert (anonymous.status_code, anonymous.json()) == (
            401,
            {"detail": "Authentication credentials were not provided."},
        )


class TestClientEvents:
    async def test_a_renamed_client_shows_its_new_name(self, bench):
        client = await bench.create_client()
        workflow = await bench.create_workflow(client["id"])
        new_name = bench.unique("Renamed ")

        await bench.rename_client(client, new_name)

        async def renamed():
            return (await bench.workflow(workflow["id"]))["client_name"] == new_name

        await bench.eventually(renamed)

    async def test_a_deleted_client_takes_its_workflows_and_records_along(self, bench):
        client = await bench.create_client()
        workflow = await bench.create_workflow(client["id"])
        await bench.publish_executions(
            bench.execution("gone-" + uuid.uuid4().hex, workflow["n8n_workflow_id"])
        )
        await bench.settled()
        records_before = await bench.records(workflow["id"])

        await bench.delete_client(client["id"])

        async def removed():
            async with bench.admin as http:
                return (
                    await http.get(f"/api/workflows/{workflow['id']}/")
                ).status_code == 404

        await bench.eventually(removed)
        assert records_before == {"2025-03-07": (1, 1, 0)}
        async with bench.admin as http:
            records = await http.get(
                "/api/executions/", params={"client": client["id"]}
            )
            recreate = await http.post(
                "/api/workflows/",
                json={
                    "client": client["id"],
                    "workflow_name": "Again",
                    "n8n_workflow_id": bench.unique("WF"),
                },
            )
        assert records.status_code == 400  # the client is no longer a valid choice
        assert recreate.status_code == 400
        assert recreate.json() == {
            "client": [f'Invalid pk "{client["id"]}" - object does not exist.']
        }
        announced = await bench.eventually(
            lambda: bench.events_about("workflow.deleted", workflow["id"])
        )
        assert announced[0]["data"]["client_id"] == client["id"]
