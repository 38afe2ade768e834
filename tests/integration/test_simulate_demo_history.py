"""Simulating drafts against the seeded demo history (weeks of tickets as the default workflow
and its automation left them, SLA breaches and escalations included): the published definition
itself, and a draft that only adds a state nothing used, report no ticket that would go
differently; a real change still reports the tickets it touches (issue 10, item 5)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.demo import seed
from autocrm.engine import drafts
from autocrm.engine.models import Workflow
from autocrm.engine.simulation import MAX_SIMULATED_TICKETS, simulate_draft
from autocrm.people.models import User
from autocrm.tickets.models import Priority, Ticket
from workflows import default_definition


@pytest.fixture
def demo(db_session: Any) -> tuple[User, int]:
    seed.seed_demo()
    admin = db_session.scalar(select(User).where(User.email == "admin@example.com"))
    workflow_id = db_session.scalar(select(Workflow.id).where(Workflow.name == "default"))
    return admin, workflow_id


def simulated(demo: tuple[User, int], draft: dict[str, Any]) -> Any:
    admin, workflow_id = demo
    drafts.do_save_draft(admin, workflow_id, draft)
    return simulate_draft(admin, workflow_id, MAX_SIMULATED_TICKETS)


def with_unrelated_state() -> dict[str, Any]:
    draft = copy.deepcopy(default_definition())
    draft["states"].append({"name": "parked", "category": "open", "label": "Parked"})
    draft["transitions"] += [
        {"name": "park", "from": ["open"], "to": "parked", "roles": ["agent", "admin"]},
        {"name": "unpark", "from": ["parked"], "to": "open", "roles": ["agent", "admin"]},
    ]
    return draft


def test_the_published_definition_and_an_unrelated_state_report_no_differences(demo):
    for draft in (default_definition(), with_unrelated_state()):
        report = simulated(demo, draft)

        assert report.simulated > 100, "the demo history was replayed"
        assert report.with_differences == 0, [t for t in report.tickets if t.differs][:3]
        assert report.with_caveats == 0


def test_a_tighter_urgent_target_reports_the_urgent_tickets_only(demo, db_session):
    draft = copy.deepcopy(default_definition())
    draft["sla"]["targets"]["urgent"]["first_response"] = 1

    report = simulated(demo, draft)

    urgent = set(
        db_session.scalars(
            select(Ticket.id).where(
                Ticket.id.in_([t.ticket_id for t in report.tickets]),
                Ticket.priority == Priority.URGENT,
            )
        )
    )
    differing = [t for t in report.tickets if t.differs]
    assert urgent, "the demo has urgent tickets"
    assert {t.ticket_id for t in differing} == urgent
    for ticket in differing:  # only the first-response clock: its due time, maybe its outcome
        assert ticket.sla["first_response"].differs
        assert not ticket.sla["resolution"].differs
        assert not (ticket.would_fire_not_fired or ticket.fired_would_not or ticket.states)
    assert any(t.sla["first_response"].draft == "breached" for t in differing)
