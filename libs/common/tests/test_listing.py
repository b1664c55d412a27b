"""Lists as an HTTP client sees them: DRF 3.14 paging, filters, search and ordering.

A tiny FastAPI app exposes clients, workflows and execution records from a
real PostgreSQL database through `paginate`, and the tests call it over
ASGI. The `x-test-client` header makes the caller a user of that client;
without it the caller is staff.
"""

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    event,
    insert,
    select,
)

from portal_common.db import make_engine, make_sessionmaker
from portal_common.errors import install_error_handlers
from portal_common.identity import Identity
from portal_common.listing import (
    ChoiceFilter,
    DateFilter,
    ListSpec,
    UUIDFilter,
    paginate,
)

metadata = MetaData()

clients = Table(
    "client",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("company_name", String(200), nullable=False),
    Column("contact_name", String(200), nullable=False),
    Column("email", String(254), nullable=False),
    Column("status", String(20), nullable=False),
    Column("plan_tier", String(20), nullable=False),
    Column("monthly_fee", Numeric(10, 2), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

workflows = Table(
    "workflow",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("workflow_name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

records = Table(
    "execution_record",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("workflow_id", Uuid, nullable=False),
    Column("execution_date", Date, nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

CLIENTS = ListSpec(
    filters=(
        ChoiceFilter("status", clients.c.status, ("active", "paused", "churned")),
        ChoiceFilter("plan_tier", clients.c.plan_tier, ("starter", "pro")),
    ),
    search=(clients.c.company_name, clients.c.contact_name, clients.c.email),
    ordering={
        "company_name": clients.c.company_name,
        "created_at": clients.c.created_at,
        "monthly_fee": clients.c.monthly_fee,
    },
    default_ordering=("-created_at",),
    tiebreak=clients.c.id,
)

WORKFLOWS = ListSpec(
    filters=(
        UUIDFilter(
            "client", workflows.c.client_id, exists=clients.c.id, owner_scoped=True
        ),
    ),
    search=(workflows.c.workflow_name,),
    ordering={"workflow_name": workflows.c.workflow_name},
    default_ordering=("workflow_name",),
    tiebreak=workflows.c.id,
)

EXECUTIONS = ListSpec(
    filters=(
        DateFilter("execution_date", records.c.execution_date),
        UUIDFilter(
            "client", records.c.client_id, exists=clients.c.id, owner_scoped=True
        ),
        UUIDFilter(
            "workflow",
            records.c.workflow_id,
            exists=workflows.c.id,
            owner=workflows.c.client_id,
        ),
    ),
    ordering={
        "execution_date": records.c.execution_date,
        "total_count": records.c.total_count,
        "created_at": records.c.created_at,
    },
    default_ordering=("-execution_date",),
    tiebreak=records.c.id,
)

STAFF = Identity(user_id=1, is_staff=True)
BASE = "http://testserver"
INVALID_PAGE = {"detail": "Invalid page."}
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def caller(request: Request) -> Identity:
    client_id = request.headers.get("x-test-client")
    if client_id is None:
        return STAFF
    return Identity(user_id=2, is_staff=False, client_id=uuid.UUID(client_id))


def scoped(table: Table, identity: Identity):
    if identity.is_staff:
        return select(table)
    owner = table.c.id if table is clients else table.c.client_id
    return select(table).where(owner == identity.client_id)


def build_app(engine) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    sessions = make_sessionmaker(engine)
    resources = {
        "clients": (clients, CLIENTS),
        "workflows": (workflows, WORKFLOWS),
        "executions": (records, EXECUTIONS),
    }

    @app.get("/api/{resource}/")
    async def list_rows(resource: str, request: Request) -> dict[str, Any]:
        table, spec = resources[resource]
        identity = caller(request)
        async with sessions() as session, session.begin():
            page = await paginate(
                session, request, scoped(table, identity), spec, identity=identity
            )
        return page.body(lambda row: {"id": str(row["id"])})

    return app


class Database:
    """A fresh database with the test tables, an app over it and a statement log."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=2)
        self.statements: list[str] = []
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._log)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(self.engine)), base_url=BASE
        )

    def _log(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    async def setup(self, rows: dict[Table, list[dict[str, Any]]]) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            for table, values in rows.items():
                if values:
                    await connection.execute(insert(table), values)

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()

    async def get(self, url: str, **headers: str) -> httpx.Response:
        return await self.http.get(url, headers=headers)

    async def count_statements(self, url: str, **headers: str) -> int:
        self.statements.clear()
        response = await self.get(url, **headers)
        assert response.status_code in (200, 400, 404), response.text
        return len(self.statements)


def client_row(index: int, **values: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(),
        "company_name": f"Client {index:03d}",
        "contact_name": f"Contact {index:03d}",
        "email": f"c{index:03d}@example.com",
        "status": ("active", "paused", "churned")[index % 3],
        "plan_tier": "starter",
        "monthly_fee": Decimal("100.00"),
        # Ten clients share each timestamp, so only the id tiebreak makes
        # the order, and therefore the pages, deterministic.
        "created_at": T0 + dt.timedelta(minutes=index // 10),
    }
    row.update(values)
    return row


# --- 120 clients: paging (C01) -------------------------------------------------

MANY = [client_row(index) for index in range(120)]
MANY_IN_DEFAULT_ORDER = [
    str(row["id"])
    for row in sorted(MANY, key=lambda r: (r["created_at"], r["id"]), reverse=True)
]


@pytest.fixture(scope="module")
async def many(infra):
    database = Database(await infra.create_database("listing_paging"))
    await database.setup({clients: MANY})
    yield database
    await database.close()


def ids(response: httpx.Response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


class TestPagingCasesC01:
    async def test_first_page(self, many):
        response = await many.get("/api/clients/?page=1")

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 120
        assert body["next"] == f"{BASE}/api/clients/?page=2"
        assert body["previous"] is None
        assert ids(response) == MANY_IN_DEFAULT_ORDER[:50]

    @pytest.mark.parametrize("page", ["3", "last"])
    async def test_last_page(self, many, page):
        response = await many.get(f"/api/clients/?page={page}")

        assert response.status_code == 200
        assert response.json()["next"] is None
        assert response.json()["previous"] == f"{BASE}/api/clients/?page=2"
        assert ids(response) == MANY_IN_DEFAULT_ORDER[100:]

    async def test_the_pages_cover_every_row_once_in_order(self, many):
        pages = [await many.get(f"/api/clients/?page={n}") for n in (1, 2, 3)]

        assert [row for page in pages for row in ids(page)] == MANY_IN_DEFAULT_ORDER
        assert pages[1].json()["previous"] == f"{BASE}/api/clients/"
        assert pages[1].json()["next"] == f"{BASE}/api/clients/?page=3"

    @pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.0", "", "99" * 30])
    async def test_invalid_pages_are_not_found(self, many, page):
        response = await many.get(f"/api/clients/?page={page}")

        assert response.status_code == 404
        assert response.json() == INVALID_PAGE

    @pytest.mark.parametrize("size", ["0", "-5", "abc", "", "2.5", "9" * 5000])
    async def test_junk_page_sizes_fall_back_to_50_and_are_echoed(self, many, size):
        response = await many.get(f"/api/clients/?page_size={size}")

        assert response.status_code == 200
        assert ids(response) == MANY_IN_DEFAULT_ORDER[:50]
        assert response.json()["next"] == f"{BASE}/api/clients/?page=2&page_size={size}"

    @pytest.mark.parametrize("size", ["101", "1000"])
    async def test_large_page_sizes_are_capped_at_100(self, many, size):
        response = await many.get(f"/api/clients/?page_size={size}")

        assert response.json()["count"] == 120
        assert ids(response) == MANY_IN_DEFAULT_ORDER[:100]

    async def test_second_page_of_100_links_back_without_a_page_parameter(self, many):
        response = await many.get("/api/clients/?page_size=100&page=2")

        assert ids(response) == MANY_IN_DEFAULT_ORDER[100:]
        assert response.json()["previous"] == f"{BASE}/api/clients/?page_size=100"
        assert response.json()["next"] is None

    async def test_a_small_page_size(self, many):
        response = await many.get("/api/clients/?page_size=7&page=3")

        assert ids(response) == MANY_IN_DEFAULT_ORDER[14:21]
        assert response.json()["previous"] == f"{BASE}/api/clients/?page=2&page_size=7"

    async def test_links_keep_the_other_parameters(self, many):
        response = await many.get(
            "/api/clients/?status=active&search=client&page_size=10"
        )

        body = response.json()
        assert body["count"] == 40
        assert body["next"] == (
            f"{BASE}/api/clients/?page=2&page_size=10&search=client&status=active"
        )

    async def test_links_follow_the_gateway_forwarded_headers(self, many):
        response = await many.get(
            "/api/clients/?page=2",
            **{
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "portal.monoliet.cloud, gateway.internal:8000",
            },
        )

        assert (
            response.json()["next"]
            == "https://portal.monoliet.cloud/api/clients/?page=3"
        )
        assert (
            response.json()["previous"] == "https://portal.monoliet.cloud/api/clients/"
        )

    async def test_malformed_forwarded_headers_are_not_echoed(self, many):
        response = await many.get(
            "/api/clients/",
            **{
                "X-Forwarded-Proto": "javascript",
                "X-Forwarded-Host": "evil.example/x?",
            },
        )

        assert response.json()["next"] == f"{BASE}/api/clients/?page=2"

    async def test_an_empty_list_has_a_first_page(self, many):
        response = await many.get("/api/clients/?search=nobody")

        assert response.json() == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
        assert (
            await many.get("/api/clients/?search=nobody&page=last")
        ).status_code == 200
        assert (await many.get("/api/clients/?search=nobody&page=2")).status_code == 404

    async def test_nul_bytes_in_paging_parameters_are_ignored(self, many):
        response = await many.get("/api/clients/?page=2%00&page_size=10%00")

        assert response.status_code == 200
        assert ids(response) == MANY_IN_DEFAULT_ORDER[10:20]

    @pytest.mark.parametrize("size", [5, 100])
    async def test_a_page_costs_two_statements_whatever_its_size(self, many, size):
        url = (
            f"/api/clients/?page_size={size}&page=last&plan_tier=starter&search=client"
        )

        assert await many.count_statements(url) == 2
        assert await many.count_statements(f"/api/clients/?page_size={size}") == 2


# --- three clients, their workflows and executions (C03, C04) ------------------

CLIENT_A, CLIENT_B, CLIENT_C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
FLOW_A1, FLOW_A2, FLOW_B1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ACME_CORP, ACME_WIDGETS, GLOBEX = "Acme Corporation", "Acme Widgets", "Globex"

FEW = {
    clients: [
        client_row(
            2,
            id=CLIENT_A,
            company_name=ACME_CORP,
            contact_name="Jane Smith",
            email="jane@acme.example",
            status="active",
            monthly_fee=Decimal("300.00"),
        ),
        client_row(
            0,
            id=CLIENT_B,
            company_name=ACME_WIDGETS,
            contact_name="John Roe",
            email="john@widgets.example",
            status="paused",
            monthly_fee=Decimal("500.00"),
        ),
        client_row(
            1,
            id=CLIENT_C,
            company_name=GLOBEX,
            contact_name="Jane Acme",
            email="ops@globex.example",
            status="active",
            monthly_fee=Decimal("500.00"),
        ),
    ],
    workflows: [
        {
            "id": FLOW_A1,
            "client_id": CLIENT_A,
            "workflow_name": "Invoices",
            "created_at": T0,
        },
        {
            "id": FLOW_A2,
            "client_id": CLIENT_A,
            "workflow_name": "Leads",
            "created_at": T0,
        },
        {
            "id": FLOW_B1,
            "client_id": CLIENT_B,
            "workflow_name": "Orders",
            "created_at": T0,
        },
    ],
}
FEW[clients][0]["created_at"] = T0 + dt.timedelta(days=2)
FEW[clients][1]["created_at"] = T0
FEW[clients][2]["created_at"] = T0 + dt.timedelta(days=1)
NAMES = {row["id"]: row["company_name"] for row in FEW[clients]}


def execution(workflow_id, client_id, day: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "client_id": client_id,
        "workflow_id": workflow_id,
        "execution_date": dt.date(2024, 1, day),
        "total_count": day,
        "created_at": T0,
    }


FEW[records] = [
    execution(FLOW_A1, CLIENT_A, 17),
    execution(FLOW_A1, CLIENT_A, 18),
    execution(FLOW_A2, CLIENT_A, 17),
    execution(FLOW_B1, CLIENT_B, 17),
]
EXECUTION_IDS = [str(row["id"]) for row in FEW[records]]


@pytest.fixture(scope="module")
async def few(infra):
    database = Database(await infra.create_database("listing_search"))
    await database.setup(FEW)
    yield database
    await database.close()


async def company_names(database: Database, query: str) -> list[str]:
    response = await database.get(f"/api/clients/?{query}")
    assert response.status_code == 200, response.text
    return [NAMES[uuid.UUID(row_id)] for row_id in ids(response)]


class TestOrderingCasesC03:
    DEFAULT = [ACME_CORP, GLOBEX, ACME_WIDGETS]  # newest first

    @pytest.mark.parametrize(
        "ordering",
        ["", "bogus", "--created_at", "email", "id", "-", ",", "created_at-"],
    )
    async def test_unusable_terms_fall_back_to_the_default(self, few, ordering):
        assert await company_names(few, f"ordering={ordering}") == self.DEFAULT

    async def test_valid_terms_are_kept_and_others_dropped(self, few):
        by_name = [ACME_CORP, ACME_WIDGETS, GLOBEX]

        assert await company_names(few, "ordering=company_name") == by_name
        assert await company_names(few, "ordering=company_name,bogus") == by_name
        assert await company_names(few, "ordering=bogus,%20company_name%20") == by_name
        assert await company_names(few, "ordering=-company_name") == by_name[::-1]
        assert await company_names(few, "ordering=created_at") == self.DEFAULT[::-1]

    async def test_several_terms(self, few):
        names = await company_names(few, "ordering=-monthly_fee,company_name")

        assert names == [ACME_WIDGETS, GLOBEX, ACME_CORP]

    async def test_ties_follow_the_id_in_the_direction_of_the_last_term(self, few):
        tied = sorted([CLIENT_B, CLIENT_C])

        ascending = await company_names(few, "ordering=monthly_fee")
        descending = await company_names(few, "ordering=-monthly_fee")

        assert ascending == [ACME_CORP] + [NAMES[i] for i in tied]
        assert descending == [NAMES[i] for i in reversed(tied)] + [ACME_CORP]


class TestSearchCasesC03:
    @pytest.mark.parametrize(
        ("search", "expected"),
        [
            ("acme", {ACME_CORP, ACME_WIDGETS, GLOBEX}),
            ("ACME%20jane", {ACME_CORP, GLOBEX}),
            ("acme%20smith", {ACME_CORP}),
            ("acme,widgets", {ACME_WIDGETS}),
            ("acme%20%20%20widgets", {ACME_WIDGETS}),
            ("jane%00", {ACME_CORP, GLOBEX}),
            ("ja%00ne", {ACME_CORP, GLOBEX}),
            ("%20%20", {ACME_CORP, ACME_WIDGETS, GLOBEX}),
            ("", {ACME_CORP, ACME_WIDGETS, GLOBEX}),
            ("%22acme%20corporation%22", set()),
            ("globex.example", {GLOBEX}),
        ],
    )
    async def test_every_word_must_match_some_field(self, few, search, expected):
        assert set(await company_names(few, f"search={search}")) == expected

    @pytest.mark.parametrize("search", ["%25", "_", "a_m", "%5C", "%2F"])
    async def test_like_wildcards_are_literal_characters(self, few, search):
        assert await company_names(few, f"search={search}") == []


class TestFilterCasesC04:
    async def test_a_malformed_uuid(self, few):
        response = await few.get("/api/workflows/?client=not-a-uuid")

        assert response.status_code == 400
        assert response.json() == {
            "client": ["\u201cnot-a-uuid\u201d is not a valid UUID."]
        }

    async def test_an_unknown_uuid(self, few):
        response = await few.get(f"/api/workflows/?client={uuid.UUID(int=0)}")

        assert response.status_code == 400
        assert response.json() == {
            "client": [
                "Select a valid choice. "
                "That choice is not one of the available choices."
            ]
        }

    @pytest.mark.parametrize("form", [str(CLIENT_A).upper(), CLIENT_A.hex])
    async def test_other_spellings_of_a_uuid_filter_normally(self, few, form):
        response = await few.get(f"/api/workflows/?client={form}")

        assert response.status_code == 200
        assert sorted(ids(response)) == sorted([str(FLOW_A1), str(FLOW_A2)])

    @pytest.mark.parametrize("value", ["bogus", "ACTIVE"])
    async def test_an_unknown_choice(self, few, value):
        response = await few.get(f"/api/clients/?status={value}")

        assert response.status_code == 400
        assert response.json() == {
            "status": [
                f"Select a valid choice. {value} is not one of the available choices."
            ]
        }

    async def test_choices_filter_exactly(self, few):
        assert set(await company_names(few, "status=active")) == {ACME_CORP, GLOBEX}
        assert await company_names(few, "status=paused") == [ACME_WIDGETS]

    async def test_a_nul_in_a_filter_value_is_invalid_not_ignored(self, few):
        response = await few.get("/api/clients/?status=active%00&search=acme")

        assert response.status_code == 400
        assert response.json() == {
            "status": [
                "Select a valid choice. active\x00 is not one of the available choices."
            ]
        }

    async def test_empty_values_and_unknown_parameters_are_ignored(self, few):
        names = await company_names(few, "status=&plan_tier=&colour=blue&client=x")

        assert len(names) == 3

    @pytest.mark.parametrize(
        "value", ["2024-02-30", "2024-13-45", "17/01/2024", "soon"]
    )
    async def test_a_bad_date(self, few, value):
        response = await few.get(f"/api/executions/?execution_date={value}")

        assert response.status_code == 400
        assert response.json() == {"execution_date": ["Enter a valid date."]}

    @pytest.mark.parametrize(
        "value", ["2024-01-18", "01/18/2024", "01/18/24", "2024-1-18"]
    )
    async def test_dates_in_django_input_formats(self, few, value):
        response = await few.get(f"/api/executions/?execution_date={value}")

        assert ids(response) == [EXECUTION_IDS[1]]

    async def test_a_malformed_workflow(self, few):
        response = await few.get("/api/executions/?workflow=abc")

        assert response.status_code == 400
        assert response.json() == {"workflow": ["\u201cabc\u201d is not a valid UUID."]}

    async def test_all_filter_errors_come_together_before_paging(self, few):
        response = await few.get(
            "/api/executions/?workflow=abc&execution_date=x&client=y&page=abc"
        )

        assert response.status_code == 400
        assert response.json() == {
            "execution_date": ["Enter a valid date."],
            "client": ["\u201cy\u201d is not a valid UUID."],
            "workflow": ["\u201cabc\u201d is not a valid UUID."],
        }

    async def test_filters_combine(self, few):
        response = await few.get(
            f"/api/executions/?workflow={FLOW_A1}&execution_date=2024-01-17"
        )

        assert ids(response) == [EXECUTION_IDS[0]]

    async def test_a_uuid_filter_costs_one_more_statement_only_when_given(self, few):
        assert await few.count_statements("/api/workflows/") == 2
        assert await few.count_statements(f"/api/workflows/?client={CLIENT_A}") == 3
        assert await few.count_statements(f"/api/workflows/?client={CLIENT_C}") == 2


class TestClientUserScoping:
    async def test_another_clients_id_gives_an_empty_page(self, few):
        for other in (CLIENT_B, uuid.UUID(int=0), uuid.uuid4()):
            response = await few.get(
                f"/api/workflows/?client={other}", **{"x-test-client": str(CLIENT_A)}
            )

            assert response.status_code == 200
            assert response.json()["count"] == 0

    async def test_the_empty_page_needs_no_look_up(self, few):
        statements = await few.count_statements(
            f"/api/workflows/?client={uuid.uuid4()}", **{"x-test-client": str(CLIENT_A)}
        )

        assert statements == 1

    async def test_their_own_id_filters_normally(self, few):
        response = await few.get(
            f"/api/executions/?client={CLIENT_A.hex}",
            **{"x-test-client": str(CLIENT_A)},
        )

        assert sorted(ids(response)) == sorted(EXECUTION_IDS[:3])

    async def test_a_malformed_id_is_still_a_400(self, few):
        response = await few.get(
            "/api/workflows/?client=abc", **{"x-test-client": str(CLIENT_A)}
        )

        assert response.status_code == 400

    async def test_another_clients_workflow_answers_like_a_missing_one(self, few):
        as_a = {"x-test-client": str(CLIENT_A)}

        foreign = await few.get(f"/api/executions/?workflow={FLOW_B1}", **as_a)
        missing = await few.get(f"/api/executions/?workflow={uuid.uuid4()}", **as_a)
        own = await few.get(f"/api/executions/?workflow={FLOW_A2}", **as_a)

        assert foreign.status_code == missing.status_code == 400
        assert foreign.json() == missing.json()
        assert ids(own) == [EXECUTION_IDS[2]]

    async def test_staff_may_filter_by_any_clients_workflow(self, few):
        response = await few.get(f"/api/executions/?workflow={FLOW_B1}")

        assert ids(response) == [EXECUTION_IDS[3]]


JUNK = [
    "%00",
    "%00%00abc",
    "%FF%FE",
    "%ED%A0%80",
    "x" * 3000,
    "%27%3B%20DROP%20TABLE%20client%3B--",
    "9" * 5000,
    "-0",
    "1e9999",
    "%E2%80%AE",
    "%5B%5D",
]


@pytest.mark.parametrize("value", JUNK)
@pytest.mark.parametrize(
    "param",
    ["page", "page_size", "search", "ordering", "execution_date", "client", "workflow"],
)
async def test_nothing_a_caller_sends_is_a_server_error(few, param, value):
    response = await few.get(f"/api/executions/?{param}={value}")

    assert response.status_code in (200, 400, 404), response.text
