"""Lists cost a fixed number of statements, whatever the page size.

These call the service's list functions in-process against a real database
and count every statement the engine sends.
"""

import datetime as dt
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert
from starlette.requests import Request

from portal_common.clients_copy import ClientDirectory, apply_client_event
from portal_common.db import make_sessionmaker
from portal_common.identity import Identity
from workflows import service
from workflows.models import clients, execution_records, workflows

WORKFLOWS = 60
RECORDS_PER_WORKFLOW = 35
STAFF = Identity(user_id=1, is_staff=True)


def list_request(path: str, query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("testserver", 80),
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver")],
        }
    )


@contextmanager
def counted_statements(engine):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


@pytest.fixture(scope="module")
async def seeded(service_db):
    """60 workflows of one client, the n-th with n+1 successes of 35 each day for 35 days."""
    sessions = make_sessionmaker(service_db)
    client_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        await apply_client_event(
            session,
            clients,
            "client.created",
            {
                "id": str(client_id),
                "company_name": "Counting Co",
                "contact_name": "C",
                "email": "c@example.com",
            },
            dt.datetime.now(dt.UTC),
        )
        workflow_rows = [
            {
                "id": uuid.uuid4(),
                "client_id": client_id,
                "workflow_name": f"Flow {n:02d}",
                "n8n_workflow_id": f"count-{uuid.uuid4().hex}",
                "n8n_workflow_url": "https://n8n.example.com/workflow/x",
            }
            for n in range(WORKFLOWS)
        ]
        await session.execute(insert(workflows), workflow_rows)
        start = dt.date(2024, 1, 1)
        await session.execute(
            insert(execution_records),
            [
                {
                    "client_id": client_id,
                    "workflow_id": row["id"],
                    "execution_date": start + dt.timedelta(days=day),
                    "total_count": 35,
                    # Older days fail entirely: only the last 30 records count.
                    "success_count": min(n + 1, 35) if day >= 5 else 0,
                    "error_count": 35 - min(n + 1, 35) if day >= 5 else 35,
                }
                for n, row in enumerate(workflow_rows)
                for day in range(RECORDS_PER_WORKFLOW)
            ],
        )
    return {"client_id": client_id, "workflows": workflow_rows, "sessions": sessions}


class TestStatementsPerPage:
    @pytest.mark.parametrize("identity", ["staff", "client user"])
    async def test_a_page_of_workflows_costs_three_statements_for_10_or_50(
        self, service_db, seeded, identity
    ):
        caller = (
            STAFF
            if identity == "staff"
            else Identity(user_id=2, client_id=seeded["client_id"])
        )
        directory = ClientDirectory(clients, clients_url="", internal_token="")
        counts = {}
        pages = {}

        for size in (10, 50):
            async with seeded["sessions"]() as session:
                with counted_statements(service_db) as statements:
                    pages[size] = await service.list_workflows(
                        session,
                        list_request(
                            "/api/workflows/",
                            f"page_size={size}&ordering=workflow_name",
                        ),
                        caller,
                        directory,
                    )
            counts[size] = len(statements)

        assert counts == {10: 3, 50: 3}
        assert len(pages[50]["results"]) == 50
        rates = {
            row["workflow_name"]: row["success_rate"] for row in pages[50]["results"]
        }
        # Flow n: n+1 successes of 35 on each of the last 30 days.
        assert rates["Flow 00"] == round(1 / 35 * 100, 2)
        assert rates["Flow 33"] == round(34 / 35 * 100, 2)
        assert rates["Flow 40"] == 100.0

    async def test_a_page_of_records_costs_two_statements_for_10_or_50(
        self, service_db, seeded
    ):
        directory = ClientDirectory(clients, clients_url="", internal_token="")
        counts = {}

        for size in (10, 50):
            async with seeded["sessions"]() as session:
                with counted_statements(service_db) as statements:
                    page = await service.list_records(
                        session,
                        list_request("/api/executions/", f"page_size={size}"),
                        STAFF,
                        directory,
                    )
            counts[size] = len(statements)
            assert len(page["results"]) == size
            # The database is shared with other modules: names, not which ones.
            assert all(
                row["workflow_name"] and row["client_name"] for row in page["results"]
            )

        assert counts == {10: 2, 50: 2}
