"""Numbers and due dates at the edges of the day and the year, in a zone other than UTC.

A system of its own, whose billing clock is set through the test hook
PORTAL_BILLING_FAKE_NOW; moving the clock restarts billing with new settings.
"""

import pytest

from portal_common.testing.plugin import start_portal

AMSTERDAM = "Europe/Amsterdam"


@pytest.fixture(scope="module")
async def clocked(system_factory, driver_for):
    portal = await start_portal(
        system_factory,
        extra_env={
            "PORTAL_TIME_ZONE": AMSTERDAM,
            "PORTAL_BILLING_FAKE_NOW": "2024-03-14T12:00:00Z",
            "PORTAL_BILLING_SWEEP_INTERVAL_SECONDS": "0.5",
        },
    )
    return driver_for(portal)


async def set_clock(driver, now: str, time_zone: str = AMSTERDAM) -> None:
    system = driver.portal.system
    if (system.env["PORTAL_BILLING_FAKE_NOW"], system.env["PORTAL_TIME_ZONE"]) == (
        now,
        time_zone,
    ):
        return
    system.env["PORTAL_BILLING_FAKE_NOW"] = now
    system.env["PORTAL_TIME_ZONE"] = time_zone
    for replica in range(len(system.processes["billing"])):
        await system.restart_service("billing", replica=replica, kill=True)


def sweeps_so_far(driver) -> int:
    return sum(
        1
        for line in driver.log_lines()
        if line.get("event") == "invoice.sweep_finished"
    )


async def sweeps_run(driver, count: int) -> None:
    """Wait until `count` more sweeps have finished."""
    target = sweeps_so_far(driver) + count

    async def done():
        return sweeps_so_far(driver) >= target

    await driver.wait_for(done, what=f"{count} more sweeps")


class TestYearRollover:
    async def test_the_year_of_the_number_is_the_year_in_the_portal_time_zone(
        self, clocked
    ):
        client = await clocked.make_client()

        # 23:59 on New Year's Eve in Amsterdam (22:59 UTC).
        await set_clock(clocked, "2030-12-31T22:59:00Z")
        last_of_2030 = await clocked.create_invoice(client["id"])
        # One minute later it is 00:00:30 on 1 January in Amsterdam, still 2030 in UTC.
        await set_clock(clocked, "2030-12-31T23:00:30Z")
        first_of_2031 = await clocked.create_invoice(client["id"])
        # The same moment with the portal on UTC.
        await set_clock(clocked, "2030-12-31T23:00:30Z", "UTC")
        still_2030_in_utc = await clocked.create_invoice(client["id"])
        await set_clock(clocked, "2031-01-01T00:00:30Z", "UTC")
        new_year_in_utc = await clocked.create_invoice(client["id"])

        assert last_of_2030["invoice_number"] == "INV-2030-001"
        assert last_of_2030["created_at"] == "2030-12-31T22:59:00Z"
        assert first_of_2031["invoice_number"] == "INV-2031-001"
        assert first_of_2031["created_at"] == "2030-12-31T23:00:30Z"
        assert still_2030_in_utc["invoice_number"] == "INV-2030-002"
        assert new_year_in_utc["invoice_number"] == "INV-2031-002"


