"""Paging, filters, search and ordering of clients and credentials (C01, C03, C04).

These need exact counts, so they run on a portal of their own with nothing
but the rows seeded here: 120 clients (the three of C03 among them) and 120
credentials of one client.
"""

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from portal_common.testing.plugin import start_portal


def not_a_choice(value: str) -> str:
    return f"Select a valid choice. {value} is not one of the available choices."


UNKNOWN_CLIENT = (
    "Select a valid choice. That choice is not one of the available choices."
)

C03_CLIENTS = [
    ("Acme Corporation", "Jane Smith", "jane@acme.example", "299.00"),
    ("Acme Widgets", "John Roe", "john@widgets.example", "499.00"),
    ("Globex", "Jane Acme", "ops@globex.example", "299.00"),
]
TOTAL = 120


async def post_all(portal, path: str, bodies: list[dict]) -> list[dict]:
    """Create rows a few at a time (the order of creation does not matter here)."""
    created: list[dict] = []
    async with portal.client(portal.admin_token) as http:
        for start in range(0, len(bodies), 10):
            answers = await asyncio.gather(
                *(http.post(path, json=body) for body in bodies[start : start + 10])
            )
            for answer in answers:
                assert answer.status_code == 201, answer.text
                created.append(answer.json())
    return created


@pytest.fixture(scope="module")
async def listing(system_factory):
    portal = await start_portal(system_factory)
    seeds = [
        {
            "company_name": name,
            "contact_name": contact,
            "email": email,
            "plan_tier": "Business Process",
            "monthly_fee": fee,
            "billing_cycle": "yearly",
        }
        for name, contact, email, fee in C03_CLIENTS
    ]
    seeds += [
        {
            "company_name": f"Filler {index:03d}",
            "contact_name": "Pat Doe",
            "email": f"filler{index:03d}@example.com",
            "plan_tier": "E-commerce Essentials",
            "monthly_fee": f"{index % 7 * 100}.00",
            "status": "paused" if index % 3 == 0 else "active",
        }
        for index in range(TOTAL - len(seeds))
    ]
    clients = await post_all(portal, "/api/clients/", seeds)
    owner = next(c for c in clients if c["company_name"] == "Acme Corporation")
    other = next(c for c in clients if c["company_name"] == "Globex")
    credential_bodies = [
        {
            "client": owner["id"],
            "service_name": f"Service {index:03d}"
            + (" Shopify" if index % 4 == 0 else ""),
            "credential_type": "oauth" if index % 2 else "api_key",
            "data": {"key": f"k{index}"},
        }
        for index in range(TOTAL)
    ]
    credentials = await post_all(portal, "/api/credentials/", credential_bodies)
    await post_all(
        portal,
        "/api/credentials/",
        [
            {
                "client": other["id"],
                "service_name": "Globex CRM",
                "credential_type": "api_key",
                "data": {"k": "v"},
            }
        ],
    )
    return {
        "portal": portal,
        "clients": clients,
        "credentials": credentials,
        "owner": owner,
        "other": other,
        "owner_token": await portal.create_user(
            f"acme{uuid.uuid4().hex[:6]}", client=owner["id"]
        ),
    }


async def get(listing, path: str, params=None, *, token: str | None = None):
    portal = listing["portal"]
    async with portal.client(token or portal.admin_token) as http:
        return await http.get(path, params=params)


async def every_row(
    listing, path: str, params: dict, *, token: str | None = None
) -> list[dict]:
    rows, page = [], 1
    while True:
        body = (
            await get(
                listing, path, {**params, "page_size": 100, "page": page}, token=token
            )
        ).json()
        rows += body["results"]
        if body["next"] is None:
            return rows
        page += 1


