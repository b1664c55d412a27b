"""Two workflows replicas on a NATS server of their own, in America/New_York.

Case C11 (redelivery, duplicates, a crash mid-batch, a replay), the health
check's scheduler across replicas, "today" in another time zone, and the
ingest endpoint while NATS is down. The system has its own NATS server: every
system on one server would share the durable consumers (they are named after
the service), so two systems would split each other's events.
"""

import asyncio
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import nats
import pytest
from sqlalchemy import select, text, update

from portal_common.db import make_engine
from portal_common.events import EVENTS_STREAM
from portal_common.testing.plugin import start_portal
from portal_deploy.embedded import EmbeddedNats
from workflows.models import health_check_runs, outbox, workflow_alerts, workflows

NEW_YORK = ZoneInfo("America/New_York")
ACK_WAIT = 2.0
N8N_CONSUMER = "workflows-n8n_execution"


def e1(execution_id: str = "5001") -> dict:
    return {
        "id": execution_id,
        "status": "success",
        "finished": True,
        "mode": "webhook",
        "startedAt": "2025-03-07T12:00:00.000Z",
        "stoppedAt": "2025-03-07T12:00:01.000Z",
        "workflowId": "WFPLACEHOLDER001",
        "retryOf": None,
        "retrySuccessId": None,
        "waitTill": None,
    }


