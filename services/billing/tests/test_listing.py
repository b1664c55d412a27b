"""Cases C01, C03 and C04 (shared/cases/README.md) on /api/invoices/."""

import asyncio
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest


@pytest.fixture(scope="module")
async def paged_client(billing):
    """A client with 120 invoices, so `?client=<id>` lists exactly those."""
    client = await billing.make_client()
    async with billing.staff() as http:
        for _ in range(6):
            responses = await asyncio.gather(
                *(
                    http.post("/api/invoices/", json=billing.invoice_body(client["id"]))
                    for _ in range(20)
                )
            )
            assert {r.status_code for r in responses} == {201}
    return client


def query_of(link: str | None) -> dict[str, list[str]] | None:
    if link is None:
        return None
    parts = urlsplit(link)
    assert parts.path == "/api/invoices/"
    return parse_qs(parts.query, keep_blank_values=True)


class TestC01Paging:
    async def get(self, billing, client_id: str, query: str):
        async with billing.staff() as http:
            return await http.get(f"/api/invoices/?client={client_id}&{query}")

    async def test_first_page_has_fifty_and_a_next_link(self, billing, paged_client):
        response = await self.get(billing, paged_client["id"], "page=1")

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 120
        assert len(body["results"]) == 50
        assert body["next"].startswith(billing.portal.url + "/api/invoices/?")
        assert query_of(body["next"]) == {"client": [paged_client["id"]], "page": ["2"]}
        assert body["previous"] is None

    @pytest.mark.parametrize("page", ["3", "last"])
    async def test_last_page_has_the_rest(self, billing, paged_client, page):
        body = (await self.get(billing, paged_client["id"], f"page={page}")).json()

        assert len(body["results"]) == 20
        assert body["next"] is None
        assert query_of(body["previous"]) == {
            "client": [paged_client["id"]],
            "page": ["2"],
        }

    @pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.0", ""])
    async def test_a_page_that_is_not_there_is_404(self, billing, paged_client, page):
        response = await self.get(billing, paged_client["id"], f"page={page}")

        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid page."}

    @pytest.mark.parametrize("size", ["0", "-5", "abc", ""])
    async def test_a_junk_page_size_means_the_default(
        self, billing, paged_client, size
    ):
        body = (await self.get(billing, paged_client["id"], f"page_size={size}")).json()

        assert len(body["results"]) == 50
        assert query_of(body["next"]) == {
            "client": [paged_client["id"]],
            "page": ["2"],
            "page_size": [size],
        }

    @pytest.mark.parametrize("size", ["101", "1000"])
    async def test_a_large_page_size_is_capped_at_100(
        self, billing, paged_client, size
    ):
        body = (await self.get(billing, paged_client["id"], f"page_size={size}")).json()

        assert body["count"] == 120
        assert len(body["results"]) == 100

    async def test_second_page_of_100_links_back_without_a_page(
        self, billing, paged_client
    ):
        body = (
            await self.get(billing, paged_client["id"], "page_size=100&page=2")
        ).json()

        assert len(body["results"]) == 20
        assert query_of(body["previous"]) == {
            "client": [paged_client["id"]],
            "page_size": ["100"],
        }

    async def test_pages_do_not_overlap_and_follow_the_default_order(
        self, billing, paged_client
    ):
        pages = [
            (await self.get(billing, paged_client["id"], f"page={page}")).json()[
                "results"
            ]
            for page in (1, 2, 3)
        ]

        rows = [row for page in pages for row in page]
        assert len({row["id"] for row in rows}) == 120
        keys = [
            (datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")), row["id"])
            for row in rows
        ]
        assert keys == sorted(keys, reverse=True)


class TestC03OrderingAndSearch:
    @pytest.mark.parametrize(
        "ordering",
        [
            "bogus",
            "--created_at",
            "client_name",
            "stripe_invoice_id",
            "created_at,bogus",
            "-amount,due_date",
        ],
    )
    async def test_any_ordering_is_200(self, billing, paged_client, ordering):
        async with billing.staff() as http:
            response = await http.get(
                "/api/invoices/",
                params={"client": paged_client["id"], "ordering": ordering},
            )

        assert response.status_code == 200
        assert response.json()["count"] == 120

    async def test_orderings_sort_by_the_named_fields(self, billing):
        client = await billing.make_client()
        cheap = await billing.create_invoice(
            client["id"], amount="5", due_date="2099-03-01"
        )
        dear = await billing.create_invoice(
            client["id"], amount="500", due_date="2099-01-01"
        )
        middle = await billing.create_invoice(
            client["id"], amount="50", due_date="2099-02-01"
        )

        async def order(ordering: str) -> list[str]:
            async with billing.staff() as http:
                response = await http.get(
                    "/api/invoices/",
                    params={"client": client["id"], "ordering": ordering},
                )
            return [row["id"] for row in response.json()["results"]]

        assert await order("amount") == [cheap["id"], middle["id"], dear["id"]]
        assert await order("-amount,due_date") == [
            dear["id"],
            middle["id"],
            cheap["id"],
        ]
        assert await order("due_date") == [dear["id"], middle["id"], cheap["id"]]
        assert await order("invoice_number") == [cheap["id"], dear["id"], middle["id"]]
        assert await order("bogus") == [middle["id"], dear["id"], cheap["id"]]
        assert await order("--created_at") == await order("-created_at")

    async def test_search_finds_an_invoice_by_its_number(self, billing):
        client = await billing.make_client()
        invoice = await billing.create_invoice(client["id"])
        number = invoice["invoice_number"]

        async def found(search: str) -> list[str]:
            async with billing.staff() as http:
                response = await http.get(
                    "/api/invoices/", params={"client": client["id"], "search": search}
                )
            assert response.status_code == 200
            return [row["invoice_number"] for row in response.json()["results"]]

        assert await found(number) == [number]
        assert await found(number.lower()) == [number]
        assert await found(f"inv {number.rsplit('-', 1)[1]}") == [number]
        assert await found(f"{number}\x00") == [number]
        assert await found("   ") == [number]
        assert await found(f'"{number}"') == []
        assert await found("INV-1999") == []


class TestC04MalformedFilters:
    async def get(self, token: str, billing, **params):
        async with billing.portal.client(token) as http:
            return await http.get("/api/invoices/", params=params)

    @pytest.mark.parametrize(
        ("params", "body"),
        [
            (
                {"status": "bogus"},
                {
                    "status": [
                        "Select a valid choice. bogus is not one of the available choices."
                    ]
                },
            ),
            (
                {"status": "PAID"},
                {
                    "status": [
                        "Select a valid choice. PAID is not one of the available choices."
                    ]
                },
            ),
            (
                {"type": "yearly"},
                {
                    "type": [
                        "Select a valid choice. yearly is not one of the available choices."
                    ]
                },
            ),
            (
                {"client": "not-a-uuid"},
                {"client": ["\u201cnot-a-uuid\u201d is not a valid UUID."]},
            ),
            (
                {"client": "00000000-0000-0000-0000-000000000000"},
                {
                    "client": [
                        "Select a valid choice. That choice is not one of the available choices."
                    ]
                },
            ),
            (
                {"status": "bogus", "client": "abc"},
                {
                    "status": [
                        "Select a valid choice. bogus is not one of the available choices."
                    ],
                    "client": ["\u201cabc\u201d is not a valid UUID."],
                },
            ),
        ],
    )
    async def test_bad_filter_values_are_400(self, billing, params, body):
        response = await self.get(billing.portal.admin_token, billing, **params)

        assert response.status_code == 400
        assert response.json() == body

    async def test_empty_values_mean_no_filter(self, billing, paged_client):
        response = await self.get(
            billing.portal.admin_token,
            billing,
            client=paged_client["id"],
            status="",
            type="",
        )

        assert response.status_code == 200
        assert response.json()["count"] == 120

    @pytest.mark.parametrize("form", ["upper", "hex"])
    async def test_a_client_id_in_another_spelling_filters_normally(
        self, billing, paged_client, form
    ):
        client_id = uuid.UUID(paged_client["id"])
        spelled = str(client_id).upper() if form == "upper" else client_id.hex

        response = await self.get(billing.portal.admin_token, billing, client=spelled)

        assert response.status_code == 200
        assert response.json()["count"] == 120

    async def test_a_client_user_filtering_by_any_other_id_gets_an_empty_page(
        self, billing, paged_client
    ):
        own = await billing.make_client()
        invoice = await billing.create_invoice(own["id"])
        token = await billing.client_user(own["id"])

        others = [
            paged_client["id"],
            str(uuid.uuid4()),
            "00000000-0000-0000-0000-000000000000",
        ]
        answers = [await self.get(token, billing, client=other) for other in others]
        mine = await self.get(token, billing, client=own["id"])
        bogus = await self.get(token, billing, client="abc")

        for answer in answers:
            assert answer.status_code == 200
            assert answer.json() == {
                "count": 0,
                "next": None,
                "previous": None,
                "results": [],
            }
        assert [row["id"] for row in mine.json()["results"]] == [invoice["id"]]
        assert bogus.status_code == 400
        assert bogus.json() == {"client": ["\u201cabc\u201d is not a valid UUID."]}

    async def test_type_and_status_filters_are_exact(self, billing):
        client = await billing.make_client()
        setup = await billing.create_invoice(client["id"], type="setup")
        await billing.create_invoice(client["id"], type="monthly", status="paid")

        response = await self.get(
            billing.portal.admin_token, billing, client=client["id"], type="setup"
        )
        pending = await self.get(
            billing.portal.admin_token, billing, client=client["id"], status="pending"
        )

        assert [row["id"] for row in response.json()["results"]] == [setup["id"]]
        assert [row["id"] for row in pending.json()["results"]] == [setup["id"]]
