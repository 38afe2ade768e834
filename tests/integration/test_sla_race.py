"""A reply in time is never breached, with a real beat and a real worker sweeping beside it.

Issue 10's bug: an agent replied 0.02 s into the target, but the clock was stopped only when a
worker handled the reply's event, and the beat sweep got there first. Here the worker is there
for beat's ticks (it runs the sweep) and for escalations, but consumes nothing from the queue of
ticket events: a design that needs a worker to start or stop a clock fails, one way or the
other. If clocks were started by a worker, the unanswered marker ticket would never breach; if
they were stopped by a worker, every answered ticket would be breached 3 s after it was opened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.people.models import AssignmentPolicy, User
from autocrm.sla.models import SlaClock
from autocrm.tickets import conversation
from autocrm.tickets.models import Priority, Ticket, TicketEvent
from celeryconfig import BEAT_QUEUE, ESCALATIONS_QUEUE
from tests import processes
from tests.processes import open_ticket, snapshot, staffed_team, wait_for

TICKETS = 50
FIRST_RESPONSE_S = 3.0
REPLY_AFTER_S = 0.02


@pytest.fixture(scope="module")
def sweeping_worker(
    app: Any, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Beat, and a worker that runs its sweeps and escalations but handles no ticket event."""
    log_dir: Path = tmp_path_factory.mktemp("sla-race")
    with processes.worker_and_beat(
        database_url, redis_url, log_dir, queues=f"{BEAT_QUEUE},{ESCALATIONS_QUEUE}"
    ):
        yield


def created_at(ticket_id: int) -> Any:
    return snapshot(
        lambda: db.session.scalar(select(Ticket.created_at).where(Ticket.id == ticket_id))
    )


def fired(ticket_ids: list[int], kind: str) -> list[int]:
    return snapshot(
        lambda: list(
            db.session.scalars(
                select(TicketEvent.ticket_id).where(
                    TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == kind
                )
            )
        )
    )


def reply_in_time(desk: processes.Desk) -> int:
    """Open a ticket and answer it ``REPLY_AFTER_S`` after it was opened."""
    ticket_id = open_ticket(desk, priority=Priority.HIGH)
    opened = created_at(ticket_id)
    time.sleep(max(0.0, (opened + timedelta(seconds=REPLY_AFTER_S) - utcnow()).total_seconds()))
    conversation.do_add_message(
        db.session.get_one(User, desk.admin_id), ticket_id, "On it, thanks for the details."
    )
    db.session.rollback()  # end the read of the returned message
    return ticket_id


def test_a_reply_in_time_is_never_breached_with_beat_sweeping_beside_it(app, sweeping_worker):
    with (
        app.app_context(),
        processes.committed_data(),
        processes.fast_sla_workflow(FIRST_RESPONSE_S),
    ):
        desk = staffed_team(agents=1, policy=AssignmentPolicy.MANUAL)
        answered = [reply_in_time(desk) for _ in range(TICKETS)]
        # Nobody answers this one, opened last: its breach proves a sweep ran after every
        # deadline above had passed.
        marker = open_ticket(desk, priority=Priority.HIGH)
        breached = wait_for(
            lambda: fired([marker], "sla.breached"), bool, timeout=FIRST_RESPONSE_S + 30
        )
        assert breached == [marker], "the sweep never breached the unanswered ticket"

        assert fired(answered, "sla.breached") == [], "answered in time, yet breached"
        assert fired(answered, "sla.warning") == []
        clocks = snapshot(
            lambda: db.session.execute(
                select(SlaClock.started_at, SlaClock.stopped_at, SlaClock.breached_at).where(
                    SlaClock.ticket_id.in_(answered), SlaClock.metric == "first_response"
                )
            ).all()
        )
        assert len(clocks) == TICKETS
        for started, stopped, breached_at in clocks:
            assert breached_at is None
            assert stopped is not None
            assert (stopped - started).total_seconds() < FIRST_RESPONSE_S