@pytest.fixture(scope="module")
async def own_nats(run_dir):
    server = EmbeddedNats(run_dir / f"nats-{uuid.uuid4().hex[:6]}" / "store")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def separate(system_factory, own_nats, bench_type):
    portal = await start_portal(
        system_factory,
        extra_env={
            "PORTAL_NATS_URL": own_nats.url,
            "PORTAL_TIME_ZONE": "America/New_York",
            "PORTAL_WORKFLOW_HEALTH_INTERVAL_SECONDS": "1",
            "PORTAL_WORKFLOWS_INGEST_ACK_WAIT_SECONDS": str(ACK_WAIT),
        },
        replicas={"workflows": 2},
    )
    connection = await nats.connect(
        own_nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    engine = make_engine(
        portal.system.env["PORTAL_WORKFLOWS_DATABASE_URL"], pool_size=2
    )
    separate_bench = bench_type(portal, connection.jetstream())
    client = await separate_bench.create_client()
    yield {
        "bench": separate_bench,
        "engine": engine,
        "client": client,
        "portal": portal,
    }
    await engine.dispose()
    await connection.close()


async def consumer_info(bench):
    return await bench.js.consumer_info(EVENTS_STREAM, N8N_CONSUMER)


async def in_flight(bench) -> bool:
    info = await consumer_info(bench)
    return info.num_ack_pending > 0


class LockedWorkflow:
    """Holds a workflow's row lock, so a batch touching it waits (a slow database)."""

    def __init__(self, engine, workflow_id: str) -> None:
        self.engine = engine
        self.workflow_id = workflow_id

    async def __aenter__(self):
        self.connection = await self.engine.connect()
        await self.connection.begin()
        await self.connection.execute(
            text("SELECT 1 FROM workflow WHERE id = :id FOR UPDATE"),
            {"id": self.workflow_id},
        )
        return self

    async def __aexit__(self, *exc_info):
        await self.connection.rollback()
        await self.connection.close()


class TestC11RedeliveryDuplicatesAndCrashes:
    async def test_every_execution_is_counted_exactly_once_through_all_steps(
        self, separate
    ):
        bench, engine = separate["bench"], separate["engine"]
        w1 = await bench.create_workflow(
            separate["client"]["id"], n8n_workflow_id="WFPLACEHOLDER001"
        )
        busy = await bench.create_workflow(separate["client"]["id"])

        # 1-3: two replicas; E1 and a resend of it under another message id.
        await bench.publish_executions(e1(), msg_id="5001:success")
        await bench.publish_executions(e1(), msg_id="5001:success:resend")
        await asyncio.gather(
            *(
                bench.publish_executions(
                    bench.execution(f"b-{n}", busy["n8n_workflow_id"]),
                    msg_id=f"b-{n}:success",
                )
                for n in range(600)
            )
        )
        await bench.settled()
        assert await bench.records(w1["id"]) == {"2025-03-07": (1, 1, 0)}
        assert (await bench.workflow(busy["id"]))["execution_count"] == 600
        assert await bench.records(busy["id"]) == {"2025-03-07": (600, 600, 0)}

        # 4: the database is slower than ack_wait while E1 is in flight again.
        async with LockedWorkflow(engine, w1["id"]):
            await bench.publish_executions(e1(), msg_id="5001:success:slow")
            await bench.eventually(lambda: in_flight(bench))
            await asyncio.sleep(3 * ACK_WAIT)
        await bench.settled()
        assert await bench.records(w1["id"]) == {"2025-03-07": (1, 1, 0)}

        # 5: both replicas die after receiving E2 (and more), before any ack.
        async with LockedWorkflow(engine, w1["id"]):
            await bench.publish_executions(e1("5002"), msg_id="5002:success")
            await asyncio.gather(
                *(
                    bench.publish_executions(e1(f"k-{n}"), msg_id=f"k-{n}:success")
                    for n in range(100)
                )
            )
            await bench.eventually(lambda: in_flight(bench))
            for replica in (0, 1):
                await separate["portal"].system.restart_service(
                    "workflows", kill=True, replica=replica
                )
        await bench.settled()
        # 704 messages so far; the killed replicas' ones were delivered again.
        assert (await consumer_info(bench)).delivered.consumer_seq > 704
        assert await bench.records(w1["id"]) == {"2025-03-07": (102, 102, 0)}
        assert (await bench.workflow(w1["id"]))["execution_count"] == 102

        # 6: a fresh consumer replays the whole stream from the start.
        await bench.js.delete_consumer(EVENTS_STREAM, N8N_CONSUMER)
        for replica in (0, 1):
            await separate["portal"].system.restart_service(
                "workflows", replica=replica
            )
        info = await consumer_info(bench)
        await bench.settled()
        assert info.config.deliver_policy == "all"
        assert (await consumer_info(bench)).delivered.consumer_seq >= 704
        assert await bench.records(w1["id"]) == {"2025-03-07": (102, 102, 0)}
        assert await bench.records(busy["id"]) == {"2025-03-07": (600, 600, 0)}
        assert (await bench.workflow(w1["id"]))["execution_count"] == 102


class TestHealthCheckAcrossReplicas:
    async def test_a_silent_workflow_is_reported_once_per_episode(self, separate):
        bench, engine = separate["bench"], separate["engine"]
        workflow = await bench.create_workflow(separate["client"]["id"])
        now = dt.datetime.now(dt.UTC)
        async with engine.begin() as connection:
            await connection.execute(
                update(workflows)
                .where(workflows.c.id == uuid.UUID(workflow["id"]))
                .values(created_at=now - dt.timedelta(days=10))
            )

        async def alerts() -> list[dict]:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(outbox.c.envelope)
                    .where(outbox.c.subject == "workflow.health_alert")
                    .where(outbox.c.envelope["data"]["id"].astext == workflow["id"])
                )
                return [row.envelope["data"] for row in rows]

        async def rounds() -> dt.datetime:
            async with engine.connect() as connection:
                return await connection.scalar(select(health_check_runs.c.last_run_at))

        first = await bench.eventually(alerts)
        announced = await bench.eventually(
            lambda: bench.events_about("workflow.health_alert", workflow["id"])
        )
        # Several more rounds, on either replica, announce nothing new.
        latest = await rounds()
        for _ in range(3):
            latest = await bench.eventually(
                lambda since=latest: _later_than(rounds, since)
            )

        assert [alert["condition"] for alert in first] == ["silent"]
        assert len(await alerts()) == 1
        assert len(announced) == 1

        # It runs again (the condition clears), then falls silent anew.
        async with bench.admin as http:
            fresh = bench.execution(
                "alive-" + uuid.uuid4().hex,
                workflow["n8n_workflow_id"],
                started_at=now.isoformat(),
                stopped_at=now.isoformat(),
            )
            assert (
                await http.post("/api/executions/events/", json=fresh)
            ).status_code == 202

        async def cleared() -> bool:
            async with engine.connect() as connection:
                reported = await connection.scalar(
                    select(workflow_alerts.c.condition).where(
                        workflow_alerts.c.workflow_id == uuid.UUID(workflow["id"])
                    )
                )
            return reported is None

        await bench.eventually(cleared)
        async with engine.begin() as connection:
            await connection.execute(
                update(workflows)
                .where(workflows.c.id == uuid.UUID(workflow["id"]))
                .values(last_execution=now - dt.timedelta(days=8))
            )
        await bench.eventually(lambda: _at_least(alerts, 2))

        assert len(await alerts()) == 2