def newest_first(rows: list[dict]) -> list[str]:
    # By time, not by text: "…:25Z" (a whole second) sorts after "…:25.224000Z"
    # as a string although it is earlier.
    return [
        row["id"]
        for row in sorted(
            rows,
            key=lambda r: (dt.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")), r["id"]),
            reverse=True,
        )
    ]


# The owner's credentials list has exactly 120 rows, so C01 reads the same there.
LISTS = {
    "clients": ("/api/clients/", None),
    "credentials": ("/api/credentials/", "owner_token"),
}


class TestC01Paging:
    @pytest.fixture(params=list(LISTS))
    def endpoint(self, request, listing):
        path, token_name = LISTS[request.param]
        return path, listing[token_name] if token_name else None

    async def test_the_first_page_has_fifty_and_a_next_link(self, listing, endpoint):
        path, token = endpoint
        body = (await get(listing, path, {"page": "1"}, token=token)).json()

        assert body["count"] == TOTAL
        assert len(body["results"]) == 50
        assert body["next"] == f"{listing['portal'].url}{path}?page=2"
        assert body["previous"] is None

    @pytest.mark.parametrize("page", ["3", "last"])
    async def test_the_last_page_has_the_rest(self, listing, endpoint, page):
        path, token = endpoint
        response = await get(listing, path, {"page": page}, token=token)

        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) == 20
        assert body["next"] is None
        assert body["previous"] == f"{listing['portal'].url}{path}?page=2"

    @pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.0", ""])
    async def test_a_page_that_is_not_there_is_404(self, listing, endpoint, page):
        path, token = endpoint
        response = await get(listing, path, {"page": page}, token=token)

        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid page."}

    @pytest.mark.parametrize("size", ["0", "-5", "abc", ""])
    async def test_an_odd_page_size_gives_the_default_and_is_echoed(
        self, listing, endpoint, size
    ):
        path, token = endpoint
        response = await get(listing, path, {"page_size": size}, token=token)

        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) == 50
        assert body["next"] == f"{listing['portal'].url}{path}?page=2&page_size={size}"

    @pytest.mark.parametrize("size", ["101", "1000"])
    async def test_a_large_page_size_is_clamped_to_100(self, listing, endpoint, size):
        path, token = endpoint
        body = (await get(listing, path, {"page_size": size}, token=token)).json()

        assert body["count"] == TOTAL
        assert len(body["results"]) == 100

    async def test_the_second_page_of_100_links_back_without_a_page_parameter(
        self, listing, endpoint
    ):
        path, token = endpoint
        body = (
            await get(listing, path, {"page_size": "100", "page": "2"}, token=token)
        ).json()

        assert len(body["results"]) == 20
        assert body["previous"] == f"{listing['portal'].url}{path}?page_size=100"

    async def test_pages_are_stable_and_cover_every_row_once(self, listing, endpoint):
        path, token = endpoint
        rows = await every_row(listing, path, {}, token=token)

        assert len({row["id"] for row in rows}) == TOTAL
        assert [row["id"] for row in rows] == newest_first(rows)


class TestC03Ordering:
    @pytest.mark.parametrize(
        "ordering", ["bogus", "--created_at", "email", "", ",", "-"]
    )
    async def test_unknown_or_malformed_terms_fall_back_to_newest_first(
        self, listing, ordering
    ):
        rows = await every_row(listing, "/api/clients/", {"ordering": ordering})

        assert [row["id"] for row in rows] == newest_first(listing["clients"])

    async def test_a_valid_term_beside_an_unknown_one_is_used(self, listing):
        rows = await every_row(
            listing, "/api/clients/", {"ordering": "company_name,bogus"}
        )

        expected = sorted(
            listing["clients"], key=lambda c: (c["company_name"], c["id"])
        )
        assert [row["id"] for row in rows] == [c["id"] for c in expected]

    async def test_fee_descending_then_name(self, listing):
        rows = await every_row(
            listing, "/api/clients/", {"ordering": "-monthly_fee,company_name"}
        )

        expected = sorted(
            listing["clients"],
            key=lambda c: (-Decimal(c["monthly_fee"]), c["company_name"]),
        )
        assert [row["id"] for row in rows] == [c["id"] for c in expected]

    async def test_created_at_ascending(self, listing):
        rows = await every_row(listing, "/api/clients/", {"ordering": "created_at"})

        assert [row["id"] for row in rows] == newest_first(listing["clients"])[::-1]

    @pytest.mark.parametrize("who", ["owner", "staff"])
    async def test_credentials_cannot_be_ordered_by_encrypted_data(self, listing, who):
        token = listing["owner_token"] if who == "owner" else None
        response = await get(
            listing,
            "/api/credentials/",
            {"ordering": "encrypted_data", "page_size": 100},
            token=token,
        )
        default = await get(
            listing, "/api/credentials/", {"page_size": 100}, token=token
        )

        assert response.status_code == 200
        assert [r["id"] for r in response.json()["results"]] == [
            r["id"] for r in default.json()["results"]
        ]

    async def test_credentials_order_by_service_name(self, listing):
        rows = await every_row(
            listing,
            "/api/credentials/",
            {"ordering": "-service_name", "client": listing["owner"]["id"]},
        )

        expected = sorted(
            listing["credentials"],
            key=lambda c: (c["service_name"], c["id"]),
            reverse=True,
        )
        assert [row["id"] for row in rows] == [c["id"] for c in expected]


