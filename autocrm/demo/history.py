"""A few weeks of past tickets for the demo's team reports.

Services stamp the current time, so the past is written as rows, with the trail, SLA clocks,
ratings and rule firings a real history would have left: every time rule that fell due in the
past is recorded as fired, or the first sweep would act on it.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select

from autocrm.automation.models import RuleFiring
from autocrm.columns import utcnow
from autocrm.demo.logins import DEMO_LOGINS
from autocrm.engine.versions import current_version, engine_for_version
from autocrm.extensions import db
from autocrm.notifications.models import Notification
from autocrm.notifications.services import feedback_link
from autocrm.people.models import Team, User
from autocrm.sla import clocks as sla
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Feedback, Message, Priority, Ticket, TicketEvent
from workflows import rules
from workflows.calendar import BusinessCalendar, add_business_time, business_seconds_between

# -- the past: a few weeks of tickets for the reports -----------------------------------------

HISTORY_DAYS = 42  # more than the report's default 30 days, which then start in full swing
# Tickets a team gets on a weekday (at least, at most); weekends bring at most one.
HISTORY_VOLUME = {"Support": (3, 6), "Billing": (1, 3)}
HISTORY_SUBJECTS = {
    "Support": (
        "Export to CSV times out",
        "Two-factor code not accepted",
        "Dashboard loads very slowly",
        "Cannot upload attachments over 5 MB",
        "Notifications arrive twice",
        "Search misses recent tickets",
        "Mobile app logs me out",
        "Webhook deliveries failing",
    ),
    "Billing": (
        "Charged twice this month",
        "Need a copy of last invoice",
        "Change billing email address",
        "Upgrade to the annual plan",
        "VAT missing on invoice",
        "Card declined at renewal",
    ),
}
PRIORITY_WEIGHTS = {Priority.LOW: 2, Priority.NORMAL: 5, Priority.HIGH: 2, Priority.URGENT: 1}
SOLVED_SHARE = 0.9
RATED_SHARE = 0.65
LATE_SHARE = 0.4  # of urgent tickets: those that miss their SLA targets
# Clocks still running are due later than this, so nothing fires just because a demo starts.
QUIET_MARGIN = timedelta(days=1)
SETTLED = timedelta(minutes=5)  # the past ends this long before now
# The default workflow's time rules after solving (remind_about_feedback, auto_close_solved),
# and how long after falling due the seeded past records their firing.
RULES_AFTER_SOLVING = (timedelta(days=2), timedelta(days=4))
FIRING_LAG = timedelta(seconds=30)


@dataclass
class PastTicket:
    """The life of one seeded past ticket (aware UTC times; None: it did not happen)."""

    team: Team
    requester: User
    assignee: User
    subject: str
    priority: Priority
    created_at: datetime
    first_response_at: datetime
    waiting_since: datetime | None = None  # waiting on the customer (pending) since then
    solved_at: datetime | None = None
    closed_at: datetime | None = None  # closed by the auto_close_solved rule
    rated_at: datetime | None = None
    rating: int | None = None
    reminded_at: datetime | None = None  # remind_about_feedback fired


@dataclass
class _Context:
    now: datetime
    rng: random.Random
    version_id: int
    calendar: BusinessCalendar
    targets: dict[str, dict[str, int]]  # priority label -> metric -> business minutes
    admin: User
    # Rows to insert besides the tickets, per model: one executemany each at the end.
    rows: dict[type, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, model: type, **values: Any) -> None:
        """Rows of a model name the same columns (None where empty): one batch per model."""
        self.rows[model].append(values)

    def target_seconds(self, priority: Priority, metric: str) -> float:
        return self.targets[priority.label][metric] * 60.0


def seed_history(now: datetime | None = None) -> int:
    """Past tickets of the demo teams over the last HISTORY_DAYS days: created on past days,
    first responses, solved (then closed after four days) or still open or waiting on the
    customer, SLA clocks (urgent ones sometimes breached), and ratings for most solved ones.

    Services stamp the current time, so the rows are written as the services and automation
    would have left them: status and category of the pinned workflow version, the timestamps
    (first_responded_at, solved_at, closed_at, status_changed_at), the version counter, the
    trail with the rules that acted (start on first reply, auto-close), SLA clocks with their
    warning and breach events, the feedback request, rule firings. Nothing goes to the outbox:
    it all happened long ago. Breaches only hit urgent tickets held by the team lead, for whom
    the escalation (raise priority, assign the lead) changes nothing. Deterministic for a given
    day; does nothing if the demo teams already have tickets from before today. Returns the
    number of tickets written.
    """
    now = now or utcnow()
    demo_teams = {
        team.name: team
        for team in db.session.scalars(select(Team).where(Team.name.in_(HISTORY_VOLUME)))
    }
    people = {
        user.email: user
        for user in db.session.scalars(
            select(User).where(User.email.in_([login.email for login in DEMO_LOGINS]))
        )
    }
    midnight = datetime.combine(now.date(), time(), UTC)
    earlier = select(Ticket.id).where(
        Ticket.team_id.in_([t.id for t in demo_teams.values()]), Ticket.created_at < midnight
    )
    if len(demo_teams) < len(HISTORY_VOLUME) or db.session.scalar(earlier.limit(1)):
        return 0
    version = current_version()
    policy = sla.policy_of(version.id) or {}
    context = _Context(
        now=now,
        rng=random.Random(now.date().toordinal()),  # noqa: S311 (demo data, not secrets)
        version_id=version.id,
        calendar=sla.calendar_of(version.id),
        targets=policy.get("targets", {}),
        admin=people["admin@example.com"],
    )
    staff = {  # who takes the team's tickets (repeats: weights); the lead takes urgent ones
        "Support": [people["agent@example.com"]] * 2 + [people["admin@example.com"]],
        "Billing": [people["billing.agent@example.com"]],
    }
    customers = [people["customer@example.com"], people["customer2@example.com"]]
    plans = _plan_history(context, demo_teams, staff, customers)
    rows = [past_ticket_row(context, plan) for plan in plans]
    db.session.add_all(rows)
    db.session.flush()  # the tickets first, for their ids; then one batch per table
    for plan, row in zip(plans, rows, strict=True):
        write_past_trail(context, plan, row)
    for model, values in context.rows.items():
        # render_nulls: None stays in the row, so the rows stay alike and go in one batch.
        db.session.execute(insert(model).execution_options(render_nulls=True), values)
    db.session.commit()
    return len(plans)


def _plan_history(
    context: _Context,
    demo_teams: dict[str, Team],
    staff: dict[str, list[User]],
    customers: list[User],
) -> list[PastTicket]:
    rng, plans = context.rng, []
    for days_ago in range(HISTORY_DAYS, 0, -1):
        day = context.now.date() - timedelta(days=days_ago)
        for name, (fewest, most) in HISTORY_VOLUME.items():
            count = rng.randint(0, 1) if day.weekday() >= 5 else rng.randint(fewest, most)
            for _ in range(count):
                plan = _plan_ticket(context, day, demo_teams[name], staff[name], customers)
                if plan is not None:
                    plans.append(plan)
    return sorted(plans, key=lambda p: p.created_at)


def _plan_ticket(
    context: _Context, day: date, team: Team, staff: list[User], customers: list[User]
) -> PastTicket | None:
    """One ticket created on ``day`` during office hours; None if it would still be too fresh
    to show a settled past (a first response or a change in the last minutes)."""
    rng, calendar, now = context.rng, context.calendar, context.now
    created = datetime.combine(day, time(8), UTC) + timedelta(minutes=rng.randrange(600))
    priority = rng.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()))[0]
    late = priority is Priority.URGENT and rng.random() < LATE_SHARE
    lead = (db.session.get(User, team.lead_id) if team.lead_id else None) or staff[0]
    first_target = context.target_seconds(priority, "first_response")
    resolve_target = context.target_seconds(priority, "resolution")
    first_used = first_target * (rng.uniform(1.1, 2.0) if late else rng.uniform(0.05, 0.6))
    plan = PastTicket(
        team=team,
        requester=rng.choice(customers),
        assignee=lead if priority is Priority.URGENT else rng.choice(staff),
        subject=rng.choice(HISTORY_SUBJECTS[team.name]),
        priority=priority,
        created_at=created,
        first_response_at=add_business_time(created, first_used, calendar),
    )
    settled = now - SETTLED
    if plan.first_response_at >= settled:
        return None
    used = resolve_target * (rng.uniform(1.05, 1.8) if late else rng.uniform(0.1, 0.6))
    solved = add_business_time(created, max(used, first_used + 900), calendar)
    if (
        rng.random() < SOLVED_SHARE
        and solved < settled
        and not _rules_fall_due_now(context, solved)
    ):
        _plan_after_solving(context, plan, solved, late)
        return plan
    # Still open: running with a deadline far enough out, overdue (urgent, with the lead),
    # or waiting on the customer with its clock paused well before the deadline.
    due = add_business_time(created, resolve_target, calendar)
    warn = add_business_time(created, 0.75 * resolve_target, calendar)
    if due < settled and priority is Priority.URGENT:
        return plan
    if warn > now + QUIET_MARGIN:
        return plan
    waiting = add_business_time(created, max(first_used + 600, 0.3 * resolve_target), calendar)
    if waiting >= settled:
        return None
    plan.waiting_since = waiting
    return plan


def _rules_fall_due_now(context: _Context, solved: datetime) -> bool:
    """Whether a time rule after solving falls due around now: too late for the seeded past to
    record its firing, yet due on the first sweep (which would then act on demo history)."""
    return any(
        context.now - SETTLED <= solved + after + FIRING_LAG
        and solved + after <= context.now + SETTLED
        for after in RULES_AFTER_SOLVING
    )


def _plan_after_solving(context: _Context, plan: PastTicket, solved: datetime, late: bool) -> None:
    rng, settled = context.rng, context.now - SETTLED
    plan.solved_at = solved
    if rng.random() < RATED_SHARE:
        rated = solved + timedelta(hours=rng.uniform(0.5, 40))
        if rated < settled:
            plan.rated_at = rated
            plan.rating = rng.choice((1, 2, 2, 3) if late else (3, 4, 4, 5, 5, 5))
    reminder = solved + RULES_AFTER_SOLVING[0] + FIRING_LAG
    if plan.rated_at is None and reminder < settled:
        plan.reminded_at = reminder
    closing = solved + RULES_AFTER_SOLVING[1] + FIRING_LAG
    if closing < settled:
        plan.closed_at = closing


def past_ticket_row(context: _Context, plan: PastTicket) -> Ticket:
    """The ticket row of a past ticket as it is now: the place to extend when tickets keep
    more (e.g. durations); ``write_past_trail`` writes everything else it left."""
    engine = engine_for_version(context.version_id)
    states = [("new", plan.created_at), ("open", plan.first_response_at + timedelta(seconds=2))]
    if plan.waiting_since:
        states.append(("pending", plan.waiting_since))
    if plan.solved_at:
        states.append(("solved", plan.solved_at))
    if plan.closed_at:
        states.append(("closed", plan.closed_at))
    status, changed = states[-1]
    last_message = plan.solved_at or plan.waiting_since or plan.first_response_at
    return Ticket(
        subject=plan.subject,
        description=f"{plan.subject}. Details from {plan.requester.name}.",
        status=status,
        category=engine.categories[status],
        priority=plan.priority,
        channel="email",
        requester_id=plan.requester.id,
        team_id=plan.team.id,
        assignee_id=plan.assignee.id,
        workflow_version_id=context.version_id,
        created_at=plan.created_at,
        updated_at=max(changed, last_message),
        status_changed_at=changed,
        first_responded_at=plan.first_response_at,
        solved_at=plan.solved_at,
        closed_at=plan.closed_at,
        first_response_business_seconds=_business_seconds(
            context, plan.created_at, plan.first_response_at
        ),
        resolution_business_seconds=_business_seconds(context, plan.created_at, plan.solved_at),
        version=len(states),  # one versioned update per transition
    )


def _business_seconds(context: _Context, start: datetime, end: datetime | None) -> float | None:
    return None if end is None else business_seconds_between(start, end, context.calendar)


def write_past_trail(context: _Context, plan: PastTicket, ticket: Ticket) -> None:
    """What one past ticket left besides its row: the trail and messages, SLA clocks, the
    feedback request and rating, the time rules that fired."""
    trail = _Trail(context, ticket, plan)
    trail.created()
    trail.message(plan.assignee, plan.first_response_at, "Thanks for writing in: looking into it.")
    trail.transition(None, "start", "new", "open", plan.first_response_at + timedelta(seconds=2))
    trail.clock("first_response", plan.first_response_at, stopped=True)
    if plan.waiting_since:
        trail.message(plan.assignee, plan.waiting_since, "Could you send us a screenshot?")
        trail.transition(plan.assignee, "wait_on_customer", "open", "pending", plan.waiting_since)
        trail.clock("resolution", plan.waiting_since, stopped=False, paused=True)
    elif plan.solved_at:
        trail.message(plan.assignee, plan.solved_at - timedelta(minutes=1), "This is fixed now.")
        trail.transition(plan.assignee, "solve", "open", "solved", plan.solved_at)
        trail.clock("resolution", plan.solved_at, stopped=True)
        trail.feedback_request(plan.solved_at + timedelta(seconds=3))
    else:
        trail.clock("resolution", context.now, stopped=False)
    if plan.rated_at and plan.rating:
        context.add(
            Feedback,
            ticket_id=ticket.id,
            author_id=plan.requester.id,
            rating=plan.rating,
            created_at=plan.rated_at,
        )
        trail.event("feedback.created", plan.requester, plan.rated_at, rating=plan.rating)
    if plan.solved_at and plan.reminded_at:
        trail.time_rule("remind_about_feedback", plan.solved_at, plan.reminded_at)
    if plan.solved_at and plan.closed_at:
        trail.time_rule("auto_close_solved", plan.solved_at, plan.closed_at)
        trail.transition(
            None, "close", "solved", "closed", plan.closed_at, rule="auto_close_solved"
        )


class _Trail:
    """Writes one past ticket's trail the way ``tickets.record`` and the automation do."""

    def __init__(self, context: _Context, ticket: Ticket, plan: PastTicket) -> None:
        self.context, self.ticket, self.plan = context, ticket, plan
        self.engine = engine_for_version(context.version_id)
        self.status = "new"

    def event(
        self,
        kind: str,
        actor: User | None,
        at: datetime,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        **data: Any,
    ) -> None:
        self.context.add(
            TicketEvent,
            ticket_id=self.ticket.id,
            actor_id=actor.id if actor else None,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            data=data,
            created_at=at,
        )

    def created(self) -> None:
        plan = self.plan
        self.event(
            "ticket.created",
            self.context.admin,
            plan.created_at,
            to_state="new",
            team_id=plan.team.id,
            assignee_id=plan.assignee.id,
            priority=plan.priority.label,
            tags=[],
        )

    def message(self, author: User, at: datetime, body: str) -> None:
        self.context.add(
            Message, ticket_id=self.ticket.id, author_id=author.id, body=body, created_at=at
        )

    def _facts(self, at: datetime, **event: Any) -> dict[str, Any]:
        plan = self.plan
        ticket = {
            "status": self.status,
            "category": self.engine.categories[self.status],
            "priority": plan.priority.label,
            "team_id": plan.team.id,
            "assignee_id": plan.assignee.id,
            "requester_id": plan.requester.id,
            "tags": [],
            "channel": "email",
            "has_feedback": plan.rated_at is not None and plan.rated_at <= at,
        }
        return {**rules.ticket_facts(ticket), **rules.event_facts(event)}

    def _cause(self, rule_name: str, facts: dict[str, Any]) -> dict[str, Any] | None:
        rule = next((r for r in self.engine.definition["rules"] if r["name"] == rule_name), None)
        match = rules.evaluate(rule, facts) if rule else None
        if match is None:
            return None
        return {
            "rule": match.rule,
            "workflow_version": self.context.version_id,
            "because": match.because,
            "depth": 1,
        }

    def transition(
        self,
        actor: User | None,
        name: str,
        from_state: str,
        to_state: str,
        at: datetime,
        rule: str | None = None,
    ) -> None:
        data: dict[str, Any] = {"transition": name, "to_category": self.engine.categories[to_state]}
        if actor is None:  # the automation: the rule that moved it, or the agent did
            if rule is None:  # start_on_first_agent_reply, on the agent's first public reply
                rule = "start_on_first_agent_reply"
                facts = self._facts(
                    at=at, actor_role=self.plan.assignee.role.value,
                    author_role=self.plan.assignee.role.value, internal=False,
                )  # fmt: skip
            else:
                facts = self._facts(at=at)
            cause = self._cause(rule, facts)
            if cause is None:
                actor = self.plan.assignee
            else:
                data["cause"] = cause
        self.event(
            "ticket.transitioned", actor, at, from_state=from_state, to_state=to_state, **data
        )
        self.status = to_state

    def clock(self, metric: str, end: datetime, *, stopped: bool, paused: bool = False) -> None:
        """The metric's clock from creation to ``end`` (stopped or paused there, else still
        running at ``end`` = now), with the warning and breach the sweep fired on the way."""
        context, plan = self.context, self.plan
        if not context.targets:
            return
        target = context.target_seconds(plan.priority, metric)
        warn_share = (sla.policy_of(context.version_id) or {}).get("warning_at", 0.75)
        due = add_business_time(plan.created_at, target, context.calendar)
        warn = add_business_time(plan.created_at, target * warn_share, context.calendar)
        running = not (stopped or paused)
        clock: dict[str, Any] = {
            "ticket_id": self.ticket.id,
            "metric": metric,
            "workflow_version_id": context.version_id,
            "target_seconds": target,
            "started_at": plan.created_at,
            "consumed_seconds": (
                0.0 if running else business_seconds_between(plan.created_at, end, context.calendar)
            ),
            "stopped_at": end if stopped else None,
            # Running: since creation, with its deadlines; stopped or paused: none.
            "segment_started_at": plan.created_at if running else None,
            "due_at": due if running else None,
            "warn_at": warn if running else None,
            "warned_at": None,
            "breached_at": None,
        }
        for fired, deadline in (("warned_at", warn), ("breached_at", due)):
            if deadline < end:
                clock[fired] = deadline
                self._sla_event(metric, "warning" if fired == "warned_at" else "breach", deadline)
        context.add(SlaClock, **clock)

    def _sla_event(self, metric: str, what: str, deadline: datetime) -> None:
        because = [
            {"field": f"sla.{metric}", "op": "due", "value": str(deadline), "actual": str(deadline)}
        ]
        self.event(
            "sla.warning" if what == "warning" else "sla.breached",
            None,
            deadline,
            metric=metric,
            deadline=deadline.isoformat(),
            lateness_seconds=0.0,
            cause={
                "rule": f"sla.{metric}.{what}",
                "workflow_version": self.context.version_id,
                "because": because,
                "depth": 1,
            },
        )

    def feedback_request(self, at: datetime) -> None:
        """What ask_for_feedback left: the requester's notification (read by now)."""
        plan, ticket = self.plan, self.ticket
        read = plan.rated_at or at + timedelta(hours=1)
        self.context.add(
            Notification,
            user_id=plan.requester.id,
            kind="feedback_request",
            ticket_id=ticket.id,
            title=f"How did we do? [#{ticket.id}] {ticket.subject}",
            body=(
                f'Your ticket #{ticket.id} "{ticket.subject}" was solved. How did we do?\n\n'
                f"Rate it here (no login needed): {feedback_link(ticket)}\n"
            ),
            dedupe_key=(f"{uuid.uuid4()}:ask_for_feedback:0:{plan.requester.id}:feedback_request"),
            created_at=at,
            read_at=read if read < self.context.now else None,
        )

    def time_rule(self, rule: str, anchor: datetime, at: datetime) -> None:
        self.context.add(
            RuleFiring,
            ticket_id=self.ticket.id,
            workflow_version_id=self.context.version_id,
            rule=rule,
            anchor=anchor,
            fired_at=at,
        )
