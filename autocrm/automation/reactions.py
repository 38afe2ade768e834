"""Event rules: a workflow's "when this happens" rules, run by a worker for each ticket event.

``run_event_rules`` is a handler (``autocrm.events.handlers.HANDLERS``): it matches the
workflow's event rules against the ticket as it is now and the event's own facts, and runs the
matching rules' actions. Each action's changes emit events of their own, one level deeper in
the cause chain; the chain stops at ``causes.MAX_DEPTH``.
"""

from __future__ import annotations

import dataclasses

from autocrm.automation.actions import run_actions, ticket_facts
from autocrm.engine.versions import engine_for
from autocrm.events import causes
from autocrm.events.kinds import TicketChange
from autocrm.extensions import db
from autocrm.tickets.models import Ticket
from workflows import rules


def run_event_rules(event: TicketChange) -> None:
    depth = event.depth + 1
    if depth > causes.MAX_DEPTH:
        return
    ticket = db.session.get_one(Ticket, event.ticket_id)
    facts = {**ticket_facts(ticket), **rules.event_facts(dataclasses.asdict(event))}
    engine = engine_for(ticket)
    for match in rules.event_matches(engine.definition, event.kind, facts):
        run_actions(ticket, match, version=ticket.workflow_version_id, depth=depth, dedupe=event.id)
