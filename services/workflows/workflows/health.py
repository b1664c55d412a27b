"""The workflow health check: low success rates and silent workflows, reported once.

How it works. Every PORTAL_WORKFLOW_HEALTH_INTERVAL_SECONDS (an hour by
default) the scheduler of each replica opens a transaction and asks for a
PostgreSQL advisory lock with `pg_try_advisory_xact_lock`; a replica that does
not get it skips the round, so two replicas never check at once. The holder
skips too when another replica completed a check less than one interval ago
(`health_check_run`), so the check runs about once per interval however many
replicas there are. One query then gives every active workflow its last
execution and its totals over the last 7 days (the records dated from
today - 7 to today in PORTAL_TIME_ZONE, as `stats?days=7` counts them):

* `low_success_rate`: it ran in that period and its success rate is below
  PORTAL_WORKFLOW_HEALTH_THRESHOLD (percent, default 80);
* `silent`: its last execution (or, if it never ran, its registration) is
  more than 7 days ago.

A condition found that is not yet in `workflow_alert` is recorded there and
announced once as `workflow.health_alert` (the support service mails the
staff); a recorded condition that no longer holds is removed, so the next
episode is announced again. Paused and `error` workflows are not checked,
and their recorded conditions are cleared.

Not done: the check does not set a workflow's status to `error` itself; the
alert goes to the staff, who decide.
"""

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_common.events import record_event
from workflows import events
from workflows.models import (
    execution_records,
    health_check_runs,
    workflow_alerts,
    workflows,
)

log = structlog.get_logger("workflows.health")

PERIOD_DAYS = 7
LOW_SUCCESS_RATE = "low_success_rate"
SILENT = "silent"
# Any fixed 64-bit number unique among this database's advisory locks.
HEALTH_CHECK_LOCK = 0x776B66_6865616C
CHECK_NAME = "workflow_health"


async def run_health_check(
    session: AsyncSession,
    now: dt.datetime,
    *,
    threshold: float,
    zone: ZoneInfo,
    min_interval: dt.timedelta | None = None,
) -> list[dict[str, Any]] | None:
    """Check every active workflow in the caller's transaction.

    Returns the alerts recorded (their event payloads), or None when another
    replica is checking right now or checked less than `min_interval` ago.
    """
    if not await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": HEALTH_CHECK_LOCK}
    ):
        return None
    if min_interval is not None and not await _due(session, now, min_interval):
        return None

    today = now.astimezone(zone).date()
    silent_before = now - dt.timedelta(days=PERIOD_DAYS)
    rows = (await session.execute(_health_query(today))).mappings().all()
    reported = set(
        (
            await session.execute(
                select(workflow_alerts.c.workflow_id, workflow_alerts.c.condition)
            )
        ).tuples()
    )

    alerts: list[dict[str, Any]] = []
    new: list[tuple[Any, str]] = []
    holding: set[tuple[Any, str]] = set()
    for row in rows:
        success_rate = (
            round(row["successes"] / row["total"] * 100, 2) if row["total"] else None
        )
        last_seen = row["last_execution"] or row["created_at"]
        found = {
            LOW_SUCCESS_RATE: success_rate is not None and success_rate < threshold,
            SILENT: last_seen < silent_before,
        }
        for condition, holds in found.items():
            if not holds:
                continue
            holding.add((row["id"], condition))
            if (row["id"], condition) in reported:
                continue
            new.append((row["id"], condition))
            alerts.append(
                events.workflow_health_alert(
                    row,
                    condition=condition,
                    success_rate=success_rate,
                    threshold=threshold,
                    last_execution=row["last_execution"],
                    period_days=PERIOD_DAYS,
                )
            )

    if new:
        await session.execute(
            insert(workflow_alerts),
            [
                {"workflow_id": workflow_id, "condition": condition, "reported_at": now}
                for workflow_id, condition in new
            ],
        )
    cleared = reported - holding
    if cleared:
        await session.execute(
            delete(workflow_alerts).where(
                tuple_(workflow_alerts.c.workflow_id, workflow_alerts.c.condition).in_(
                    sorted(cleared)
                )
            )
        )
    for alert in alerts:
        await record_event(
            session, events.WORKFLOW_HEALTH_ALERT, alert, source="workflows"
        )
        log.info(
            "workflow.health_alert",
            workflow_id=alert["id"],
            condition=alert["condition"],
        )
    log.info(
        "workflow.health_checked",
        workflows=len(rows),
        alerts=len(alerts),
        cleared=len(cleared),
    )
    return alerts


async def _due(
    session: AsyncSession, now: dt.datetime, min_interval: dt.timedelta
) -> bool:
    last = await session.scalar(
        select(health_check_runs.c.last_run_at).where(
            health_check_runs.c.name == CHECK_NAME
        )
    )
    if last is not None and now - last < min_interval:
        return False
    statement = insert(health_check_runs).values(name=CHECK_NAME, last_run_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"last_run_at": now}
        )
    )
    return True


def _health_query(today: dt.date):
    since = today - dt.timedelta(days=PERIOD_DAYS)
    totals = (
        select(
            execution_records.c.workflow_id,
            func.sum(execution_records.c.success_count).label("successes"),
            func.sum(execution_records.c.total_count).label("total"),
        )
        .where(
            execution_records.c.execution_date >= since,
            execution_records.c.execution_date <= today,
        )
        .group_by(execution_records.c.workflow_id)
        .subquery()
    )
    return (
        select(
            workflows.c.id,
            workflows.c.client_id,
            workflows.c.workflow_name,
            workflows.c.n8n_workflow_id,
            workflows.c.last_execution,
            workflows.c.created_at,
            func.coalesce(totals.c.successes, 0).label("successes"),
            func.coalesce(totals.c.total, 0).label("total"),
        )
        .select_from(
            workflows.outerjoin(totals, totals.c.workflow_id == workflows.c.id)
        )
        .where(workflows.c.status == "active")
        .order_by(workflows.c.id)
    )


class HealthCheckScheduler:
    """Runs `run_health_check` every interval in this process, in the background."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval_seconds: float,
        threshold: float,
        zone: ZoneInfo,
    ) -> None:
        self._sessions = sessions
        self._interval = interval_seconds
        self._threshold = threshold
        self._zone = zone
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="workflow-health-check")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def _run(self) -> None:
        # The first round comes soon after start-up, so a service restarted
        # more often than the interval still checks.
        await asyncio.sleep(min(self._interval, 10.0))
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def run_once(self) -> list[dict[str, Any]] | None:
        # Slightly under one interval, so a replica whose timer fires a
        # little early does not skip a whole round.
        min_interval = dt.timedelta(seconds=self._interval * 0.9)
        try:
            async with self._sessions() as session, session.begin():
                return await run_health_check(
                    session,
                    dt.datetime.now(dt.UTC),
                    threshold=self._threshold,
                    zone=self._zone,
                    min_interval=min_interval,
                )
        except Exception:
            # A database outage: the next round tries again.
            log.exception("workflow.health_check_failed")
            return None