class TestDayEdges:
    async def test_due_today_is_not_overdue_until_midnight_in_the_portal_zone(
        self, clocked
    ):
        client = await clocked.make_client()
        # 23:59:59 on 14 March in Amsterdam (UTC+1).
        await set_clock(clocked, "2024-03-14T22:59:59Z")
        due_today = await clocked.create_invoice(client["id"], due_date="2024-03-14")
        due_yesterday = await clocked.create_invoice(
            client["id"], due_date="2024-03-13"
        )
        paid_late = await clocked.create_invoice(
            client["id"], due_date="2024-03-13", status="paid"
        )

        assert (due_today["status"], due_today["is_overdue"]) == ("pending", False)
        assert (due_yesterday["status"], due_yesterday["is_overdue"]) == (
            "overdue",
            True,
        )
        assert (paid_late["status"], paid_late["is_overdue"]) == ("paid", False)
        assert paid_late["paid_date"] == "2024-03-14"

        # Two seconds later it is 15 March in Amsterdam: overdue on read at once.
        await set_clock(clocked, "2024-03-14T23:00:01Z")
        after_midnight = await clocked.read_invoice(due_today["id"])
        paid_now = await clocked.create_invoice(client["id"], status="paid")

        assert (after_midnight["status"], after_midnight["is_overdue"]) == (
            "overdue",
            True,
        )
        assert paid_now["paid_date"] == "2024-03-15"

    async def test_the_same_moment_in_utc_is_still_the_day_before(self, clocked):
        client = await clocked.make_client()
        await set_clock(clocked, "2024-03-14T23:00:01Z", "UTC")

        due_14th = await clocked.create_invoice(client["id"], due_date="2024-03-14")
        paid = await clocked.create_invoice(client["id"], status="paid")

        assert (due_14th["status"], due_14th["is_overdue"]) == ("pending", False)
        assert paid["paid_date"] == "2024-03-14"

    async def test_the_sweep_marks_overdue_after_midnight_and_announces_it_once(
        self, clocked
    ):
        client = await clocked.make_client()
        await set_clock(clocked, "2024-06-20T21:59:00Z")  # 23:59 in Amsterdam (UTC+2)
        invoice = await clocked.create_invoice(client["id"], due_date="2024-06-20")
        await sweeps_run(clocked, 2)
        # Due today: reminded, not overdue.
        assert await clocked.event_types(invoice["id"]) == [
            "invoice.created",
            "invoice.due_soon",
        ]

        await set_clock(clocked, "2024-06-20T22:00:30Z")  # 00:00:30 on 21 June there

        async def announced():
            return "invoice.overdue" in await clocked.event_types(invoice["id"])

        await clocked.wait_for(announced, what="invoice.overdue")
        await sweeps_run(clocked, 3)
        envelopes = await clocked.published_events(invoice["id"])
        assert [e["type"] for e in envelopes] == [
            "invoice.created",
            "invoice.due_soon",
            "invoice.overdue",
        ]
        assert envelopes[2]["data"]["status"] == "overdue"
        assert envelopes[2]["data"]["previous_status"] == "pending"
        stored = await clocked.sql(
            "SELECT status FROM invoice WHERE id = :id", id=invoice["id"]
        )
        assert stored[0][0] == "overdue"
        assert (await clocked.read_invoice(invoice["id"]))["status"] == "overdue"

    async def test_a_reminder_goes_out_once_for_invoices_due_within_three_days(
        self, clocked
    ):
        client = await clocked.make_client()
        await set_clock(clocked, "2024-06-20T21:59:00Z")  # 20 June, 23:59 in Amsterdam
        in_three_days = await clocked.create_invoice(
            client["id"], due_date="2024-06-23"
        )
        in_four_days = await clocked.create_invoice(client["id"], due_date="2024-06-24")
        already_paid = await clocked.create_invoice(
            client["id"], due_date="2024-06-21", status="paid"
        )

        async def reminded(invoice):
            async def check():
                return "invoice.due_soon" in await clocked.event_types(invoice["id"])

            return check

        await clocked.wait_for(await reminded(in_three_days), what="the reminder")
        # The sweep that reminded the first saw the second too and left it.
        assert await clocked.event_types(in_four_days["id"]) == ["invoice.created"]

        await set_clock(clocked, "2024-06-20T22:00:30Z")  # 21 June in Amsterdam
        await clocked.wait_for(await reminded(in_four_days), what="the second reminder")
        await sweeps_run(clocked, 3)

        assert await clocked.event_types(in_three_days["id"]) == [
            "invoice.created",
            "invoice.due_soon",
        ]
        assert await clocked.event_types(in_four_days["id"]) == [
            "invoice.created",
            "invoice.due_soon",
        ]
        assert await clocked.event_types(already_paid["id"]) == ["invoice.created"]
        reminder = (await clocked.published_events(in_four_days["id"]))[1]
        assert reminder["data"]["due_date"] == "2024-06-24"
        assert reminder["data"]["status"] == "pending"
