"""How many n8n execution events per second the workflows service counts.

Not a test. Starts a scratch system (embedded PostgreSQL and NATS, auth and
workflows only unless PORTAL_SERVICES says otherwise), registers a client and
BENCH_WORKFLOWS workflows, then publishes BENCH_EVENTS finished n8n executions
(20000 by default, one object per message as n8n sends them, spread over the
workflows and ten days) straight onto `n8n.execution` as fast as JetStream
takes them, and measures until every one is counted in the database.

Reported: the publishing rate, and the end-to-end rate from the first publish
to the last execution counted (the figure that matters: the consumer's).

    .venv/bin/python services/workflows/bench_ingest.py

Options (environment): BENCH_EVENTS (20000), BENCH_WORKFLOWS (20),
BENCH_LIST_SIZE (executions per message, 1), BENCH_REPLICAS (workflows
replicas, 1), BENCH_LOG_LEVEL (the services' log level, INFO).
"""

import asyncio
import datetime as dt
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import nats
from sqlalchemy import func, select

from portal_common.bus import publish_message
from portal_common.db import make_engine
from portal_common.events import Envelope

os.environ.setdefault("PORTAL_SERVICES", "auth,workflows")

from portal_deploy.embedded import free_port  # noqa: E402 (reads PORTAL_SERVICES)
from portal_deploy.launcher import Infrastructure, System, ensure_bootstrap_admin  # noqa: E402
from portal_deploy.secrets import admin_password  # noqa: E402
from workflows.models import workflows  # noqa: E402

PUBLISH_CONCURRENCY = 256


def executions(count: int, n8n_ids: list[str]) -> list[dict]:
    start = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    reports = []
    for n in range(count):
        started = start + dt.timedelta(days=n % 10, seconds=n)
        reports.append(
            {
                "id": str(10_000_000 + n),
                "finished": n % 7 != 0,
                "mode": "trigger",
                "status": "success" if n % 7 else "error",
                "startedAt": started.isoformat().replace("+00:00", "Z"),
                "stoppedAt": (started + dt.timedelta(seconds=2))
                .isoformat()
                .replace("+00:00", "Z"),
                "workflowId": n8n_ids[n % len(n8n_ids)],
                "retryOf": None,
                "waitTill": None,
            }
        )
    return reports


async def register(system: System, js, count: int) -> list[str]:
    username, _, _ = await ensure_bootstrap_admin(system)
    password, _ = admin_password(system.data_dir)
    client_id = str(uuid.uuid4())
    envelope = Envelope.new(
        "client.created",
        {
            "id": client_id,
            "company_name": "Bench Co",
            "contact_name": "B",
            "email": "b@example.com",
            "status": "active",
            "plan_tier": "basic",
        },
        source="clients",
    )
    await publish_message(
        js,
        envelope.subject,
        envelope.encode(),
        msg_id=envelope.event_id,
        headers=envelope.headers(),
    )
    n8n_ids = [f"bench-{n}" for n in range(count)]
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as http:
        login = await http.post(
            "/api/auth/token/", json={"username": username, "password": password}
        )
        http.headers["Authorization"] = f"Token {login.json()['token']}"
        while (
            await http.get("/api/workflows/", params={"client": client_id})
        ).status_code != 200:
            await asyncio.sleep(0.1)
        for n8n_id in n8n_ids:
            created = await http.post(
                "/api/workflows/",
                json={
                    "client": client_id,
                    "workflow_name": n8n_id,
                    "n8n_workflow_id": n8n_id,
                },
            )
            assert created.status_code == 201, created.text
    return n8n_ids


async def counted(engine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(
                select(func.coalesce(func.sum(workflows.c.execution_count), 0))
            )
        )


async def measure(
    system: System, *, events: int, workflow_count: int, list_size: int
) -> dict:
    connection = await nats.connect(system.env["PORTAL_NATS_URL"])
    js = connection.jetstream()
    engine = make_engine(system.env["PORTAL_WORKFLOWS_DATABASE_URL"], pool_size=1)
    try:
        n8n_ids = await register(system, js, workflow_count)
        reports = executions(events, n8n_ids)
        messages = [
            reports[i : i + list_size] for i in range(0, len(reports), list_size)
        ]
        payloads = [
            (
                json.dumps(batch[0] if list_size == 1 else batch).encode(),
                f"{batch[0]['id']}:{batch[0]['status']}",
            )
            for batch in messages
        ]
        limit = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def publish(payload: bytes, msg_id: str) -> None:
            async with limit:
                await publish_message(
                    js, "n8n.execution", payload, msg_id=msg_id, timeout=30
                )

        began = time.perf_counter()
        await asyncio.gather(
            *(publish(payload, msg_id) for payload, msg_id in payloads)
        )
        published = time.perf_counter()
        while (total := await counted(engine)) < events:
            if time.perf_counter() - began > 600:
                raise TimeoutError(f"only {total} of {events} counted after 10 minutes")
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        assert total == events, f"{total} counted for {events} published"
    finally:
        await engine.dispose()
        await connection.close()
    return {
        "events": events,
        "messages": len(payloads),
        "publish_per_s": round(events / (published - began)),
        "end_to_end_seconds": round(finished - began, 2),
        "events_per_s": round(events / (finished - began)),
    }


async def main() -> int:
    events = int(os.environ.get("BENCH_EVENTS", "20000"))
    workflow_count = int(os.environ.get("BENCH_WORKFLOWS", "20"))
    list_size = int(os.environ.get("BENCH_LIST_SIZE", "1"))
    replicas = int(os.environ.get("BENCH_REPLICAS", "1"))
    with tempfile.TemporaryDirectory(prefix="portal-bench-ingest-") as scratch:
        data_dir = Path(scratch)
        infra = Infrastructure.start(data_dir, environ={})
        system = System(
            infra=infra,
            data_dir=data_dir,
            gateway_port=free_port(),
            extra_env={"PORTAL_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO")},
            replicas={"workflows": replicas},
        )
        try:
            await system.prepare()
            await system.start()
            result = await measure(
                system,
                events=events,
                workflow_count=workflow_count,
                list_size=list_size,
            )
        finally:
            system.stop()
            infra.stop()
    print(
        f"{result['events']} executions in {result['messages']} messages, {replicas} workflows replica(s), "
        f"{os.cpu_count()} cores: published at {result['publish_per_s']}/s; all counted after "
        f"{result['end_to_end_seconds']} s = {result['events_per_s']} events/s end to end"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
