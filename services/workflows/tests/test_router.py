"""The workflows and executions API through the gateway: permissions, rules, shapes."""

import asyncio
import datetime as dt
import uuid

import pytest

WORKFLOW_FIELDS = [
    "id",
    "client",
    "client_name",
    "workflow_name",
    "n8n_workflow_id",
    "n8n_workflow_url",
    "description",
    "status",
    "last_execution",
    "execution_count",
    "success_rate",
    "created_at",
    "updated_at",
]
RECORD_FIELDS = [
    "id",
    "client",
    "client_name",
    "workflow",
    "workflow_name",
    "execution_date",
    "total_count",
    "success_count",
    "error_count",
    "success_rate",
    "created_at",
]
NOT_FOUND = {"detail": "Not found."}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}
ACTIVATE_ERROR = {"error": 'Status must be either "active" or "paused"'}


async def add_record(
    bench, workflow, day: str, total: int, success: int, error: int
) -> dict:
    async with bench.admin as http:
        response = await http.post(
            "/api/executions/",
            json={
                "client": workflow["client"],
                "workflow": workflow["id"],
                "execution_date": day,
                "total_count": total,
                "success_count": success,
                "error_count": error,
            },
        )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def shared(bench, client_a, client_b):
    """One workflow with one record for each of clients A and B."""
    workflow_a = await bench.create_workflow(client_a["id"])
    workflow_b = await bench.create_workflow(client_b["id"])
    record_a = await add_record(bench, workflow_a, "2024-01-17", 50, 49, 1)
    record_b = await add_record(bench, workflow_b, "2024-01-17", 10, 5, 5)
    return {
        "workflow_a": workflow_a,
        "workflow_b": workflow_b,
        "record_a": record_a,
        "record_b": record_b,
    }


class TestPermissionMatrix:
    async def test_anonymous_callers_are_asked_to_authenticate(self, bench, shared):
        workflow_id = shared["workflow_a"]["id"]
        requests = [
            ("GET", "/api/workflows/"),
            ("POST", "/api/workflows/"),
            ("GET", f"/api/workflows/{workflow_id}/"),
            ("PATCH", f"/api/workflows/{workflow_id}/"),
            ("DELETE", f"/api/workflows/{workflow_id}/"),
            ("PATCH", f"/api/workflows/{workflow_id}/activate/"),
            ("GET", "/api/executions/"),
            ("POST", "/api/executions/"),
            ("GET", f"/api/executions/{shared['record_a']['id']}/"),
            ("GET", "/api/executions/stats/"),
            ("POST", "/api/executions/events/"),
        ]

        async with bench.portal.client() as http:
            answers = [
                await http.request(method, path, json={}) for method, path in requests
            ]

        assert [a.status_code for a in answers] == [401] * len(requests)
        assert all(a.json() == NOT_AUTHENTICATED for a in answers)
        assert all(a.headers["WWW-Authenticate"] == "Token" for a in answers)

    async def test_a_client_user_sees_only_their_own_workflows_and_records(
        self, bench, client_a, shared
    ):
        async with bench.portal.client(client_a["token"]) as http:
            workflows = (await http.get("/api/workflows/")).json()
            records = (await http.get("/api/executions/")).json()
            own = await http.get(f"/api/workflows/{shared['workflow_a']['id']}/")
            foreign = await http.get(f"/api/workflows/{shared['workflow_b']['id']}/")
            own_record = await http.get(f"/api/executions/{shared['record_a']['id']}/")
            foreign_record = await http.get(
                f"/api/executions/{shared['record_b']['id']}/"
            )

        assert {w["client"] for w in workflows["results"]} == {client_a["id"]}
        assert shared["workflow_a"]["id"] in {w["id"] for w in workflows["results"]}
        assert {r["client"] for r in records["results"]} == {client_a["id"]}
        assert own.status_code == 200 and own.json()["id"] == shared["workflow_a"]["id"]
        assert own_record.status_code == 200
        assert (foreign.status_code, foreign.json()) == (404, NOT_FOUND)
        assert (foreign_record.status_code, foreign_record.json()) == (404, NOT_FOUND)

    @pytest.mark.parametrize("target", ["own", "foreign", "missing", "malformed"])
    async def test_staff_actions_are_forbidden_to_a_client_user_whatever_the_id(
        self, bench, client_a, shared, target
    ):
        workflow_id = {
            "own": shared["workflow_a"]["id"],
            "foreign": shared["workflow_b"]["id"],
            "missing": str(uuid.uuid4()),
            "malformed": "not-a-uuid",
        }[target]
        requests = [
            ("PUT", f"/api/workflows/{workflow_id}/", {"workflow_name": "x"}),
            ("PATCH", f"/api/workflows/{workflow_id}/", {"status": "paused"}),
            ("DELETE", f"/api/workflows/{workflow_id}/", None),
            ("PATCH", f"/api/workflows/{workflow_id}/activate/", {"status": "paused"}),
        ]

        async with bench.portal.client(client_a["token"]) as http:
            answers = [
                await http.request(method, path, json=body)
                for method, path, body in requests
            ]

        assert [(a.status_code, a.json()) for a in answers] == [(403, FORBIDDEN)] * len(
            requests
        )
        assert (await bench.workflow(shared["workflow_a"]["id"]))["status"] == "active"

    async def test_a_client_user_cannot_create_workflows_records_or_events(
        self, bench, client_a, shared
    ):
        async with bench.portal.client(client_a["token"]) as http:
            workflow = await http.post(
                "/api/workflows/",
                json={
                    "client": client_a["id"],
                    "workflow_name": "Mine",
                    "n8n_workflow_id": bench.unique("WF"),
                },
            )
            record = await http.post(
                "/api/executions/",
                json={
                    "client": client_a["id"],
                    "workflow": shared["workflow_a"]["id"],
                    "execution_date": "2024-02-01",
                },
            )
            events = await http.post(
                "/api/executions/events/", json=bench.execution("1", "2")
            )

        assert [(r.status_code, r.json()) for r in (workflow, record, events)] == [
            (403, FORBIDDEN)
        ] * 3

    async def test_a_user_without_a_client_sees_nothing(self, bench, shared):
        token = await bench.client_user(None)

        async with bench.portal.client(token) as http:
            workflows = await http.get("/api/workflows/")
            records = await http.get("/api/executions/")
            workflow = await http.get(f"/api/workflows/{shared['workflow_a']['id']}/")
            stats = await http.get("/api/executions/stats/", params={"days": 3650})

        assert workflows.json() == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
        assert records.json()["count"] == 0
        assert workflow.status_code == 404
        assert stats.json()["total_executions"] == 0

    async def test_staff_see_every_client(self, bench, shared):
        async with bench.admin as http:
            listed = (
                await http.get("/api/workflows/", params={"page_size": 100})
            ).json()

        ids = {w["id"] for w in listed["results"]}
        assert {shared["workflow_a"]["id"], shared["workflow_b"]["id"]} <= ids


