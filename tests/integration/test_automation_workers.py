"""The automation end to end, through real Celery worker and beat processes.

One worker (prefork, two processes, so two events can be handled at once) and one beat run for
the whole module; each test commits its data for real and deletes it afterwards (see
``tests/processes.py``). Assignment happens when the worker handles ``ticket.created`` (or
when an agent's load drops); SLA breaches and waiting assignments by beat's sweep, every 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from autocrm.columns import utcnow
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.notifications.models import Notification
from autocrm.people.models import AssignmentPolicy, User
from autocrm.sla.models import SlaClock
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket, TicketEvent
from tests import processes
from tests.conftest import wait_until
from tests.processes import Desk, open_ticket, snapshot, staffed_team, wait_for

SWEEP_PERIOD_S = 2.0
FIRST_RESPONSE_S = 3.0


@pytest.fixture(scope="module")
def automation(
    app: Any, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log_dir: Path = tmp_path_factory.mktemp("automation")
    with processes.worker_and_beat(database_url, redis_url, log_dir, pool="prefork", concurrency=2):
        yield


@pytest.fixture
def committed(app: Any, automation: None) -> Iterator[datetime]:
    with app.app_context(), processes.committed_data() as started:
        yield started
        # Let the worker finish what the test set off before its rows are deleted.
        # (A few follow-up events can wait much longer on PostgreSQL: see the xfail in
        # test_reliability.py about publishing at savepoint release; they are left to vanish.)
        wait_until(lambda: processes.idle(started), timeout=5)


def assignee(ticket_id: int) -> int | None:
    return snapshot(
        lambda: db.session.scalar(select(Ticket.assignee_id).where(Ticket.id == ticket_id))
    )


def wait_assigned(ticket_id: int, timeout: float = 15) -> int:
    found = wait_for(lambda: assignee(ticket_id), lambda a: a is not None, timeout)
    assert found is not None, f"ticket {ticket_id} was not assigned within {timeout}s"
    return found


def handled(ticket_id: int, kind: str = "ticket.created") -> bool:
    return snapshot(
        lambda: (
            db.session.scalar(
                select(OutboxEvent.processed_at).where(
                    OutboxEvent.ticket_id == ticket_id, OutboxEvent.kind == kind
                )
            )
            is not None
        )
    )


def trail(ticket_id: int, kind: str) -> list[tuple[dict[str, Any], datetime]]:
    return snapshot(
        lambda: [
            (row.data, row.created_at)
            for row in db.session.execute(
                select(TicketEvent.data, TicketEvent.created_at)
                .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)
                .order_by(TicketEvent.id)
            )
        ]
    )


def admin_of(desk: Desk) -> User:
    return db.session.get_one(User, desk.admin_id)


# -- assignment ---------------------------------------------------------------------------------


def test_round_robin_gives_two_tickets_to_two_agents_and_names_the_rule(committed):
    desk = staffed_team(agents=2)
    first, second = open_ticket(desk), open_ticket(desk)
    assigned = {wait_assigned(first), wait_assigned(second)}
    assert assigned == set(desk.agent_ids)

    [(data, _)] = trail(first, "ticket.assigned")
    assert data["cause"]["rule"] == "assignment:round_robin"
    assert data["cause"]["because"][0]["value"] == "round_robin"


def test_least_open_picks_the_agent_with_fewer_open_tickets(committed):
    desk = staffed_team(agents=2, policy=AssignmentPolicy.LEAST_OPEN)
    busy, less_busy = desk.agent_ids  # round robin would pick ``busy``: the lower id, first
    for agent_id in (busy, busy, less_busy):
        open_ticket(desk, team=False, assignee_id=agent_id)
    ticket_id = open_ticket(desk)
    assert wait_assigned(ticket_id) == less_busy
    [(data, _)] = trail(ticket_id, "ticket.assigned")
    assert data["cause"]["rule"] == "assignment:least_open"


def test_a_ticket_waits_while_every_agent_is_at_the_cap_and_is_assigned_when_one_is_freed(
    committed,
):
    desk = staffed_team(agents=2, cap=1)
    first, second = open_ticket(desk), open_ticket(desk)
    holders = {wait_assigned(first): first, wait_assigned(second): second}
    assert set(holders) == set(desk.agent_ids)

    waiting = open_ticket(desk)
    assert wait_until(lambda: handled(waiting), timeout=15)
    time.sleep(SWEEP_PERIOD_S + 0.5)  # a sweep has retried it too
    assert assignee(waiting) is None, "assigned beyond the per-agent cap"

    freed_agent = desk.agent_ids[0]
    tickets.do_transition(admin_of(desk), holders[freed_agent], "solve")
    assert wait_assigned(waiting) == freed_agent


def test_manual_assignment_is_never_overridden(committed):
    desk = staffed_team(agents=2)
    first_agent, second_agent = desk.agent_ids
    ticket_id = open_ticket(desk, assignee_id=second_agent)  # round robin would pick the first
    assert wait_until(lambda: handled(ticket_id), timeout=15)

    tickets.do_update_ticket(admin_of(desk), ticket_id, {"assignee_id": first_agent})
    db.session.rollback()
    assert wait_until(lambda: handled(ticket_id, "ticket.assigned"), timeout=15)
    time.sleep(SWEEP_PERIOD_S + 0.5)  # and a sweep has run since

    assert assignee(ticket_id) == first_agent
    assigned = trail(ticket_id, "ticket.assigned")
    assert [data.get("assignee_id") for data, _ in assigned] == [first_agent]
    assert all("cause" not in data for data, _ in assigned), "the automation assigned it"


# -- SLA ----------------------------------------------------------------------------------------


@pytest.fixture
def fast_sla_workflow(committed: datetime) -> Iterator[int]:
    """A 3-second first response for high priority, for this test only."""
    with processes.fast_sla_workflow(FIRST_RESPONSE_S) as version_id:
        yield version_id


def first_response_clock(ticket_id: int) -> tuple[Any, ...] | None:
    return snapshot(
        lambda: db.session.execute(
            select(SlaClock.due_at, SlaClock.breached_at).where(
                SlaClock.ticket_id == ticket_id, SlaClock.metric == "first_response"
            )
        ).one_or_none()
    )


def test_an_unanswered_ticket_breaches_its_sla_on_time_and_escalates_once(
    committed, fast_sla_workflow
):
    desk = staffed_team(agents=1, policy=AssignmentPolicy.MANUAL)
    ticket_id = open_ticket(desk, priority=Priority.HIGH)
    clock = wait_for(
        lambda: first_response_clock(ticket_id), lambda c: c is not None and c[0], timeout=15
    )
    assert clock is not None and clock[0] is not None, "the worker started no SLA clock"
    due_at = clock[0]

    timeout = (due_at - utcnow()).total_seconds() + 15
    breaches = wait_for(lambda: trail(ticket_id, "sla.breached"), bool, timeout=timeout)
    assert breaches, f"no breach within 15 s of the deadline {due_at}"
    [(data, recorded_at)] = breaches
    assert data["cause"]["rule"] == "sla.first_response.breach"
    assert data["metric"] == "first_response"
    assert datetime.fromisoformat(data["deadline"]) == due_at
    lateness = (recorded_at - due_at).total_seconds()
    assert 0 <= lateness < 5, f"breach recorded {lateness:.2f}s after the deadline"

    # A worker runs the escalation (from the escalations queue): priority raised, the lead
    # assigned and told.
    escalated = wait_for(
        lambda: tuple(
            db.session.execute(
                select(Ticket.priority, Ticket.assignee_id).where(Ticket.id == ticket_id)
            ).one()
        ),
        lambda row: row == (Priority.URGENT, desk.lead_id),
        timeout=15,
    )
    assert escalated == (Priority.URGENT, desk.lead_id)
    [(assigned, _)] = trail(ticket_id, "ticket.assigned")
    assert assigned["cause"]["rule"] == "sla.first_response.breach"

    breached_at = first_response_clock(ticket_id)[1]
    assert breached_at is not None

    time.sleep(2 * SWEEP_PERIOD_S + 0.5)  # two more sweeps, and the worker handled the fallout
    assert len(trail(ticket_id, "sla.breached")) == 1, "the breach fired again"
    assert first_response_clock(ticket_id)[1] == breached_at
    escalations = snapshot(
        lambda: db.session.scalar(
            select(func.count()).where(
                Notification.ticket_id == ticket_id,
                Notification.user_id == desk.lead_id,
                Notification.kind == "escalation",
            )
        )
    )
    assert escalations == 1