async def _later_than(rounds, moment):
    latest = await rounds()
    return latest if latest > moment else None


async def _at_least(fetch, count):
    return len(await fetch()) >= count


class TestTimeZone:
    async def test_the_day_of_an_execution_is_taken_in_the_portal_time_zone(
        self, separate
    ):
        bench = separate["bench"]
        workflow = await bench.create_workflow(separate["client"]["id"])

        # 02:30 UTC on the 8th is still the evening of the 7th in New York.
        await bench.publish_executions(
            bench.execution(
                "ny-" + uuid.uuid4().hex,
                workflow["n8n_workflow_id"],
                started_at="2025-03-08T02:30:00Z",
                stopped_at="2025-03-08T02:30:05Z",
            )
        )
        await bench.settled()

        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 1, 0)}

    async def test_stats_take_today_in_the_portal_time_zone(self, separate):
        bench = separate["bench"]
        client = await bench.create_client()
        token = await bench.client_user(client["id"])
        workflow = await bench.create_workflow(client["id"])
        today = dt.datetime.now(NEW_YORK).date()
        for offset, counts in ((0, (3, 2, 1)), (1, (5, 5, 0)), (2, (100, 0, 100))):
            async with bench.admin as http:
                response = await http.post(
                    "/api/executions/",
                    json={
                        "client": client["id"],
                        "workflow": workflow["id"],
                        "execution_date": (
                            today - dt.timedelta(days=offset)
                        ).isoformat(),
                        "total_count": counts[0],
                        "success_count": counts[1],
                        "error_count": counts[2],
                    },
                )
            assert response.status_code == 201, response.text

        async with bench.portal.client(token) as http:
            body = (await http.get("/api/executions/stats/", params={"days": 1})).json()

        if body["period_end"] != dt.datetime.now(NEW_YORK).date().isoformat():
            pytest.fail("the day in New York changed while the test ran; run it again")
        assert body == {
            "total_executions": 8,
            "total_successes": 7,
            "total_errors": 1,
            "success_rate": 87.5,
            "period_start": (today - dt.timedelta(days=1)).isoformat(),
            "period_end": today.isoformat(),
        }


class TestIngestWhileNatsIsDown:
    async def test_nothing_is_claimed_accepted_until_nats_is_back(
        self, separate, own_nats
    ):
        bench = separate["bench"]
        workflow = await bench.create_workflow(separate["client"]["id"])
        report = bench.execution(
            "down-" + uuid.uuid4().hex, workflow["n8n_workflow_id"]
        )

        own_nats.stop()
        try:
            async with bench.admin as http:
                refused = await http.post("/api/executions/events/", json=[report])
        finally:
            own_nats.start()

        async def accepted():
            async with bench.admin as http:
                response = await http.post("/api/executions/events/", json=[report])
            return response if response.status_code == 202 else None

        answer = await bench.eventually(accepted, timeout=30)
        await bench.settled()
        assert refused.status_code == 503
        assert refused.json() == {
            "detail": "The event bus is unavailable; nothing was accepted, try again shortly."
        }
        assert answer.json() == {"accepted": 1, "rejected": []}
        assert await bench.records(workflow["id"]) == {"2025-03-07": (1, 1, 0)}