class TestWorkflowCreate:
    async def test_the_answer_is_the_full_workflow_with_a_generated_url(
        self, bench, client_a
    ):
        n8n_id = bench.unique("WF")

        async with bench.admin as http:
            response = await http.post(
                "/api/workflows/",
                json={
                    "client": client_a["id"],
                    "workflow_name": "Shopify Order Processing",
                    "n8n_workflow_id": n8n_id,
                    "description": "Processes new Shopify orders automatically",
                    "status": "active",
                    "execution_count": 99,
                    "unknown": "ignored",
                },
            )

        assert response.status_code == 201
        body = response.json()
        assert list(body) == WORKFLOW_FIELDS
        assert body["client"] == client_a["id"]
        assert body["client_name"] == client_a["company_name"]
        assert (
            body["n8n_workflow_url"] == f"https://n8n.monoliet.cloud/workflow/{n8n_id}"
        )
        assert body["execution_count"] == 0
        assert body["last_execution"] is None
        assert body["success_rate"] is None
        assert body["created_at"].endswith("Z")
        uuid.UUID(body["id"])

    async def test_a_given_url_is_kept_and_a_blank_one_generated(self, bench, client_a):
        given = await bench.create_workflow(
            client_a["id"], n8n_workflow_url="https://flows.example.com/workflow/7"
        )
        blank = await bench.create_workflow(client_a["id"], n8n_workflow_url="")

        assert given["n8n_workflow_url"] == "https://flows.example.com/workflow/7"
        assert blank["n8n_workflow_url"].endswith(
            f"/workflow/{blank['n8n_workflow_id']}"
        )

    async def test_missing_and_invalid_fields_are_named(self, bench):
        async with bench.admin as http:
            missing = await http.post("/api/workflows/", json={})
            invalid = await http.post(
                "/api/workflows/",
                json={
                    "client": "abc",
                    "workflow_name": "",
                    "n8n_workflow_id": "x" * 256,
                    "status": "bogus",
                    "n8n_workflow_url": "not a url",
                },
            )

        assert missing.status_code == 400
        assert missing.json() == {
            "client": ["This field is required."],
            "workflow_name": ["This field is required."],
            "n8n_workflow_id": ["This field is required."],
        }
        assert invalid.status_code == 400
        assert invalid.json() == {
            "client": ["\u201cabc\u201d is not a valid UUID."],
            "workflow_name": ["This field may not be blank."],
            "n8n_workflow_id": ["Ensure this field has no more than 255 characters."],
            "n8n_workflow_url": ["Enter a valid URL."],
            "status": ['"bogus" is not a valid choice.'],
        }

    async def test_an_unknown_client_is_refused(self, bench):
        missing = str(uuid.uuid4())

        async with bench.admin as http:
            response = await http.post(
                "/api/workflows/",
                json={
                    "client": missing,
                    "workflow_name": "Orphan",
                    "n8n_workflow_id": bench.unique("WF"),
                },
            )

        assert response.status_code == 400
        assert response.json() == {
            "client": [f'Invalid pk "{missing}" - object does not exist.']
        }

    async def test_bad_bodies_are_4xx(self, bench):
        async with bench.admin as http:
            broken = await http.post(
                "/api/workflows/",
                content=b'{"client": ',
                headers={"Content-Type": "application/json"},
            )
            listed = await http.post("/api/workflows/", json=[1, 2])
            text = await http.post(
                "/api/workflows/", content=b"x", headers={"Content-Type": "text/plain"}
            )
            put_on_list = await http.put("/api/workflows/", json={})

        assert broken.status_code == 400 and broken.json()["detail"].startswith(
            "JSON parse error - "
        )
        assert listed.status_code == 400
        assert listed.json() == {
            "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
        }
        assert text.status_code == 415
        assert (put_on_list.status_code, put_on_list.json()) == (
            405,
            {"detail": 'Method "PUT" not allowed.'},
        )


