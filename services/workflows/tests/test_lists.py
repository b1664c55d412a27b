"""Cases C01, C03 and C04 on /api/workflows/ and /api/executions/."""

import asyncio
import datetime as dt
import uuid
from urllib.parse import urlencode

import pytest

INVALID_PAGE = {"detail": "Invalid page."}
UNKNOWN_CHOICE = [
    "Select a valid choice. That choice is not one of the available choices."
]


@pytest.fixture(scope="module")
async def hundred_twenty(bench):
    """120 workflows of one client, and 120 daily records of one workflow."""
    client = await bench.create_client()
    limit = asyncio.Semaphore(8)

    async def workflow(n: int) -> dict:
        async with limit:
            return await bench.create_workflow(
                client["id"], workflow_name=f"Flow {n:03d}"
            )

    async def record(workflow_id: str, day: dt.date) -> None:
        async with limit, bench.admin as http:
            response = await http.post(
                "/api/executions/",
                json={
                    "client": client["id"],
                    "workflow": workflow_id,
                    "execution_date": day.isoformat(),
                    "total_count": 1,
                },
            )
        assert response.status_code == 201, response.text

    flows = await asyncio.gather(*(workflow(n) for n in range(120)))
    start = dt.date(2023, 1, 1)
    await asyncio.gather(
        *(record(flows[0]["id"], start + dt.timedelta(days=n)) for n in range(120))
    )
    return {
        "workflows": ("/api/workflows/", "client", client["id"]),
        "executions": ("/api/executions/", "workflow", flows[0]["id"]),
    }


@pytest.mark.parametrize("resource", ["workflows", "executions"])
class TestC01Paging:
    async def get(self, bench, seeded, resource, query: str):
        """The answer, and a function giving a link with the filter plus `params`."""
        path, name, value = seeded[resource]
        async with bench.admin as http:
            response = await http.get(f"{path}?{name}={value}&{query}")

        def link(**params: str) -> str:
            # DRF re-encodes the query sorted by name.
            query = urlencode(sorted({name: value, **params}.items()))
            return f"{bench.portal.url}{path}?{query}"

        return response, link

    async def test_first_page(self, bench, hundred_twenty, resource):
        response, base = await self.get(bench, hundred_twenty, resource, "page=1")

        body = response.json()
        assert (response.status_code, body["count"], len(body["results"])) == (
            200,
            120,
            50,
        )
        assert body["next"] == base(page="2")
        assert body["previous"] is None

    @pytest.mark.parametrize("page", ["3", "last"])
    async def test_last_page(self, bench, hundred_twenty, resource, page):
        response, base = await self.get(bench, hundred_twenty, resource, f"page={page}")

        body = response.json()
        assert (response.status_code, len(body["results"])) == (200, 20)
        assert body["next"] is None
        assert body["previous"] == base(page="2")

    @pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.0", ""])
    async def test_pages_that_do_not_exist(self, bench, hundred_twenty, resource, page):
        response, _ = await self.get(bench, hundred_twenty, resource, f"page={page}")

        assert (response.status_code, response.json()) == (404, INVALID_PAGE)

    @pytest.mark.parametrize("size", ["0", "-5", "abc", ""])
    async def test_odd_page_sizes_give_the_default(
        self, bench, hundred_twenty, resource, size
    ):
        response, base = await self.get(
            bench, hundred_twenty, resource, f"page_size={size}"
        )

        body = response.json()
        assert (response.status_code, len(body["results"])) == (200, 50)
        assert body["next"] == base(page="2", page_size=size)

    @pytest.mark.parametrize("size", ["101", "1000"])
    async def test_large_page_sizes_are_capped(
        self, bench, hundred_twenty, resource, size
    ):
        response, _ = await self.get(
            bench, hundred_twenty, resource, f"page_size={size}"
        )

        assert (response.json()["count"], len(response.json()["results"])) == (120, 100)

    async def test_second_page_of_100_links_back_without_page(
        self, bench, hundred_twenty, resource
    ):
        response, base = await self.get(
            bench, hundred_twenty, resource, "page_size=100&page=2"
        )

        body = response.json()
        assert len(body["results"]) == 20
        assert body["previous"] == base(page_size="100")


