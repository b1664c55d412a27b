"""Reading n8n execution objects: ids, statuses, days (no bus, no database)."""

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workflows.ingest import InvalidExecution, parse_execution

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
CASES = json.loads((Path(__file__).parent / "n8n-executions.json").read_text())


def report(**fields):
    return {
        "id": "1",
        "workflowId": "W",
        "status": "success",
        "startedAt": "2025-03-07T12:00:00.000Z",
        "stoppedAt": "2025-03-07T12:00:01.000Z",
        **fields,
    }


class TestIds:
    def test_numbers_are_read_as_the_strings_n8n_uses(self):
        parsed = parse_execution(report(id=4002, workflowId=123), UTC)

        assert (parsed.execution_id, parsed.n8n_workflow_id) == ("4002", "123")
        assert parsed == parse_execution(report(id="4002", workflowId="123"), UTC)

    def test_ids_keep_their_case(self):
        assert (
            parse_execution(report(workflowId="wfPLACEHOLDER001"), UTC).n8n_workflow_id
            == "wfPLACEHOLDER001"
        )

    @pytest.mark.parametrize(
        "value", [None, True, 1.5, "", "   ", ["1"], {"id": 1}, "x" * 256]
    )
    def test_other_ids_are_refused(self, value):
        with pytest.raises(InvalidExecution):
            parse_execution(report(id=value), UTC)

    def test_the_message_id_is_unique_per_execution_and_status(self):
        assert (
            parse_execution(
                report(id=7, status="running", stoppedAt=None), UTC
            ).message_id
            == "7:running"
        )


class TestStatuses:
    @pytest.mark.parametrize(
        ("status", "outcome"),
        [
            ("success", "success"),
            ("error", "error"),
            ("crashed", "error"),
            ("unknown", "error"),
            ("failed", "error"),
            ("canceled", "canceled"),
            ("running", None),
            ("waiting", None),
            ("new", None),
        ],
    )
    def test_each_n8n_status_has_its_outcome(self, status, outcome):
        assert parse_execution(report(status=status), UTC).outcome == outcome

    def test_the_finished_flag_does_not_override_the_status(self):
        # n8n reports errors with finished false; the status decides.
        assert parse_execution(CASES[1], UTC).outcome == "error"

    @pytest.mark.parametrize(
        ("fields", "status"),
        [
            ({"finished": True}, "success"),
            ({"finished": False, "stoppedAt": "2025-03-06T08:12:04.183Z"}, "error"),
            ({"finished": False, "waitTill": "2025-03-08T00:00:00Z"}, "waiting"),
            ({"finished": False, "stoppedAt": None}, "running"),
        ],
    )
    def test_older_objects_without_status_get_the_one_n8n_derived(self, fields, status):
        item = report(**fields)
        del item["status"]

        assert parse_execution(item, UTC).status == status

    def test_the_case_without_status_counts_as_an_error_on_its_start_day(self):
        parsed = parse_execution(CASES[4], UTC)

        assert (parsed.status, parsed.execution_date) == ("error", dt.date(2025, 3, 6))

    @pytest.mark.parametrize("status", ["SUCCESS", "done", 1])
    def test_other_statuses_are_refused(self, status):
        with pytest.raises(InvalidExecution):
            parse_execution(report(status=status), UTC)


class TestDays:
    def test_the_day_is_the_start_date_in_the_portal_zone(self):
        late = report(
            startedAt="2025-03-08T02:30:00Z", stoppedAt="2025-03-08T02:31:00Z"
        )

        assert parse_execution(late, UTC).execution_date == dt.date(2025, 3, 8)
        assert parse_execution(late, NEW_YORK).execution_date == dt.date(2025, 3, 7)

    def test_without_a_start_the_stop_decides(self):
        parsed = parse_execution(
            report(startedAt=None, stoppedAt="2025-02-01T00:00:03.480Z"), UTC
        )

        assert parsed.execution_date == dt.date(2025, 2, 1)

    def test_a_stop_before_the_start_still_takes_the_start_day(self):
        parsed = parse_execution(CASES[3], UTC)

        assert parsed.execution_date == dt.date(2025, 1, 31)
        assert parsed.stopped_at == dt.datetime(
            2025, 2, 1, 0, 0, 3, 480000, tzinfo=dt.UTC
        )

    def test_a_time_without_offset_is_utc(self):
        parsed = parse_execution(report(startedAt="2025-03-08T02:30:00"), NEW_YORK)

        assert parsed.started_at == dt.datetime(2025, 3, 8, 2, 30, tzinfo=dt.UTC)
        assert parsed.execution_date == dt.date(2025, 3, 7)

    def test_an_unfinished_execution_needs_no_time(self):
        assert (
            parse_execution(
                report(status="new", startedAt=None, stoppedAt=None), UTC
            ).execution_date
            is None
        )

    @pytest.mark.parametrize(
        "fields",
        [
            {"startedAt": None, "stoppedAt": None},
            {"startedAt": "yesterday"},
            {"startedAt": 1741348800},
            {"stoppedAt": "2025-13-01T00:00:00Z"},
        ],
    )
    def test_a_finished_execution_needs_readable_times(self, fields):
        with pytest.raises(InvalidExecution):
            parse_execution(report(**fields), UTC)

    def test_extra_fields_and_any_mode_are_fine(self):
        parsed = parse_execution(
            {**CASES[1], "mode": "evaluation", "somethingNew": {"a": 1}}, UTC
        )

        assert parsed.execution_id == "1002"