class TestUniqueness:
    async def test_an_n8n_workflow_id_is_registered_once(
        self, bench, client_a, client_b
    ):
        first = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            again = await http.post(
                "/api/workflows/",
                json={
                    "client": client_b["id"],
                    "workflow_name": "Copy",
                    "n8n_workflow_id": first["n8n_workflow_id"],
                },
            )
            other_case = await http.post(
                "/api/workflows/",
                json={
                    "client": client_b["id"],
                    "workflow_name": "Other case",
                    "n8n_workflow_id": first["n8n_workflow_id"].lower(),
                },
            )

        assert again.status_code == 400
        assert again.json() == {
            "n8n_workflow_id": ["workflow with this n8n workflow id already exists."]
        }
        # n8n ids are case-sensitive: another case is another workflow.
        assert other_case.status_code == 201

    async def test_renaming_onto_a_taken_id_is_refused_and_onto_its_own_is_fine(
        self, bench, client_a
    ):
        first = await bench.create_workflow(client_a["id"])
        second = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            taken = await http.patch(
                f"/api/workflows/{second['id']}/",
                json={"n8n_workflow_id": first["n8n_workflow_id"]},
            )
            own = await http.patch(
                f"/api/workflows/{second['id']}/",
                json={"n8n_workflow_id": second["n8n_workflow_id"]},
            )

        assert taken.status_code == 400
        assert taken.json() == {
            "n8n_workflow_id": ["workflow with this n8n workflow id already exists."]
        }
        assert own.status_code == 200

    async def test_concurrent_registrations_of_one_id_give_one_workflow(
        self, bench, client_a
    ):
        n8n_id = bench.unique("WF")

        async def register() -> int:
            async with bench.admin as http:
                response = await http.post(
                    "/api/workflows/",
                    json={
                        "client": client_a["id"],
                        "workflow_name": "Race",
                        "n8n_workflow_id": n8n_id,
                    },
                )
            return response.status_code

        statuses = await asyncio.gather(*(register() for _ in range(5)))

        assert sorted(statuses) == [201, 400, 400, 400, 400]


