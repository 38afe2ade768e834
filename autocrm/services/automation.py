"""Automation: what happens after a ticket changes, and what happens because time passed.

``handle_ticket_event`` runs for every ticket domain event a worker takes from the outbox, in
one transaction with marking the event processed, in this order: SLA clock bookkeeping, the
workflow's event rules, automatic assignment, notifications. ``do_sweep`` (beat) fires SLA
warnings and breaches and time-based rules that are due, and retries waiting assignments.
Every change made here runs inside ``causes.caused_by`` so the ticket's trail names the rule.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.exc import IntegrityError

from autocrm import aftercommit, realtime
from autocrm.errors import DomainError
from autocrm.extensions import db
from autocrm.models import (
    Feedback,
    OutboxEvent,
    Priority,
    RuleFiring,
    SlaClock,
    Team,
    Ticket,
    TicketTag,
    User,
    utcnow,
)
from autocrm.services import assignment, causes, events, notifications, sla, tickets
from autocrm.services.transaction import rolls_back_on_error
from autocrm.services.workflows import engine_for, engine_for_version
from workflows import rules, vocabulary
from workflows.definition import delay_seconds

log = logging.getLogger(__name__)
BATCH = 200


# -- facts: what conditions see -------------------------------------------------------------


def ticket_facts(ticket: Ticket) -> dict[str, Any]:
    has_feedback = db.session.scalar(select(exists().where(Feedback.ticket_id == ticket.id)))
    return rules.ticket_facts(
        {
            "status": ticket.status,
            "category": ticket.category,
            "priority": Priority(ticket.priority).label,
            "team_id": ticket.team_id,
            "assignee_id": ticket.assignee_id,
            "requester_id": ticket.requester_id,
            "tags": ticket.tags,
            "channel": ticket.channel,
            "has_feedback": has_feedback,
        }
    )


# -- actions ------------------------------------------------------------------------------------


def _notify_target(ticket: Ticket, to: str) -> list[User]:
    team = db.session.get(Team, ticket.team_id) if ticket.team_id else None
    if to == "requester":
        return [ticket.requester]
    if to == "assignee":
        return [ticket.assignee] if ticket.assignee else []
    if to == "team_lead":
        return [team.lead] if team and team.lead else []
    if to == "team":
        return [m.user for m in team.memberships] if team else []
    return []


def apply_action(ticket: Ticket, action: dict[str, Any], dedupe: str) -> None:
    """One action of a rule or SLA escalation, acting as the system."""
    kind = action["action"]
    if kind == "transition":
        if action["name"] in {t.name for t in engine_for(ticket).allowed(ticket, None)}:
            tickets.fire_transition(None, ticket, action["name"])
    elif kind == "set_priority":
        tickets.apply_changes(None, ticket, {"priority": Priority.from_label(action["priority"])})
    elif kind == "raise_priority":
        if ticket.priority < Priority.URGENT:
            tickets.apply_changes(None, ticket, {"priority": Priority(ticket.priority + 1)})
    elif kind == "assign_team":
        tickets.apply_changes(None, ticket, {"team_id": action["team_id"]})
    elif kind == "assign_agent":
        tickets.apply_changes(None, ticket, {"assignee_id": action["user_id"]})
    elif kind == "assign_team_lead":
        team = db.session.get(Team, ticket.team_id) if ticket.team_id else None
        if team is not None and team.lead_id is not None:
            tickets.apply_changes(None, ticket, {"assignee_id": team.lead_id})
    elif kind == "add_tag":
        tickets.apply_changes(None, ticket, {"tags": [*ticket.tags, action["tag"]]})
    elif kind == "notify":
        cause = causes.current() or {}
        message = action.get("message") or f"Rule {cause.get('rule')} fired."
        for user in _notify_target(ticket, action["to"]):
            notifications.notify(
                user,
                "escalation",
                ticket=ticket,
                dedupe_key=dedupe,
                title=f"[#{ticket.id}] {message}",
                body=f"{message}\n\nTicket #{ticket.id}: {ticket.subject}",
            )
    elif kind == "request_feedback":
        notifications.request_feedback(ticket, dedupe_key=dedupe)
    else:  # the definition schema admits only known actions
        raise ValueError(f"unknown action {kind!r}")


def run_actions(
    ticket: Ticket, match: rules.RuleMatch, *, version: int, depth: int, dedupe: str
) -> None:
    """A matched rule's actions, each on its own: one failing does not undo the others."""
    with causes.caused_by(match.rule, workflow_version=version, because=match.because, depth=depth):
        for i, action in enumerate(match.actions):
            try:
                with aftercommit.savepoint():
                    apply_action(ticket, action, f"{dedupe}:{match.rule}:{i}")
            except DomainError as exc:
                log.warning("rule %s on ticket %s: %s", match.rule, ticket.id, exc.message)
                tickets.record(ticket, None, "automation.failed", action=action, error=exc.message)


# -- reacting to events -----------------------------------------------------------------------


def handle_ticket_event(event: OutboxEvent) -> None:
    payload = event.payload
    ticket = db.session.get(Ticket, event.ticket_id, with_for_update=True)
    if ticket is None:
        return
    now = utcnow()
    depth = (payload.get("cause") or {}).get("depth", 0) + 1
    _keep_sla(ticket, event.kind, payload, now)
    if depth <= causes.MAX_DEPTH:
        facts = {**ticket_facts(ticket), **rules.event_facts(payload)}
        engine = engine_for(ticket)
        for match in rules.event_matches(engine.definition, event.kind, facts):
            run_actions(
                ticket, match, version=ticket.workflow_version_id, depth=depth, dedupe=event.id
            )
    _assign(ticket, event.kind, payload, depth)
    notifications.route_event(ticket, event)
    if event.kind == "ticket.created":
        realtime.publish_ticket(ticket)  # now with its SLA deadlines


