"""Automation because time passed: the beat sweep.

``do_sweep`` fires SLA warnings and breaches (``autocrm.sla.sweep``, a batch per transaction)
and time-based rules that fell due, and retries waiting assignments. Each item fires at most
once, whichever process sweeps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.exc import IntegrityError

from autocrm.automation import assignment
from autocrm.automation.actions import run_actions, ticket_facts
from autocrm.automation.models import RuleFiring
from autocrm.columns import utcnow
from autocrm.engine.versions import engine_for_version
from autocrm.extensions import db
from autocrm.fields import values as field_values
from autocrm.sla import sweep as sla_sweep
from autocrm.tickets.models import Feedback, Priority, Ticket, TicketTag
from autocrm.transaction import rolls_back_on_error
from workflows import rules
from workflows.definition import delay_seconds
from workflows.vocabulary import CUSTOM_FIELD_PREFIX

log = logging.getLogger(__name__)
BATCH = 200


# -- time passing: the beat sweep ---------------------------------------------------------------


@rolls_back_on_error
def do_sweep(now: datetime | None = None, budget_seconds: float = 20.0) -> dict[str, int]:
    """Fire whatever fell due, batch after batch until nothing is left or the time budget is
    spent (the next sweep carries on). SLA clocks commit a batch at a time, time rules and
    assignments one item at a time; each fires at most once.
    ``now`` fixes the clock (tests); by default every batch reads the current time."""
    deadline = time.monotonic() + budget_seconds
    done = {"sla_warnings": 0, "sla_breaches": 0, "time_rules": 0, "assignments": 0}
    while True:
        moment = now or utcnow()
        batch = {
            "sla_warnings": sla_sweep.do_fire_due(sla_sweep.WARNING, moment),
            "sla_breaches": sla_sweep.do_fire_due(sla_sweep.BREACH, moment),
            "time_rules": _sweep_time_rules(moment),
            "assignments": _assign_waiting(),
        }
        for key, count in batch.items():
            done[key] += count
        full = (
            max(batch["sla_warnings"], batch["sla_breaches"]) >= sla_sweep.BATCH
            or batch["time_rules"] >= BATCH
        )
        if not full or time.monotonic() > deadline:
            return done


def _assign_waiting() -> int:
    """Retry the tickets that found nobody free. Each is locked before its team, in the order
    the event handlers lock them (``events.dispatch``), and re-read under the lock, since a
    handler may have assigned it meanwhile: the other order deadlocked against the handler
    of ``ticket.created``, and a stale read failed the whole sweep on the version check."""
    assigned = 0
    for ticket_id in [ticket.id for ticket in assignment.waiting_tickets(limit=BATCH)]:
        ticket = db.session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
        if ticket is not None and assignment.auto_assign(ticket, depth=1):
            assigned += 1
        db.session.commit()
    return assigned


def _since(rule: dict[str, Any]) -> Any:
    return getattr(Ticket, rule["after"]["since"])


SQL_FIELDS = {
    "ticket.status": Ticket.status,
    "ticket.category": Ticket.category,
    "ticket.team_id": Ticket.team_id,
    "ticket.assignee_id": Ticket.assignee_id,
    "ticket.requester_id": Ticket.requester_id,
    "ticket.channel": Ticket.channel,
}


def condition_sql(condition: dict[str, Any]) -> ColumnElement[bool]:
    """A time rule's condition as SQL, so the sweep reads only the tickets that match."""
    field, op, value = condition["field"], condition["op"], condition["value"]
    if field.startswith(CUSTOM_FIELD_PREFIX):
        return field_values.condition_sql(field.removeprefix(CUSTOM_FIELD_PREFIX), op, value)
    if field == "ticket.has_feedback":
        has = exists().where(Feedback.ticket_id == Ticket.id)
        return has if (value is True) == (op == "eq") else ~has
    if field == "ticket.tags":
        tagged = exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == value)
        return tagged if op == "contains" else ~tagged
    if field == "ticket.priority":
        column: Any = Ticket.priority
        convert: Callable[[Any], Any] = Priority.from_label
    else:
        column, convert = SQL_FIELDS[field], (lambda v: v)
    ops = {
        "eq": lambda: column == convert(value),
        "ne": lambda: column != convert(value),
        "in": lambda: column.in_([convert(v) for v in value]),
        "not_in": lambda: column.not_in([convert(v) for v in value]),
        "is_null": lambda: column.is_(None),
        "not_null": lambda: column.is_not(None),
        "gte": lambda: column >= convert(value),
        "lte": lambda: column <= convert(value),
    }
    return ops[op]()


def _sweep_time_rules(now: datetime) -> int:
    versions = db.session.scalars(
        select(Ticket.workflow_version_id).where(Ticket.category != "closed").distinct()
    ).all()
    count = 0
    for version_id in versions:
        definition = engine_for_version(version_id).definition
        for rule in rules.time_rules(definition):
            count += _fire_time_rule(version_id, rule, now)
    return count


def _fire_time_rule(version_id: int, rule: dict[str, Any], now: datetime) -> int:
    since = _since(rule)
    cutoff = now - timedelta(seconds=delay_seconds(rule["after"]))
    already = exists().where(
        RuleFiring.ticket_id == Ticket.id,
        RuleFiring.workflow_version_id == version_id,
        RuleFiring.rule == rule["name"],
        RuleFiring.anchor == since,
    )
    candidates = db.session.scalars(
        select(Ticket)
        .where(
            Ticket.workflow_version_id == version_id,
            since.is_not(None),
            since <= cutoff,
            ~already,
            and_(*(condition_sql(c) for c in rule["conditions"])),
        )
        .order_by(since)
        .limit(BATCH)
    ).all()
    fired = 0
    for ticket in candidates:
        match = rules.evaluate(rule, ticket_facts(ticket))
        anchor = getattr(ticket, rule["after"]["since"])
        try:
            with db.session.begin_nested():
                db.session.add(
                    RuleFiring(
                        ticket_id=ticket.id,
                        workflow_version_id=version_id,
                        rule=rule["name"],
                        anchor=anchor,
                    )
                )
        except IntegrityError:  # another sweep fired it meanwhile
            continue
        if match is not None:
            run_actions(
                ticket,
                match,
                version=version_id,
                depth=1,
                dedupe=f"time:{ticket.id}:{rule['name']}:{anchor.isoformat()}",
            )
            fired += 1
        db.session.commit()
    return fired