class TestWorkflowUpdate:
    async def test_patch_changes_fields_and_announces_them(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/",
                json={
                    "workflow_name": "Renamed",
                    "description": "New words",
                    "id": str(uuid.uuid4()),
                },
            )

        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["workflow_name"], body["description"]) == (
            workflow["id"],
            "Renamed",
            "New words",
        )
        assert body["updated_at"] > workflow["updated_at"]
        updated = await bench.eventually(
            lambda: bench.events_about("workflow.updated", workflow["id"])
        )
        assert updated[-1]["data"] == {
            "id": workflow["id"],
            "client_id": client_a["id"],
            "workflow_name": "Renamed",
            "n8n_workflow_id": workflow["n8n_workflow_id"],
            "status": "active",
            "previous_status": "active",
            "changed": ["description", "workflow_name"],
        }

    async def test_put_needs_every_required_field(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            partial = await http.put(
                f"/api/workflows/{workflow['id']}/", json={"workflow_name": "Only"}
            )
            full = await http.put(
                f"/api/workflows/{workflow['id']}/",
                json={
                    "client": client_a["id"],
                    "workflow_name": "Whole",
                    "n8n_workflow_id": workflow["n8n_workflow_id"],
                },
            )

        assert partial.status_code == 400
        assert partial.json() == {
            "client": ["This field is required."],
            "n8n_workflow_id": ["This field is required."],
        }
        assert full.status_code == 200 and full.json()["workflow_name"] == "Whole"

    async def test_a_generated_url_follows_a_new_n8n_id(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])
        new_id = bench.unique("WF")

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/", json={"n8n_workflow_id": new_id}
            )

        assert (
            response.json()["n8n_workflow_url"]
            == f"https://n8n.monoliet.cloud/workflow/{new_id}"
        )

    async def test_staff_can_set_status_error_and_the_event_shows_entering_it(
        self, bench, client_a
    ):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/", json={"status": "error"}
            )

        assert response.status_code == 200 and response.json()["status"] == "error"
        updated = await bench.eventually(
            lambda: bench.events_about("workflow.updated", workflow["id"])
        )
        assert updated[-1]["data"]["status"] == "error"
        assert updated[-1]["data"]["previous_status"] == "active"
        assert updated[-1]["data"]["changed"] == ["status"]

    async def test_unknown_and_malformed_ids_are_not_found(self, bench):
        async with bench.admin as http:
            missing = await http.patch(
                f"/api/workflows/{uuid.uuid4()}/", json={"status": "paused"}
            )
            malformed = await http.get("/api/workflows/not-a-uuid/")
            delete_missing = await http.delete(f"/api/workflows/{uuid.uuid4()}/")

        for response in (missing, malformed, delete_missing):
            assert (response.status_code, response.json()) == (404, NOT_FOUND)

    async def test_delete_removes_the_workflow_and_its_records(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])
        record = await add_record(bench, workflow, "2024-03-01", 3, 3, 0)

        async with bench.admin as http:
            deleted = await http.delete(f"/api/workflows/{workflow['id']}/")
            gone = await http.get(f"/api/workflows/{workflow['id']}/")
            record_gone = await http.get(f"/api/executions/{record['id']}/")

        assert deleted.status_code == 204
        assert gone.status_code == 404
        assert record_gone.status_code == 404
        announced = await bench.eventually(
            lambda: bench.events_about("workflow.deleted", workflow["id"])
        )
        assert announced[0]["data"] == {
            "id": workflow["id"],
            "client_id": client_a["id"],
            "status": "active",
        }