@pytest.fixture(scope="module")
async def acme(bench):
    """Three workflows of one client to search and order."""
    client = await bench.create_client()
    created = {}
    for name, n8n_id in (
        ("Acme Order Sync", "acme-001"),
        ("Acme Widgets Export", "w-002"),
        ("Globex Report", "ACME-003"),
    ):
        suffix = uuid.uuid4().hex[:6]
        created[name] = await bench.create_workflow(
            client["id"], workflow_name=name, n8n_workflow_id=f"{n8n_id}-{suffix}"
        )
    reports = [
        bench.execution(
            f"c03-{uuid.uuid4().hex}",
            created[name]["n8n_workflow_id"],
            started_at=moment,
            stopped_at=moment,
        )
        for name, moment in (
            ("Acme Order Sync", "2025-03-01T10:00:00Z"),
            ("Globex Report", "2025-03-02T10:00:00Z"),
        )
    ]
    async with bench.admin as http:
        assert (
            await http.post("/api/executions/events/", json=reports)
        ).status_code == 202
    await bench.settled()
    return client


class TestC03OrderingAndSearch:
    async def names(self, bench, client, **params) -> list[str]:
        async with bench.admin as http:
            response = await http.get(
                "/api/workflows/", params={"client": client["id"], **params}
            )
        assert response.status_code == 200, response.text
        return [workflow["workflow_name"] for workflow in response.json()["results"]]

    @pytest.mark.parametrize(
        "ordering", ["bogus", "--created_at", "n8n_workflow_url", ","]
    )
    async def test_unknown_terms_fall_back_to_newest_first(self, bench, acme, ordering):
        names = await self.names(bench, acme, ordering=ordering)

        assert names == ["Globex Report", "Acme Widgets Export", "Acme Order Sync"]

    async def test_known_terms_are_kept(self, bench, acme):
        assert await self.names(bench, acme, ordering="workflow_name,bogus") == [
            "Acme Order Sync",
            "Acme Widgets Export",
            "Globex Report",
        ]
        assert await self.names(bench, acme, ordering="-workflow_name") == [
            "Globex Report",
            "Acme Widgets Export",
            "Acme Order Sync",
        ]
        # PostgreSQL puts nulls last going up.
        assert await self.names(bench, acme, ordering="last_execution") == [
            "Acme Order Sync",
            "Globex Report",
            "Acme Widgets Export",
        ]

    @pytest.mark.parametrize(
        ("search", "expected"),
        [
            ("acme", {"Acme Order Sync", "Acme Widgets Export", "Globex Report"}),
            ("ACME order", {"Acme Order Sync"}),
            ("acme widgets", {"Acme Widgets Export"}),
            ("acme,widgets", {"Acme Widgets Export"}),
            ("acme   widgets", {"Acme Widgets Export"}),
            ("globex\x00", {"Globex Report"}),
            ("  ", {"Acme Order Sync", "Acme Widgets Export", "Globex Report"}),
            ('"acme order"', set()),
            ("100%", set()),
        ],
    )
    async def test_every_word_must_match_some_field(
        self, bench, acme, search, expected
    ):
        assert set(await self.names(bench, acme, search=search)) == expected

    async def test_execution_ordering_and_an_ignored_search(self, bench, acme):
        workflow = await bench.create_workflow(acme["id"])
        for day, total in (("2024-01-01", 5), ("2024-01-02", 9), ("2024-01-03", 1)):
            async with bench.admin as http:
                response = await http.post(
                    "/api/executions/",
                    json={
                        "client": acme["id"],
                        "workflow": workflow["id"],
                        "execution_date": day,
                        "total_count": total,
                    },
                )
            assert response.status_code == 201

        async def totals(**params) -> list[int]:
            async with bench.admin as http:
                response = await http.get(
                    "/api/executions/", params={"workflow": workflow["id"], **params}
                )
            return [record["total_count"] for record in response.json()["results"]]

        assert await totals() == [1, 9, 5]
        assert await totals(ordering="total_count") == [1, 5, 9]
        assert await totals(ordering="-total_count") == [9, 5, 1]
        assert await totals(ordering="success_count") == [1, 9, 5]
        assert await totals(ordering="execution_date", search="nothing") == [5, 9, 1]


