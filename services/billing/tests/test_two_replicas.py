"""Two billing replicas behind the gateway: numbers stay consecutive, notices go out once."""

import asyncio
import re
from datetime import date

import pytest

from portal_common.testing.plugin import start_portal

NUMBER = re.compile(r"INV-(\d{4})-(\d{3,})")
YEAR = 2030


@pytest.fixture(scope="module")
async def replicated(system_factory, driver_for):
    portal = await start_portal(
        system_factory,
        replicas={"billing": 2},
        extra_env={
            "PORTAL_BILLING_FAKE_NOW": f"{YEAR}-06-01T12:00:00Z",
            "PORTAL_BILLING_SWEEP_INTERVAL_SECONDS": "0.5",
        },
    )
    return driver_for(portal)


def lines_per_replica(driver, event: str) -> list[int]:
    counts = []
    for process in driver.portal.system.processes["billing"]:
        text = process.log_path.read_text(errors="replace")
        counts.append(text.count(f'"event": "{event}"'))
    return counts


async def test_fifty_invoices_created_at_once_on_two_replicas_are_consecutive(
    replicated,
):
    client = await replicated.make_client()
    issued_before = lines_per_replica(replicated, "invoice.issued")

    async with replicated.staff() as http:
        valid = [
            http.post("/api/invoices/", json=replicated.invoice_body(client["id"]))
            for _ in range(50)
        ]
        # Refused creations interleaved: they must not use up a number.
        refused = [
            http.post(
                "/api/invoices/",
                json=replicated.invoice_body(client["id"], amount="-1"),
            )
            for _ in range(10)
        ]
        responses = await asyncio.gather(*valid, *refused)

    assert [r.status_code for r in responses] == [201] * 50 + [400] * 10
    matches = [NUMBER.fullmatch(r.json()["invoice_number"]) for r in responses[:50]]
    assert {int(m[1]) for m in matches} == {YEAR}
    sequence = sorted(int(m[2]) for m in matches)
    assert sequence == list(range(sequence[0], sequence[0] + 50))
    issued = [
        after - before
        for after, before in zip(
            lines_per_replica(replicated, "invoice.issued"), issued_before, strict=True
        )
    ]
    assert sum(issued) == 50 and all(issued), issued  # both replicas issued numbers


async def test_past_999_the_number_simply_grows(replicated):
    client = await replicated.make_client()
    [(last,)] = await replicated.sql(
        "SELECT coalesce(max(last_number), 0) FROM invoice_counter WHERE year = :year",
        year=YEAR,
    )
    assert last < 998
    await replicated.sql(
        "INSERT INTO invoice_counter (year, last_number) VALUES (:year, 998) "
        "ON CONFLICT (year) DO UPDATE SET last_number = 998",
        year=YEAR,
    )

    numbers = [
        (await replicated.create_invoice(client["id"]))["invoice_number"]
        for _ in range(3)
    ]

    assert numbers == [f"INV-{YEAR}-999", f"INV-{YEAR}-1000", f"INV-{YEAR}-1001"]
    async with replicated.staff() as http:
        ascending = await http.get(
            "/api/invoices/",
            params={"client": client["id"], "ordering": "invoice_number"},
        )
        descending = await http.get(
            "/api/invoices/",
            params={"client": client["id"], "ordering": "-invoice_number"},
        )
        found = await http.get("/api/invoices/", params={"search": f"INV-{YEAR}-1000"})
    assert [row["invoice_number"] for row in ascending.json()["results"]] == numbers
    assert [row["invoice_number"] for row in descending.json()["results"]] == numbers[
        ::-1
    ]
    assert [row["invoice_number"] for row in found.json()["results"]] == [
        f"INV-{YEAR}-1000"
    ]


async def test_two_sweeping_replicas_announce_each_invoice_once(replicated):
    client = await replicated.make_client()
    due_soon = await replicated.create_invoice(client["id"], due_date=f"{YEAR}-06-03")
    lapsing = await replicated.create_invoice(client["id"], due_date=f"{YEAR}-07-01")
    # Time passing for this invoice: its due date moves into the past behind
    # the API's back, as if the calendar had turned.
    await replicated.sql(
        "UPDATE invoice SET due_date = :due WHERE id = :id",
        due=date(YEAR, 5, 1),
        id=lapsing["id"],
    )

    async def both_announced():
        reminded = "invoice.due_soon" in await replicated.event_types(due_soon["id"])
        overdue = "invoice.overdue" in await replicated.event_types(lapsing["id"])
        return reminded and overdue

    await replicated.wait_for(
        both_announced, what="the reminder and the overdue notice"
    )
    before = lines_per_replica(replicated, "invoice.sweep_finished")

    async def both_swept_again():
        now = lines_per_replica(replicated, "invoice.sweep_finished")
        return all(after >= was + 2 for after, was in zip(now, before, strict=True))

    await replicated.wait_for(both_swept_again, what="more sweeps on both replicas")
    assert await replicated.event_types(due_soon["id"]) == [
        "invoice.created",
        "invoice.due_soon",
    ]
    assert await replicated.event_types(lapsing["id"]) == [
        "invoice.created",
        "invoice.overdue",
    ]
    assert (await replicated.read_invoice(lapsing["id"]))["status"] == "overdue"