class TestActivate:
    @pytest.mark.parametrize("status", ["paused", "active"])
    async def test_staff_set_active_or_paused(self, bench, client_a, status):
        workflow = await bench.create_workflow(
            client_a["id"], status="paused" if status == "active" else "active"
        )

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/activate/", json={"status": status}
            )

        assert response.status_code == 200
        assert list(response.json()) == WORKFLOW_FIELDS
        assert response.json()["status"] == status
        assert (await bench.workflow(workflow["id"]))["status"] == status

    async def test_form_data_works_too(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/activate/", data={"status": "paused"}
            )

        assert response.status_code == 200 and response.json()["status"] == "paused"

    @pytest.mark.parametrize(
        "body",
        [
            {"status": "error"},
            {"status": "bogus"},
            {"status": "Active"},
            {},
            {"status": None},
            [1],
        ],
    )
    async def test_anything_else_gets_the_reference_body(self, bench, client_a, body):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{workflow['id']}/activate/", json=body
            )

        assert response.status_code == 400
        assert response.json() == ACTIVATE_ERROR
        assert (await bench.workflow(workflow["id"]))["status"] == "active"

    async def test_an_unknown_workflow_is_not_found_first(self, bench):
        async with bench.admin as http:
            response = await http.patch(
                f"/api/workflows/{uuid.uuid4()}/activate/", json={"status": "bogus"}
            )

        assert (response.status_code, response.json()) == (404, NOT_FOUND)

    async def test_other_methods_are_not_allowed(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.post(
                f"/api/workflows/{workflow['id']}/activate/", json={"status": "paused"}
            )

        assert (response.status_code, response.json()) == (
            405,
            {"detail": 'Method "POST" not allowed.'},
        )


class TestSuccessRate:
    async def test_rounded_over_the_last_30_records_and_null_without_any(
        self, bench, client_a
    ):
        empty = await bench.create_workflow(client_a["id"])
        workflow = await bench.create_workflow(client_a["id"])
        # 30 recent days with 2 of 3 successes, and an older bad day that
        # falls outside the last 30 records.
        await add_record(bench, workflow, "2023-12-01", 100, 0, 100)
        start = dt.date(2024, 1, 1)
        await asyncio.gather(
            *(
                add_record(
                    bench, workflow, (start + dt.timedelta(days=n)).isoformat(), 3, 2, 1
                )
                for n in range(30)
            )
        )

        assert (await bench.workflow(empty["id"]))["success_rate"] is None
        assert (await bench.workflow(workflow["id"]))["success_rate"] == 66.67
        async with bench.admin as http:
            listed = (
                await http.get(
                    "/api/workflows/",
                    params={"client": client_a["id"], "page_size": 100},
                )
            ).json()
        rates = {w["id"]: w["success_rate"] for w in listed["results"]}
        assert rates[workflow["id"]] == 66.67
        assert rates[empty["id"]] is None

    async def test_records_that_count_nothing_give_zero(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])
        await add_record(bench, workflow, "2024-01-01", 0, 0, 0)

        assert (await bench.workflow(workflow["id"]))["success_rate"] == 0.0


