"""Firing SLA warnings and breaches that fell due: the SLA part of the beat sweep.

Why it works in batches: with thousands of deadlines due at once, one transaction per clock
made the sweep the bottleneck (about 19 breaches/s). Here one transaction claims up to
``BATCH`` due clocks, marks them warned or breached and emits one ``SlaWarned`` /
``SlaBreached`` per clock (trail row and outbox row), then commits once. What the SLA policy
does about it (raise the priority, tell the lead) runs later in the worker pool, on the
``escalations`` queue (``autocrm.automation.escalations``), so breaches escalate in parallel
and never hold up the next claim.

Only clocks still running at the sweep's moment are claimed (``stopped_at IS NULL``): a reply
stops its clock in its own transaction, so a reply that committed before the sweep can never
be breached. Each clock fires at most once, however many sweeps run:
- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` gives concurrent sweeps disjoint batches
  without waiting for each other, and skips a clock that a reply is stopping right now;
- SQLite: a sweep's transaction begins ``IMMEDIATE`` (``autocrm.database``), so the claimer
  holds the database's one write lock from its SELECT to its commit and is the only one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute

from autocrm.events import causes
from autocrm.events.emit import emit
from autocrm.events.kinds import SlaBreached, SlaDue, SlaWarned
from autocrm.extensions import db
from autocrm.sla.models import SlaClock
from autocrm.transaction import rolls_back_on_error

BATCH = 500


@dataclass(frozen=True)
class Watch:
    """A moment a clock watches: when it falls due, what records that it fired, what to emit."""

    what: str  # names the rule in the trail: sla.<metric>.<what>
    due: InstrumentedAttribute[datetime | None]
    fired: InstrumentedAttribute[datetime | None]
    event: type[SlaDue]


WARNING = Watch("warning", SlaClock.warn_at, SlaClock.warned_at, SlaWarned)
BREACH = Watch("breach", SlaClock.due_at, SlaClock.breached_at, SlaBreached)


def claim_due(watch: Watch, now: datetime, limit: int = BATCH) -> list[int]:
    """In the current transaction (the caller commits): claim up to ``limit`` running clocks
    whose ``watch`` fell due by ``now``, mark them fired at ``now`` and emit their events.
    Returns the ids of the clocks claimed."""
    clock = (SlaClock.id, SlaClock.ticket_id, SlaClock.metric, SlaClock.workflow_version_id)
    rows = db.session.execute(
        select(*clock, watch.due)
        .where(SlaClock.stopped_at.is_(None), watch.fired.is_(None), watch.due <= now)
        .order_by(watch.due)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock already
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    db.session.execute(
        update(SlaClock).where(SlaClock.id.in_(ids)).values({watch.fired.key: now}),
        execution_options={"synchronize_session": False},
    )
    for row in rows:
        _emit(watch, row, now)
    return ids


@rolls_back_on_error
def do_fire_due(watch: Watch, now: datetime, limit: int = BATCH) -> int:
    """Claim and fire one batch in one transaction; returns how many fired."""
    fired = len(claim_due(watch, now, limit))
    db.session.commit()
    return fired


def _emit(watch: Watch, row: Any, now: datetime) -> None:
    deadline: datetime = row[4]
    because = [
        {"field": f"sla.{row.metric}", "op": "due", "value": str(deadline), "actual": str(now)}
    ]
    with causes.caused_by(
        f"sla.{row.metric}.{watch.what}",
        workflow_version=row.workflow_version_id,
        because=because,
        depth=1,
    ):
        emit(
            watch.event(
                ticket_id=row.ticket_id,
                metric=row.metric,
                clock_id=row.id,
                deadline=deadline.isoformat(),
                lateness_seconds=(now - deadline).total_seconds(),
            )
        )