class TestC04MalformedFilters:
    @pytest.mark.parametrize(
        ("path", "query", "body"),
        [
            (
                "/api/workflows/",
                "client=not-a-uuid",
                {"client": ["\u201cnot-a-uuid\u201d is not a valid UUID."]},
            ),
            (
                "/api/workflows/",
                "client=00000000-0000-0000-0000-000000000000",
                {"client": UNKNOWN_CHOICE},
            ),
            (
                "/api/workflows/",
                "status=bogus",
                {
                    "status": [
                        "Select a valid choice. bogus is not one of the available choices."
                    ]
                },
            ),
            (
                "/api/workflows/",
                "status=ACTIVE",
                {
                    "status": [
                        "Select a valid choice. ACTIVE is not one of the available choices."
                    ]
                },
            ),
            (
                "/api/executions/",
                "execution_date=2024-02-30",
                {"execution_date": ["Enter a valid date."]},
            ),
            (
                "/api/executions/",
                "execution_date=2024-13-45",
                {"execution_date": ["Enter a valid date."]},
            ),
            (
                "/api/executions/",
                "execution_date=17/01/2024",
                {"execution_date": ["Enter a valid date."]},
            ),
            (
                "/api/executions/",
                "workflow=abc",
                {"workflow": ["\u201cabc\u201d is not a valid UUID."]},
            ),
            (
                "/api/executions/",
                "workflow=abc&client=x&execution_date=no",
                {
                    "execution_date": ["Enter a valid date."],
                    "client": ["\u201cx\u201d is not a valid UUID."],
                    "workflow": ["\u201cabc\u201d is not a valid UUID."],
                },
            ),
        ],
    )
    async def test_exact_400_bodies(self, bench, path, query, body):
        async with bench.admin as http:
            response = await http.get(f"{path}?{query}")

        assert (response.status_code, response.json()) == (400, body)

    @pytest.mark.parametrize("form", ["upper", "hex"])
    async def test_other_spellings_of_a_uuid_filter_normally(
        self, bench, shared_pair, form
    ):
        client_id = shared_pair["client_a"]["id"]
        spelled = client_id.upper() if form == "upper" else uuid.UUID(client_id).hex

        async with bench.admin as http:
            response = await http.get("/api/workflows/", params={"client": spelled})

        assert response.status_code == 200
        assert {w["client"] for w in response.json()["results"]} == {client_id}
        assert response.json()["count"] >= 1

    async def test_empty_values_mean_no_filter(self, bench):
        async with bench.admin as http:
            plain = (await http.get("/api/workflows/")).json()["count"]
            empty = await http.get("/api/workflows/?status=&client=")

        assert (empty.status_code, empty.json()["count"]) == (200, plain)

    @pytest.mark.parametrize(
        "path", ["/api/workflows/not-a-uuid/", "/api/executions/not-a-uuid/"]
    )
    async def test_malformed_ids_in_paths_are_not_found(self, bench, path):
        async with bench.admin as http:
            response = await http.get(path)

        assert (response.status_code, response.json()) == (
            404,
            {"detail": "Not found."},
        )

    @pytest.mark.parametrize("path", ["/api/workflows/", "/api/executions/"])
    async def test_a_client_user_gets_an_empty_page_for_any_other_client(
        self, bench, shared_pair, path
    ):
        own = shared_pair["client_a"]
        other = shared_pair["client_b"]["id"]

        async with bench.portal.client(own["token"]) as http:
            foreign = await http.get(path, params={"client": other})
            random = await http.get(path, params={"client": str(uuid.uuid4())})
            mine = await http.get(path, params={"client": own["id"]})

        for response in (foreign, random):
            assert response.status_code == 200
            assert response.json() == {
                "count": 0,
                "next": None,
                "previous": None,
                "results": [],
            }
        assert mine.json()["count"] >= 1
        assert {row["client"] for row in mine.json()["results"]} == {own["id"]}

    async def test_a_client_user_cannot_probe_other_workflows_by_filter(
        self, bench, shared_pair
    ):
        async with bench.portal.client(shared_pair["client_a"]["token"]) as http:
            foreign = await http.get(
                "/api/executions/", params={"workflow": shared_pair["workflow_b"]["id"]}
            )
            missing = await http.get(
                "/api/executions/", params={"workflow": str(uuid.uuid4())}
            )

        assert foreign.status_code == missing.status_code == 400
        assert foreign.json() == missing.json() == {"workflow": UNKNOWN_CHOICE}


@pytest.fixture(scope="module")
async def shared_pair(bench, client_a, client_b):
    """A workflow and a record for each of clients A and B."""
    pair = {"client_a": client_a, "client_b": client_b}
    for key, client in (("workflow_a", client_a), ("workflow_b", client_b)):
        workflow = await bench.create_workflow(client["id"])
        async with bench.admin as http:
            response = await http.post(
                "/api/executions/",
                json={
                    "client": client["id"],
                    "workflow": workflow["id"],
                    "execution_date": "2024-06-01",
                },
            )
        assert response.status_code == 201
        pair[key] = workflow
    return pair