def _keep_sla(ticket: Ticket, kind: str, payload: dict[str, Any], now: datetime) -> None:
    if kind == "ticket.created":
        for metric in ("first_response", "resolution"):
            sla.start(ticket, metric, now)
    elif kind == "message.created" and not payload.get("internal"):
        sla.on_public_reply(ticket, payload.get("author_role") != "customer", now)
    elif kind == "ticket.transitioned":
        engine = engine_for(ticket)
        from_category = engine.categories.get(payload.get("from_state"), ticket.category)
        if from_category != ticket.category:
            sla.on_category_change(ticket, from_category, now)
    elif kind == "ticket.updated":
        changes = payload.get("changes", {})
        if "team_id" in changes:
            sla.on_team_change(ticket, changes["team_id"][0], now)
        if "priority" in changes:
            sla.on_priority_change(ticket, now)


def _assign(ticket: Ticket, kind: str, payload: dict[str, Any], depth: int) -> None:
    changes = payload.get("changes", {})
    entered_team = kind == "ticket.created" or (
        kind == "ticket.updated" and ("team_id" in changes or "assignee_id" in changes)
    )
    if entered_team:
        assignment.auto_assign(ticket, depth)
    freed = (
        kind == "ticket.transitioned"
        and payload.get("to_category") in assignment.DONE_CATEGORIES
        and ticket.assignee_id is not None
    ) or (kind == "ticket.updated" and changes.get("assignee_id", [None])[0] is not None)
    if freed:
        agent = db.session.get(User, ticket.assignee_id or changes["assignee_id"][0])
        if agent is not None:
            for waiting in assignment.waiting_tickets(agent.team_ids, limit=5):
                assignment.auto_assign(waiting, depth)


def install() -> None:
    """Register the automation for every ticket event (idempotent)."""
    for kind in vocabulary.EVENTS:
        if handle_ticket_event not in events.HANDLERS[kind]:
            events.handles(kind)(handle_ticket_event)


# -- time passing: the beat sweep ---------------------------------------------------------------


@rolls_back_on_error
def do_sweep(now: datetime | None = None, budget_seconds: float = 20.0) -> dict[str, int]:
    """Fire whatever fell due, batch after batch until nothing is left or the time budget is
    spent (the next sweep carries on). Each item commits on its own; each fires at most once.
    ``now`` fixes the clock (tests); by default every batch reads the current time."""
    deadline = time.monotonic() + budget_seconds
    done = {"sla_warnings": 0, "sla_breaches": 0, "time_rules": 0, "assignments": 0}
    while True:
        moment = now or utcnow()
        batch = {
            "sla_warnings": _sweep_sla(moment, "warn_at", "warned_at", "warning"),
            "sla_breaches": _sweep_sla(moment, "due_at", "breached_at", "breach"),
            "time_rules": _sweep_time_rules(moment),
            "assignments": 0,
        }
        for ticket in assignment.waiting_tickets(limit=BATCH):
            if assignment.auto_assign(ticket, depth=1):
                batch["assignments"] += 1
            db.session.commit()
        for key, count in batch.items():
            done[key] += count
        full = max(batch["sla_warnings"], batch["sla_breaches"], batch["time_rules"]) >= BATCH
        if not full or time.monotonic() > deadline:
            return done


def _sweep_sla(now: datetime, due_column: str, fired_column: str, what: str) -> int:
    due, fired = getattr(SlaClock, due_column), getattr(SlaClock, fired_column)
    ids = db.session.scalars(
        select(SlaClock.id)
        .where(SlaClock.stopped_at.is_(None), fired.is_(None), due <= now)
        .order_by(due)
        .limit(BATCH)
    ).all()
    count = 0
    for clock_id in ids:
        # Claim it: only one sweep (or process) wins the conditional update.
        claimed = db.session.execute(
            update(SlaClock)
            .where(SlaClock.id == clock_id, fired.is_(None), SlaClock.stopped_at.is_(None))
            .values({fired_column: now})
        ).rowcount
        if claimed:
            _fire_sla(db.session.get_one(SlaClock, clock_id), what, now)
            count += 1
        db.session.commit()
    return count


def _fire_sla(clock: SlaClock, what: str, now: datetime) -> None:
    ticket = db.session.get_one(Ticket, clock.ticket_id)
    policy = sla.policy_of(clock.workflow_version_id) or {}
    deadline = clock.warn_at if what == "warning" else clock.due_at
    rule = f"sla.{clock.metric}.{what}"
    because = [
        {"field": f"sla.{clock.metric}", "op": "due", "value": str(deadline), "actual": str(now)}
    ]
    with causes.caused_by(
        rule, workflow_version=clock.workflow_version_id, because=because, depth=1
    ):
        kind = "sla.warning" if what == "warning" else "sla.breached"
        tickets.record(
            ticket,
            None,
            kind,
            metric=clock.metric,
            deadline=deadline.isoformat() if deadline else None,
            lateness_seconds=(now - deadline).total_seconds() if deadline else None,
        )
    actions = policy.get("on_warning" if what == "warning" else "on_breach", [])
    match = rules.RuleMatch(rule=rule, actions=actions, because=because)
    run_actions(
        ticket, match, version=clock.workflow_version_id, depth=1, dedupe=f"sla:{clock.id}:{what}"
    )


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
    if field == "ticket.has_feedback":
        has = exists().where(Feedback.ticket_id == Ticket.id)
        return has if (value is True) == (op == "eq") else ~has
    if field == "ticket.tags":
        tagged = exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == value)
        return tagged if op == "contains" else ~tagged
    if field == "ticket.priority":
        column: Any = Ticket.priority
        convert = Priority.from_label
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