class TestExecutionRecords:
    async def test_staff_record_a_day_and_get_the_full_record(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])

        record = await add_record(bench, workflow, "2024-01-17", 50, 49, 1)

        assert list(record) == RECORD_FIELDS
        assert record["client"] == client_a["id"]
        assert record["client_name"] == client_a["company_name"]
        assert record["workflow"] == workflow["id"]
        assert record["workflow_name"] == workflow["workflow_name"]
        assert record["execution_date"] == "2024-01-17"
        assert (
            record["total_count"],
            record["success_count"],
            record["error_count"],
        ) == (50, 49, 1)
        assert record["success_rate"] == 98.0
        assert record["created_at"].endswith("Z")

    async def test_counts_default_to_zero_and_a_zero_total_rates_zero(
        self, bench, client_a
    ):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.post(
                "/api/executions/",
                json={
                    "client": client_a["id"],
                    "workflow": workflow["id"],
                    "execution_date": "2024-01-01",
                },
            )

        assert response.status_code == 201
        assert (response.json()["total_count"], response.json()["success_rate"]) == (
            0,
            0.0,
        )

    async def test_one_record_per_workflow_and_date(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])
        await add_record(bench, workflow, "2024-01-17", 1, 1, 0)

        async with bench.admin as http:
            response = await http.post(
                "/api/executions/",
                json={
                    "client": client_a["id"],
                    "workflow": workflow["id"],
                    "execution_date": "2024-01-17",
                    "total_count": 2,
                },
            )

        assert response.status_code == 400
        assert response.json() == {
            "non_field_errors": [
                "The fields workflow, execution_date must make a unique set."
            ]
        }

    @pytest.mark.parametrize(
        ("counts", "errors"),
        [
            (
                {"total_count": -1, "success_count": "a", "error_count": 2147483648},
                {
                    "total_count": ["Ensure this value is greater than or equal to 0."],
                    "success_count": ["A valid integer is required."],
                    "error_count": [
                        "Ensure this value is less than or equal to 2147483647."
                    ],
                },
            ),
            (
                {"total_count": 5, "success_count": 4, "error_count": 2},
                {
                    "non_field_errors": [
                        "success_count + error_count must not exceed total_count."
                    ]
                },
            ),
        ],
    )
    async def test_counts_must_be_non_negative_and_add_up(
        self, bench, client_a, counts, errors
    ):
        workflow = await bench.create_workflow(client_a["id"])

        async with bench.admin as http:
            response = await http.post(
                "/api/executions/",
                json={
                    "client": client_a["id"],
                    "workflow": workflow["id"],
                    "execution_date": "2024-01-17",
                    **counts,
                },
            )

        assert response.status_code == 400
        assert response.json() == errors

    async def test_the_workflow_must_belong_to_the_client(
        self, bench, client_a, client_b
    ):
        workflow = await bench.create_workflow(client_b["id"])

        async with bench.admin as http:
            response = await http.post(
                "/api/executions/",
                json={
                    "client": client_a["id"],
                    "workflow": workflow["id"],
                    "execution_date": "2024-01-17",
                },
            )

        assert response.status_code == 400
        assert response.json() == {
            "non_field_errors": ["The workflow does not belong to this client."]
        }

    async def test_unknown_and_malformed_references_are_named(self, bench, client_a):
        missing = str(uuid.uuid4())

        async with bench.admin as http:
            unknown = await http.post(
                "/api/executions/",
                json={
                    "client": missing,
                    "workflow": missing,
                    "execution_date": "2024-01-17",
                },
            )
            malformed = await http.post(
                "/api/executions/",
                json={
                    "client": client_a["id"],
                    "workflow": True,
                    "execution_date": "17/01/2024",
                },
            )
            missing_fields = await http.post("/api/executions/", json={})

        assert unknown.status_code == 400
        assert unknown.json() == {
            "client": [f'Invalid pk "{missing}" - object does not exist.'],
            "workflow": [f'Invalid pk "{missing}" - object does not exist.'],
        }
        assert malformed.json() == {
            "workflow": ["Incorrect type. Expected pk value, received bool."],
            "execution_date": [
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
            ],
        }
        assert missing_fields.json() == {
            "client": ["This field is required."],
            "workflow": ["This field is required."],
            "execution_date": ["This field is required."],
        }

    async def test_records_cannot_be_changed_or_deleted(self, bench, shared):
        record_id = shared["record_a"]["id"]

        async with bench.admin as http:
            answers = [
                await http.request(m, f"/api/executions/{record_id}/", json={})
                for m in ("PUT", "PATCH", "DELETE")
            ]

        assert [a.status_code for a in answers] == [405, 405, 405]

    async def test_list_filters_and_names(self, bench, client_a):
        workflow = await bench.create_workflow(client_a["id"])
        other = await bench.create_workflow(client_a["id"])
        await add_record(bench, workflow, "2024-05-01", 4, 3, 1)
        await add_record(bench, workflow, "2024-05-02", 2, 2, 0)
        await add_record(bench, other, "2024-05-01", 1, 0, 1)

        async with bench.admin as http:
            by_workflow = (
                await http.get("/api/executions/", params={"workflow": workflow["id"]})
            ).json()
            by_date = (
                await http.get(
                    "/api/executions/",
                    params={"execution_date": "2024-05-01", "client": client_a["id"]},
                )
            ).json()

        assert [r["execution_date"] for r in by_workflow["results"]] == [
            "2024-05-02",
            "2024-05-01",
        ]
        assert by_workflow["results"][1]["success_rate"] == 75.0
        assert {r["workflow_name"] for r in by_date["results"]} == {
            workflow["workflow_name"],
            other["workflow_name"],
        }
        assert {r["client_name"] for r in by_date["results"]} == {
            client_a["company_name"]
        }


