"""The health check, run in-process against a real database of this service."""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update

from portal_common.clients_copy import ClientDirectory, apply_client_event
from portal_common.db import make_sessionmaker
from workflows import service
from workflows.health import run_health_check
from workflows.models import clients, execution_records, outbox, workflows

UTC = ZoneInfo("UTC")


@pytest.fixture(scope="module")
def sessions(service_db):
    return make_sessionmaker(service_db)


@pytest.fixture(scope="module")
async def client_id(sessions):
    client_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        await apply_client_event(
            session,
            clients,
            "client.created",
            {
                "id": str(client_id),
                "company_name": "Health Co",
                "contact_name": "H",
                "email": "h@example.com",
            },
            dt.datetime.now(dt.UTC),
        )
    return client_id


async def make_workflow(
    sessions,
    client_id,
    *,
    age_days: float = 0,
    status: str = "active",
    last_run_days=None,
):
    directory = ClientDirectory(clients, clients_url="", internal_token="")
    now = dt.datetime.now(dt.UTC)
    async with sessions() as session, session.begin():
        workflow_id = await service.create_workflow(
            session,
            directory,
            {
                "client_id": client_id,
                "workflow_name": "Nightly export",
                "n8n_workflow_id": f"health-{uuid.uuid4().hex}",
                "status": status,
            },
            n8n_base_url="https://n8n.example.com",
        )
        last_execution = (
            None if last_run_days is None else now - dt.timedelta(days=last_run_days)
        )
        await session.execute(
            update(workflows)
            .where(workflows.c.id == workflow_id)
            .values(
                created_at=now - dt.timedelta(days=age_days),
                last_execution=last_execution,
            )
        )
    return workflow_id


async def add_day(
    sessions, client_id, workflow_id, day: dt.date, total: int, success: int
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            insert(execution_records).values(
                client_id=client_id,
                workflow_id=workflow_id,
                execution_date=day,
                total_count=total,
                success_count=success,
                error_count=total - success,
            )
        )


async def check(sessions, now=None, **options):
    async with sessions() as session, session.begin():
        return await run_health_check(
            session,
            now or dt.datetime.now(dt.UTC),
            threshold=options.pop("threshold", 80.0),
            zone=UTC,
            **options,
        )


def about(alerts, workflow_id) -> list[dict]:
    return [alert for alert in alerts if alert["id"] == str(workflow_id)]


async def announced(sessions, workflow_id) -> list[dict]:
    async with sessions() as session:
        rows = await session.execute(
            select(outbox.c.envelope)
            .where(outbox.c.subject == "workflow.health_alert")
            .where(outbox.c.envelope["data"]["id"].astext == str(workflow_id))
            .order_by(outbox.c.id)
        )
        return [row.envelope["data"] for row in rows]


class TestSilentWorkflows:
    async def test_a_workflow_silent_for_7_days_is_reported_once(
        self, sessions, client_id
    ):
        workflow_id = await make_workflow(
            sessions, client_id, age_days=30, last_run_days=8
        )

        first = about(await check(sessions), workflow_id)
        second = about(await check(sessions), workflow_id)

        assert [alert["condition"] for alert in first] == ["silent"]
        assert second == []
        events = await announced(sessions, workflow_id)
        assert len(events) == 1
        assert events[0]["client_id"] == str(client_id)
        assert events[0]["workflow_name"] == "Nightly export"
        assert events[0]["success_rate"] is None
        assert events[0]["threshold"] == 80.0
        assert events[0]["period_days"] == 7
        assert events[0]["last_execution"].endswith("Z")

    async def test_one_that_never_ran_counts_from_its_registration(
        self, sessions, client_id
    ):
        new = await make_workflow(sessions, client_id, age_days=1)
        old = await make_workflow(sessions, client_id, age_days=8)

        alerts = await check(sessions)

        assert about(alerts, new) == []
        assert [alert["condition"] for alert in about(alerts, old)] == ["silent"]
        assert about(alerts, old)[0]["last_execution"] is None

    async def test_a_new_episode_is_reported_again_after_the_condition_cleared(
        self, sessions, client_id
    ):
        workflow_id = await make_workflow(
            sessions, client_id, age_days=30, last_run_days=10
        )
        await check(sessions)

        async with sessions() as session, session.begin():
            await session.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id)
                .values(last_execution=func.now())
            )
        cleared = about(await check(sessions), workflow_id)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
        returned = about(await check(sessions, now=later), workflow_id)

        assert cleared == []
        assert [alert["condition"] for alert in returned] == ["silent"]
        assert len(await announced(sessions, workflow_id)) == 2

    async def test_paused_workflows_are_not_checked(self, sessions, client_id):
        workflow_id = await make_workflow(
            sessions, client_id, age_days=30, status="paused"
        )

        assert about(await check(sessions), workflow_id) == []


class TestLowSuccessRate:
    async def test_below_the_threshold_over_7_days_is_reported_with_the_rate(
        self, sessions, client_id
    ):
        workflow_id = await make_workflow(
            sessions, client_id, age_days=30, last_run_days=0
        )
        today = dt.datetime.now(dt.UTC).date()
        await add_day(sessions, client_id, workflow_id, today, 10, 7)
        await add_day(
            sessions, client_id, workflow_id, today - dt.timedelta(days=7), 10, 7
        )
        # Outside the 7 days: does not drag the rate down further.
        await add_day(
            sessions, client_id, workflow_id, today - dt.timedelta(days=8), 100, 0
        )

        alerts = about(await check(sessions), workflow_id)

        assert [alert["condition"] for alert in alerts] == ["low_success_rate"]
        assert alerts[0]["success_rate"] == 70.0

    async def test_exactly_at_the_threshold_is_healthy(self, sessions, client_id):
        workflow_id = await make_workflow(
            sessions, client_id, age_days=30, last_run_days=0
        )
        await add_day(
            sessions, client_id, workflow_id, dt.datetime.now(dt.UTC).date(), 5, 4
        )

        assert about(await check(sessions), workflow_id) == []
        assert [
            a["condition"]
            for a in about(await check(sessions, threshold=90.0), workflow_id)
        ] == ["low_success_rate"]

    async def test_both_conditions_are_separate_episodes(self, sessions, client_id):
        workflow_id = await make_workflow(
            sessions, client_id, age_days=30, last_run_days=9
        )
        await add_day(
            sessions,
            client_id,
            workflow_id,
            dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3),
            4,
            1,
        )

        alerts = about(await check(sessions), workflow_id)

        assert sorted(alert["condition"] for alert in alerts) == [
            "low_success_rate",
            "silent",
        ]


class TestOneRunAtATime:
    async def test_a_second_check_skips_while_one_holds_the_lock(
        self, sessions, client_id
    ):
        async with sessions() as holder, holder.begin():
            running = await run_health_check(
                holder, dt.datetime.now(dt.UTC), threshold=80.0, zone=UTC
            )
            skipped = await check(sessions)

        assert running is not None
        assert skipped is None

    async def test_a_check_within_the_interval_of_the_last_one_skips(
        self, sessions, client_id
    ):
        hour = dt.timedelta(hours=1)
        now = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)

        first = await check(sessions, now=now, min_interval=hour)
        soon = await check(
            sessions, now=now + dt.timedelta(minutes=10), min_interval=hour
        )
        later = await check(
            sessions, now=now + dt.timedelta(minutes=61), min_interval=hour
        )

        assert first is not None
        assert soon is None
        assert later is not None