class TestC03Search:
    @pytest.mark.parametrize(
        ("search", "companies"),
        [
            ("acme", {"Acme Corporation", "Acme Widgets", "Globex"}),
            ("ACME jane", {"Acme Corporation", "Globex"}),
            ("acme smith", {"Acme Corporation"}),
            ("acme,widgets", {"Acme Widgets"}),
            ("acme   widgets", {"Acme Widgets"}),
            ("jane\x00", {"Acme Corporation", "Globex"}),
            ('"acme corporation"', set()),
            ("widgets.example", {"Acme Widgets"}),
            ("100%", set()),
            ("_", set()),
        ],
    )
    async def test_every_word_must_match_some_field(self, listing, search, companies):
        response = await get(listing, "/api/clients/", {"search": search})

        assert response.status_code == 200
        assert {row["company_name"] for row in response.json()["results"]} == companies

    @pytest.mark.parametrize("search", ["  ", ""])
    async def test_blank_search_does_not_filter(self, listing, search):
        body = (await get(listing, "/api/clients/", {"search": search})).json()

        assert body["count"] == TOTAL

    async def test_credentials_search_service_name_only(self, listing):
        shopify = await get(
            listing,
            "/api/credentials/",
            {"search": "service SHOPIFY"},
            token=listing["owner_token"],
        )
        by_client_name = await get(
            listing,
            "/api/credentials/",
            {"search": "Acme"},
            token=listing["owner_token"],
        )

        assert shopify.json()["count"] == TOTAL // 4
        assert by_client_name.json()["count"] == 0


class TestC04MalformedFilters:
    @pytest.mark.parametrize(
        ("params", "errors"),
        [
            (
                {"status": "bogus"},
                {"status": [not_a_choice("bogus")]},
            ),
            (
                {"status": "ACTIVE"},
                {"status": [not_a_choice("ACTIVE")]},
            ),
            (
                {"billing_cycle": "weekly", "status": "x"},
                {
                    "status": [not_a_choice("x")],
                    "billing_cycle": [not_a_choice("weekly")],
                },
            ),
        ],
    )
    async def test_bad_client_choices_are_400(self, listing, params, errors):
        response = await get(listing, "/api/clients/", params)

        assert response.status_code == 400
        assert response.json() == errors

    async def test_empty_filters_are_ignored_and_good_ones_filter(self, listing):
        empty = (
            await get(
                listing,
                "/api/clients/",
                {"status": "", "billing_cycle": "", "plan_tier": ""},
            )
        ).json()
        paused = (
            await get(listing, "/api/clients/", {"status": "paused", "page_size": 100})
        ).json()
        yearly = (
            await get(listing, "/api/clients/", {"billing_cycle": "yearly"})
        ).json()
        tier = (
            await get(listing, "/api/clients/", {"plan_tier": "Business Process"})
        ).json()
        tier_case = (
            await get(listing, "/api/clients/", {"plan_tier": "business process"})
        ).json()

        assert empty["count"] == TOTAL
        assert paused["count"] == sum(
            1 for c in listing["clients"] if c["status"] == "paused"
        )
        assert all(row["status"] == "paused" for row in paused["results"])
        assert {row["company_name"] for row in yearly["results"]} == {
            name for name, *_ in C03_CLIENTS
        }
        assert tier["count"] == 3
        assert tier_case["count"] == 0

    async def test_a_malformed_client_id_in_the_path_is_404(self, listing):
        response = await get(listing, "/api/clients/not-a-uuid/")

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    @pytest.mark.parametrize(
        ("params", "errors"),
        [
            (
                {"credential_type": "bogus"},
                {"credential_type": [not_a_choice("bogus")]},
            ),
            (
                {"status": "ACTIVE"},
                {"status": [not_a_choice("ACTIVE")]},
            ),
            (
                {"client": "not-a-uuid"},
                {"client": ["\u201cnot-a-uuid\u201d is not a valid UUID."]},
            ),
            (
                {"client": "00000000-0000-0000-0000-000000000000"},
                {"client": [UNKNOWN_CLIENT]},
            ),
        ],
    )
    async def test_bad_credential_filters_are_400_for_staff(
        self, listing, params, errors
    ):
        response = await get(listing, "/api/credentials/", params)

        assert response.status_code == 400
        assert response.json() == errors

    @pytest.mark.parametrize("form", [str.upper, lambda text: text.replace("-", "")])
    async def test_a_client_id_in_another_form_filters_normally(self, listing, form):
        body = (
            await get(
                listing, "/api/credentials/", {"client": form(listing["other"]["id"])}
            )
        ).json()

        assert [row["service_name"] for row in body["results"]] == ["Globex CRM"]

    @pytest.mark.parametrize("which", ["other", "missing"])
    async def test_a_client_user_filtering_by_another_id_gets_an_empty_page(
        self, listing, which
    ):
        client_id = listing["other"]["id"] if which == "other" else str(uuid.uuid4())

        response = await get(
            listing,
            "/api/credentials/",
            {"client": client_id},
            token=listing["owner_token"],
        )

        assert response.status_code == 200
        assert response.json()["count"] == 0

    async def test_a_malformed_credential_id_in_the_path_is_404(self, listing):
        response = await get(listing, "/api/credentials/not-a-uuid/")

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