class TestStats:
    async def test_default_period_is_30_days_ending_today(self, bench):
        before = dt.datetime.now(dt.UTC).date()

        async with bench.admin as http:
            response = await http.get("/api/executions/stats/")

        after = dt.datetime.now(dt.UTC).date()
        body = response.json()
        assert list(body) == [
            "total_executions",
            "total_successes",
            "total_errors",
            "success_rate",
            "period_start",
            "period_end",
        ]
        today = dt.date.fromisoformat(body["period_end"])
        assert today in (before, after)
        assert body["period_start"] == (today - dt.timedelta(days=30)).isoformat()

    async def test_days_1_counts_today_and_the_record_on_period_start_only(self, bench):
        client = await bench.create_client()
        token = await bench.client_user(client["id"])
        workflow = await bench.create_workflow(client["id"])
        today = dt.datetime.now(dt.UTC).date()
        await add_record(bench, workflow, today.isoformat(), 3, 2, 1)
        await add_record(
            bench, workflow, (today - dt.timedelta(days=1)).isoformat(), 5, 5, 0
        )
        await add_record(
            bench, workflow, (today - dt.timedelta(days=2)).isoformat(), 100, 0, 100
        )
        await add_record(
            bench, workflow, (today + dt.timedelta(days=1)).isoformat(), 100, 0, 100
        )

        async with bench.portal.client(token) as http:
            response = await http.get("/api/executions/stats/", params={"days": "1"})

        body = response.json()
        if body["period_end"] != today.isoformat():  # the day turned during the test
            pytest.fail("the UTC day changed while the test ran; run it again")
        assert body == {
            "total_executions": 8,
            "total_successes": 7,
            "total_errors": 1,
            "success_rate": 87.5,
            "period_start": (today - dt.timedelta(days=1)).isoformat(),
            "period_end": today.isoformat(),
        }

    async def test_rate_is_rounded_and_zero_without_executions(self, bench):
        client = await bench.create_client()
        token = await bench.client_user(client["id"])
        workflow = await bench.create_workflow(client["id"])
        today = dt.datetime.now(dt.UTC).date()

        async with bench.portal.client(token) as http:
            empty = (await http.get("/api/executions/stats/")).json()
            await add_record(
                bench, workflow, (today - dt.timedelta(days=3)).isoformat(), 3, 2, 1
            )
            rounded = (await http.get("/api/executions/stats/")).json()

        assert (empty["total_executions"], empty["success_rate"]) == (0, 0.0)
        assert (rounded["total_executions"], rounded["success_rate"]) == (3, 66.67)

    async def test_staff_filter_by_client_and_workflow_and_client_users_always_get_their_own(
        self, bench, client_a
    ):
        client = await bench.create_client()
        token = await bench.client_user(client["id"])
        first = await bench.create_workflow(client["id"])
        second = await bench.create_workflow(client["id"])
        today = dt.datetime.now(dt.UTC).date().isoformat()
        await add_record(bench, first, today, 10, 9, 1)
        await add_record(bench, second, today, 4, 1, 3)

        async with bench.admin as http:
            by_client = (
                await http.get(
                    "/api/executions/stats/", params={"client": client["id"]}
                )
            ).json()
            by_workflow = (
                await http.get(
                    "/api/executions/stats/", params={"workflow": second["id"]}
                )
            ).json()
        async with bench.portal.client(token) as http:
            own = (await http.get("/api/executions/stats/")).json()
            asked_for_other = (
                await http.get(
                    "/api/executions/stats/", params={"client": client_a["id"]}
                )
            ).json()

        assert (
            by_client["total_executions"],
            by_client["total_successes"],
            by_client["total_errors"],
        ) == (14, 10, 4)
        assert (by_workflow["total_executions"], by_workflow["success_rate"]) == (
            4,
            25.0,
        )
        assert own["total_executions"] == 14
        assert asked_for_other == own

    @pytest.mark.parametrize(
        ("days", "message"),
        [
            ("0", "Ensure this value is greater than or equal to 1."),
            ("-5", "Ensure this value is greater than or equal to 1."),
            ("3651", "Ensure this value is less than or equal to 3650."),
            ("abc", "A valid integer is required."),
            ("1.5", "A valid integer is required."),
            ("9" * 30, "Ensure this value is less than or equal to 3650."),
        ],
    )
    async def test_days_out_of_range_are_refused(self, bench, days, message):
        async with bench.admin as http:
            response = await http.get("/api/executions/stats/", params={"days": days})

        assert response.status_code == 400
        assert response.json() == {"days": [message]}

    async def test_the_widest_period_is_accepted(self, bench):
        async with bench.admin as http:
            response = await http.get("/api/executions/stats/", params={"days": "3650"})

        assert response.status_code == 200

    async def test_bad_staff_filters_get_the_list_answers(self, bench):
        async with bench.admin as http:
            malformed = await http.get(
                "/api/executions/stats/", params={"workflow": "abc"}
            )
            unknown = await http.get(
                "/api/executions/stats/", params={"client": str(uuid.uuid4())}
            )

        assert malformed.json() == {
            "workflow": ["\u201cabc\u201d is not a valid UUID."]
        }
        assert unknown.json() == {
            "client": [
                "Select a valid choice. That choice is not one of the available choices."
            ]
        }
