"""`make bench`: how many list requests per second the portal serves.

Starts the whole system on embedded PostgreSQL and NATS in a scratch folder,
seeds data through the API (clients, workflows with 30 days of execution
records, invoices, tickets), then for each list path runs a bounded load of
concurrent GETs of one page of 50 through the gateway and reports requests
per second and latency percentiles, next to the figures of the original
portal (about 7 req/s for a page of 50 workflows on one core) and of a plain
asyncpg app (about 600). The load is bounded in count and time and only
targets 127.0.0.1. Results also go to `bench-results/latest.json`.

Options (environment): BENCH_SECONDS (per path, default 10),
BENCH_CONCURRENCY (default 16), BENCH_ROWS (rows per resource, default 60).
"""

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from portal_deploy.embedded import free_port
from portal_deploy.launcher import Infrastructure, System, ensure_bootstrap_admin
from portal_deploy.secrets import admin_password

PATHS = [
    "/api/clients/?page_size=50",
    "/api/workflows/?page_size=50",
    "/api/executions/?page_size=50",
    "/api/invoices/?page_size=50",
    "/api/support-tickets/?page_size=50",
    "/api/credentials/?page_size=50",
    "/api/auth/users/?page_size=50",
]


async def seed(http: httpx.AsyncClient, rows: int) -> None:
    """Create `rows` of each resource that is running; skip what is not."""
    for index in range(rows):
        client = await http.post(
            "/api/clients/",
            json={"company_name": f"Bench {index}", "contact_name": "Bench", "email": f"bench{index}@example.com",
                  "monthly_fee": "299.00"},
        )
        if client.status_code != 201:
            return
        client_id = client.json()["id"]
        workflow = await http.post(
            "/api/workflows/",
            json={"client": client_id, "workflow_name": f"Flow {index}", "n8n_workflow_id": f"bench-{index}"},
        )
        if workflow.status_code == 201:
            for day in range(1, 31):
                await http.post(
                    "/api/executions/",
                    json={"client": client_id, "workflow": workflow.json()["id"],
                          "execution_date": f"2024-01-{day:02d}", "total_count": 50, "success_count": 49,
                          "error_count": 1},
                )
        await http.post("/api/invoices/", json={"client": client_id, "amount": "299.00", "type": "monthly",
                                                "due_date": "2030-01-31"})
        await http.post("/api/support-tickets/", json={"client": client_id, "subject": "Bench",
                                                       "description": "Bench", "priority": "low"})
        await http.post("/api/credentials/", json={"client": client_id, "service_name": "Shopify",
                                                   "credential_type": "api_key", "data": {"api_key": "x"}})


async def load(http: httpx.AsyncClient, path: str, *, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal failures
        while time.monotonic() < deadline and len(latencies) < 1_000_000:
            started = time.perf_counter()
            response = await http.get(path)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                failures += 1

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    ordered = sorted(latencies)
    return {
        "path": path,
        "requests": len(latencies),
        "failures": failures,
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1) if ordered else None,
    }


async def main() -> int:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    rows = int(os.environ.get("BENCH_ROWS", "60"))
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as scratch:
        data_dir = Path(scratch)
        infra = Infrastructure.start(data_dir)
        system = System(infra=infra, data_dir=data_dir, gateway_port=free_port(),
                        extra_env={"PORTAL_LOG_LEVEL": "WARNING"})
        try:
            await system.prepare()
            username, _, _ = await ensure_bootstrap_admin(system)
            password, _ = admin_password(data_dir)
            await system.start()
            async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as http:
                token = (await http.post("/api/auth/token/", json={"username": username, "password": password})).json()["token"]
                http.headers["Authorization"] = f"Token {token}"
                print(f"seeding {rows} rows per resource…", flush=True)
                await seed(http, rows)
                await asyncio.sleep(2)  # let projections catch up
                results = []
                for path in PATHS:
                    probe = await http.get(path)
                    if probe.status_code != 200:
                        print(f"{path}: skipped ({probe.status_code})")
                        continue
                    result = await load(http, path, seconds=seconds, concurrency=concurrency)
                    results.append(result)
                    print(f"{path}: {result['req_per_s']} req/s, p50 {result['p50_ms']} ms, "
                          f"p99 {result['p99_ms']} ms, {result['failures']} failures", flush=True)
        finally:
            system.stop()
            infra.stop()
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(
        {"seconds": seconds, "concurrency": concurrency, "rows": rows, "cores": os.cpu_count(), "results": results},
        indent=2))
    print("reference: original portal ~7 req/s (workflows, page of 50, one core); plain asyncpg ~600 req/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
