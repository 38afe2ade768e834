"""Tickets: create, find, change fields, fire workflow transitions, and bulk changes.

Every change emits a typed event (``autocrm.events``: the trail row, the outbox row, the
realtime payload) and keeps the SLA clocks in the same transaction, timed by the change, and
bumps the ticket's version; a change made against a stale version, or losing a race with
another writer, raises ``Conflict`` (409).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from autocrm import aftercommit, policies
from autocrm.columns import utcnow
from autocrm.engine.versions import current_version_id, engine_for, engine_for_version
from autocrm.errors import Conflict, DomainError, InvalidInput, NotFound
from autocrm.events.emit import by, emit
from autocrm.events.kinds import (
    PUBLIC_TRAIL_KINDS,
    TicketAssigned,
    TicketCreated,
    TicketTransitioned,
    TicketUpdated,
)
from autocrm.extensions import db
from autocrm.fields import forms as request_forms
from autocrm.fields import ordering as field_ordering
from autocrm.fields import values as field_values
from autocrm.files import services as files
from autocrm.listing import Page, PageRequest, contains, keyset_page
from autocrm.people.models import Team, User
from autocrm.realtime import access as realtime_access
from autocrm.sla import clocks as sla
from autocrm.tickets import priority_cap, search, sla_filter
from autocrm.tickets.models import Priority, Ticket, TicketEvent, TicketTag
from autocrm.tickets.state import business_seconds_since_created, enter_state
from autocrm.transaction import commit_keeping_loaded, rolls_back_on_error
from workflows import TransitionNotAllowed, TransitionSpec, UnknownTransition
from workflows.definition import CATEGORIES, DONE_CATEGORIES

SORTS = {
    "id": Ticket.id,  # PageRequest's default
    "created_at": Ticket.created_at,
    "updated_at": Ticket.updated_at,
    "priority": Ticket.priority,
}
MAX_TAG_LENGTH = 50
MAX_SEARCH_LENGTH = 200
TAG = re.compile(rf"^[a-z0-9][a-z0-9_\-]{{0,{MAX_TAG_LENGTH - 1}}}$")
TAG_RULE = f"letters, digits, - and _ (at most {MAX_TAG_LENGTH})"


# -- reading -----------------------------------------------------------------------------------


def with_tags() -> Any:
    """Loader option: the tickets' tags in the tickets' statement (a join), not a second one.
    With a LIMIT, SQLAlchemy pages the tickets in a subquery, planned as it was alone, and
    joins the tags to its rows only. Not for a locking read: PostgreSQL locks no row on the
    nullable side of an outer join."""
    return joinedload(Ticket.tag_rows)


def access_ticket_by_id(actor: User, ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id, options=[with_tags()])
    if ticket is None or not policies.can_view_ticket(actor, ticket):
        raise NotFound(f"Ticket {ticket_id} not found.")
    return ticket


@dataclass(frozen=True)
class TicketFilters:
    status: list[str] = field(default_factory=list)
    priority: list[Priority] = field(default_factory=list)
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    requester_id: int | None = None
    # Tickets of the customers of this organization (by the requester's current membership).
    organization_id: int | None = None
    tag: str | None = None
    q: str | None = None
    # Workflow categories (new, open, pending, solved, closed): what a customer filters by,
    # whatever each workflow calls its states.
    category: list[str] = field(default_factory=list)
    # Tickets of any of these teams (a view's "my teams"; an empty list matches none).
    team_ids: list[int] | None = None
    # SLA state of the running clocks (SLA_FILTERS): "at_risk" is breached or due soon.
    sla: str | None = None
    # Solved (entered a solved category) at most this many days ago.
    solved_within_days: int | None = None
    # Custom fields: ``{key: value as typed}``, each equal (a multi-select: containing it).
    custom_fields: dict[str, str] = field(default_factory=dict)


SLA_FILTERS = ("at_risk", "breached", "due_soon", "on_track", "none")
MAX_SOLVED_WITHIN_DAYS = 3660


def check_filters(filters: TicketFilters) -> None:
    """The filters a person typed (the API's query, the agent queue's form): InvalidInput
    naming each one that can match nothing sensible."""
    errors: dict[str, list[str]] = {}
    if filters.tag and not TAG.match(filters.tag.lower()):
        errors["tag"] = [f"A tag is {TAG_RULE}."]
    if filters.q and len(filters.q) > MAX_SEARCH_LENGTH:
        errors["q"] = [f"Search for at most {MAX_SEARCH_LENGTH} characters."]
    if unknown := sorted(set(filters.category) - set(CATEGORIES)):
        errors["category"] = [f"Unknown status category {c!r}." for c in unknown]
    if filters.sla is not None and filters.sla not in SLA_FILTERS:
        errors["sla"] = [f"One of: {', '.join(SLA_FILTERS)}."]
    days = filters.solved_within_days
    if days is not None and not 1 <= days <= MAX_SOLVED_WITHIN_DAYS:
        errors["solved_within_days"] = [f"From 1 to {MAX_SOLVED_WITHIN_DAYS} days."]
    if errors:
        raise InvalidInput("Please correct the filters.", errors)


def filtered_tickets(actor: User, filters: TicketFilters) -> Select[Ticket]:
    """The tickets ``actor`` may see that match ``filters``, all but the text search ``q``
    (checked filters)."""
    stmt = select(Ticket).where(policies.visible_tickets(actor))
    if filters.custom_fields:
        stmt = stmt.where(*field_values.filter_clauses(actor, filters.custom_fields))
    if filters.status:
        stmt = stmt.where(Ticket.status.in_(filters.status))
    if filters.priority:
        stmt = stmt.where(Ticket.priority.in_(filters.priority))
    if filters.unassigned:
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    elif filters.assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == filters.assignee_id)
    if filters.team_id is not None:
        stmt = stmt.where(Ticket.team_id == filters.team_id)
    if filters.team_ids is not None:
        stmt = stmt.where(Ticket.team_id.in_(filters.team_ids))
    if filters.requester_id is not None:
        stmt = stmt.where(Ticket.requester_id == filters.requester_id)
    if filters.organization_id is not None:
        members = select(User.id).where(User.organization_id == filters.organization_id)
        stmt = stmt.where(Ticket.requester_id.in_(members))
    if filters.tag:
        stmt = stmt.where(
            exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == filters.tag.lower())
        )
    if filters.category:
        stmt = stmt.where(Ticket.category.in_(filters.category))
    if filters.sla:
        stmt = stmt.where(sla_filter.sla_state_is(filters.sla, utcnow()))
    if filters.solved_within_days:
        since = utcnow() - timedelta(days=filters.solved_within_days)
        stmt = stmt.where(Ticket.solved_at >= since)
    return stmt


def list_tickets(
    actor: User, filters: TicketFilters, page: PageRequest, columns: Sequence[Any] = ()
) -> Page[Any]:
    """One page of the tickets ``actor`` may see matching ``filters``. With ``columns``, rows
    of those columns (the sort keys and id among them) instead of hydrated tickets, but a
    ranked search still gives tickets."""
    check_filters(filters)
    stmt = filtered_tickets(actor, filters)
    if filters.q and search.phrases(filters.q):
        # Ranked full text, best first (ticket number q first of all): a search.SearchPage
        # with snippets, paged by a score cursor (see autocrm.tickets.search).
        return search.search_page(actor, stmt, filters.q, page)
    if filters.q:  # no word in it ("#", "?!"): as typed, in the subject or description
        stmt = stmt.where(
            contains(Ticket.subject, filters.q) | contains(Ticket.description, filters.q)
        )
    if field_ordering.is_field_sort(page.sort):  # tickets, paged with empty values last
        return field_ordering.keyset_page(actor, stmt, page)
    stmt = stmt.with_only_columns(*columns) if columns else stmt.options(with_tags())
    return keyset_page(stmt, page, SORTS, Ticket.id)


def count_tickets(actor: User, filters: TicketFilters) -> tuple[int, bool]:
    """How many tickets ``list_tickets`` would list with ``filters`` (every page), and whether
    there are more than that: a text search stops counting above ``search.COUNT_LIMIT``
    (a common word matches most tickets; counting them all took seconds at 1M tickets), so
    its count is then (COUNT_LIMIT, True), read "more than COUNT_LIMIT"."""
    check_filters(filters)
    stmt = filtered_tickets(actor, filters)
    if filters.q and search.phrases(filters.q):
        found = search.matching(actor, stmt, filters.q).limit(search.COUNT_LIMIT + 1)
        n = db.session.scalar(select(func.count()).select_from(found.subquery())) or 0
        return min(n, search.COUNT_LIMIT), n > search.COUNT_LIMIT
    if filters.q:
        stmt = stmt.where(
            contains(Ticket.subject, filters.q) | contains(Ticket.description, filters.q)
        )
    return db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0, False


def count_tickets_each(actor: User, many: Sequence[TicketFilters]) -> list[tuple[int, bool] | None]:
    """``count_tickets`` for each of ``many`` (the queue's views), in one statement: a
    filtered count per set of filters over the tickets ``actor`` may see. A ranked search
    (``q`` with words) is counted on its own; filters that no longer hold (a view's custom
    field deleted since) count None."""
    counts: list[tuple[int, bool] | None] = [None] * len(many)
    folded: list[tuple[int, Any]] = []
    for index, filters in enumerate(many):
        try:
            if filters.q:
                counts[index] = count_tickets(actor, filters)
            else:
                check_filters(filters)
                folded.append((index, filtered_tickets(actor, filters).whereclause))
        except InvalidInput:
            continue
    if folded:
        stmt = select(*(func.count().filter(where) for _, where in folded)).where(
            policies.visible_tickets(actor)
        )
        row = db.session.execute(stmt.select_from(Ticket)).one()
        for (index, _), count in zip(folded, row, strict=True):
            counts[index] = (count or 0, False)
    return counts


def ticket_matches(actor: User, filters: TicketFilters, ticket: Ticket) -> bool:
    """Whether ``list_tickets`` with ``filters`` would list ``ticket`` (a live queue row)."""
    found = filtered_tickets(actor, filters).where(Ticket.id == ticket.id)
    return bool(db.session.scalar(select(found.exists()))) and search_matches(
        actor, filters, ticket
    )


def search_matches(actor: User, filters: TicketFilters, ticket: Ticket) -> bool:
    """Whether searching ``filters.q`` finds ``ticket`` (for a live queue row; the other
    filters are the caller's to check)."""
    if not filters.q:
        return True
    base = select(Ticket).where(policies.visible_tickets(actor))
    if not search.phrases(filters.q):
        text = f"{ticket.subject}\n{ticket.description}".lower()
        return filters.q.lower() in text
    return search.matches(actor, base, filters.q, ticket.id)


def search_snippets(actor: User, q: str | None, ticket_ids: list[int]) -> dict[int, str]:
    """By ticket id, the HTML snippet of what searching ``q`` matched in each ticket (the
    notes' text only for staff); empty without a search."""
    if not q:
        return {}
    return search.snippets(q, ticket_ids, policies.is_staff(actor))


REQUESTER_TICKETS = 10


def other_tickets_of_requester(actor: User, ticket: Ticket) -> list[Ticket]:
    """The requester's other tickets that ``actor`` may see, open ones first, then by latest
    change; at most REQUESTER_TICKETS (the workspace's requester panel)."""
    done_last = case((Ticket.category.in_(DONE_CATEGORIES), 1), else_=0)
    stmt = (
        select(Ticket)
        .where(
            policies.visible_tickets(actor),
            Ticket.requester_id == ticket.requester_id,
            Ticket.id != ticket.id,
        )
        .order_by(done_last, Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(REQUESTER_TICKETS)
        .options(with_tags())
    )
    return list(db.session.scalars(stmt).unique())


def allowed_transitions(actor: User, ticket: Ticket) -> list[TransitionSpec]:
    return engine_for(ticket).allowed(ticket, actor.role.value, actor)


def list_events(actor: User, ticket_id: int) -> list[TicketEvent]:
    ticket = access_ticket_by_id(actor, ticket_id)
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    if not policies.is_staff(actor):
        stmt = stmt.where(TicketEvent.kind.in_(PUBLIC_TRAIL_KINDS))
    return list(db.session.scalars(stmt))


# -- shared checks and the audit trail ----------------------------------------------------------


def check_fields_allowed(actor: User, fields: Iterable[str], *, creating: bool) -> None:
    forbidden = policies.forbidden_ticket_fields(actor, set(fields), creating=creating)
    if forbidden:
        raise InvalidInput(
            "Only staff may set " + ", ".join(sorted(forbidden)) + ".",
            {name: ["Only staff may set this field."] for name in sorted(forbidden)},
        )


def _check_team(team_id: int | None) -> None:
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise InvalidInput("Unknown team.", {"team_id": [f"No team {team_id}."]})


def _check_assignee(assignee_id: int | None, team_id: int | None) -> None:
    if assignee_id is None:
        return
    user = db.session.get(User, assignee_id)
    if user is None or not user.active or not user.role.is_staff:
        raise InvalidInput(
            "Invalid assignee.", {"assignee_id": ["Must be an active agent or admin."]}
        )
    if team_id is not None and team_id not in user.team_ids:
        raise InvalidInput(
            "Assignee is not in the ticket's team.",
            {"assignee_id": [f"User {assignee_id} is not a member of team {team_id}."]},
        )


def normalize_tags(tags: Iterable[str]) -> list[str]:
    cleaned = sorted({t.strip().lower() for t in tags if t.strip()})
    bad = [t for t in cleaned if not TAG.match(t)]
    if bad:
        raise InvalidInput(
            "Invalid tag.",
            {"tags": [f"{t!r}: use {TAG_RULE}." for t in bad]},
        )
    return cleaned


def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(
            f"Ticket {ticket.id} is at version {ticket.version}, not {expected_version}; "
            "reload it and try again.",
            {"version": [f"Stale; current version is {ticket.version}."]},
            current_version=ticket.version,
        )


@contextmanager
def _one_change() -> Iterator[None]:
    """The body makes one change and it is committed; losing an optimistic-locking race (at
    any flush inside, or at commit) becomes a 409 and nothing of the change is kept."""
    try:
        yield
        commit_keeping_loaded()  # the caller answers from what it holds
    except StaleDataError as exc:
        db.session.rollback()
        raise Conflict("The ticket was changed by someone else; reload it and try again.") from exc


# -- the durations reports aggregate ------------------------------------------------------------


@rolls_back_on_error
def do_recompute_business_durations(
    batch_size: int = 500, progress: Callable[[int], None] | None = None
) -> int:
    """Measure again, in each ticket's calendar, the first-response and resolution times of
    every answered or solved ticket: those answered or solved before migration 0007 got
    wall-clock seconds, and a team's new business hours change what its past durations were.
    Walks the tickets by id and commits batch by batch (a plain UPDATE: no new version, no
    event), calling ``progress`` with how many are done so far. Returns how many were measured.
    Safe to run again or to interrupt."""
    table = cast(Table, Ticket.__table__)  # declarative types it as any FromClause
    rewrite = (
        update(table)
        .where(table.c.id == bindparam("ticket_id"))
        .values(
            first_response_business_seconds=bindparam("first_response"),
            resolution_business_seconds=bindparam("resolution"),
        )
    )
    done, last_id = 0, 0
    while True:
        batch = db.session.scalars(
            select(Ticket)
            .where(
                Ticket.id > last_id,
                or_(Ticket.first_responded_at.is_not(None), Ticket.solved_at.is_not(None)),
            )
            .order_by(Ticket.id)
            .limit(batch_size)
        ).all()
        if not batch:
            return done
        db.session.execute(
            rewrite,
            [
                {
                    "ticket_id": ticket.id,
                    "first_response": _business_seconds_until(ticket, ticket.first_responded_at),
                    "resolution": _business_seconds_until(ticket, ticket.solved_at),
                }
                for ticket in batch
            ],
        )
        db.session.commit()
        done, last_id = done + len(batch), batch[-1].id
        if progress is not None:
            progress(done)


def _business_seconds_until(ticket: Ticket, moment: datetime | None) -> float | None:
    return None if moment is None else business_seconds_since_created(ticket, moment)


# -- writing -----------------------------------------------------------------------------------


@rolls_back_on_error
def do_create_ticket(
    actor: User,
    *,
    subject: str,
    description: str,
    priority: Priority = Priority.NORMAL,
    channel: str = "api",
    attachment_ids: Iterable[int] = (),
    **staff_fields: Any,
) -> Ticket:
    """Open a ticket; ``attachment_ids``: the actor's own unattached uploads, sent with it."""
    check_fields_allowed(
        actor, [k for k, v in staff_fields.items() if v is not None], creating=True
    )
    priority_cap.check_priority_allowed(actor, priority)
    form = request_forms.check_ticket_form(staff_fields.get("form"))
    custom = request_forms.check_form_values(actor, form, staff_fields.get("fields") or {})
    team_id = staff_fields.get("team_id")
    if form is not None and team_id is None:
        team_id = form.team_id  # the form routes it, unless staff named a team
    requester_id = staff_fields.get("requester_id") or actor.id
    requester = db.session.get(User, requester_id)
    if requester is None or not requester.active:
        raise InvalidInput(
            "Unknown requester.", {"requester_id": [f"No active user {requester_id}."]}
        )
    ticket = create_ticket(
        actor,
        requester,
        subject=subject,
        description=description,
        priority=priority,
        channel=channel,
        attachment_ids=attachment_ids,
        team_id=team_id,
        assignee_id=staff_fields.get("assignee_id"),
        tags=staff_fields.get("tags") or [],
        custom_fields=custom,
        form_id=form.id if form is not None else None,
    )
    commit_keeping_loaded()  # the caller answers from what it holds
    return ticket


def create_ticket(
    actor: User,
    requester: User,
    *,
    subject: str,
    description: str,
    priority: Priority = Priority.NORMAL,
    channel: str,
    attachment_ids: Iterable[int] = (),
    team_id: int | None = None,
    assignee_id: int | None = None,
    tags: Iterable[str] = (),
    mailbox_id: int | None = None,
    custom_fields: dict[str, Any] | None = None,
    form_id: int | None = None,
) -> Ticket:
    """In the caller's transaction: a new ticket of ``requester``, opened by ``actor`` (the
    caller decided which fields ``actor`` may set, and checked ``custom_fields``:
    ``field_values.check_values``; the email channel sets the mailbox's team)."""
    if not subject.strip():
        raise InvalidInput("Subject is blank.", {"subject": ["Must not be blank."]})
    _check_team(team_id)
    _check_assignee(assignee_id, team_id)
    version_id = current_version_id()
    engine = engine_for_version(version_id)
    ticket = Ticket(
        created_at=utcnow(),
        subject=subject.strip(),
        description=description,
        priority=priority,
        channel=channel,
        mailbox_id=mailbox_id,
        requester_id=requester.id,
        team_id=team_id,
        assignee_id=assignee_id,
        workflow_version_id=version_id,
        status=engine.initial,
        category=engine.categories[engine.initial],
        custom_fields=field_values.merged({}, custom_fields or {}),
        form_id=form_id,
    )
    ticket.tags = tag_names = normalize_tags(tags)
    db.session.add(ticket)
    db.session.flush()
    files.attach(actor, attachment_ids, ticket_id=ticket.id)
    sla.start_new_ticket(ticket)
    emit(
        TicketCreated(
            ticket_id=ticket.id,
            **by(actor),
            to_state=ticket.status,
            team_id=team_id,
            assignee_id=assignee_id,
            priority=priority.label,
            tags=list(tag_names),  # not ticket.tags: after the flush that reads them back
        )
    )
    return ticket


def apply_changes(
    actor: User | None, ticket: Ticket, changes: dict[str, Any]
) -> dict[str, list[Any]]:
    """Set ticket fields (already authorized; custom ``fields`` are checked here for
    ``actor``, None being the system); returns ``{field: [old, new]}`` of real changes, a
    custom field's as ``fields.<key>``."""
    if "fields" in changes:
        custom = field_values.check_values(actor, changes["fields"], ticket.custom_fields)
        changes = {k: v for k, v in changes.items() if k != "fields"}
    else:
        custom = {}
    if "form" in changes:  # the form it was filed with; moving it reroutes nothing
        form = request_forms.check_ticket_form(changes["form"], current=ticket.form_id)
        changes = {k: v for k, v in changes.items() if k != "form"}
        changes["form_id"] = form.id if form is not None else None
    team_id = changes.get("team_id", ticket.team_id)
    if "team_id" in changes:
        _check_team(team_id)
        if "assignee_id" not in changes and ticket.assignee_id is not None:
            assignee = db.session.get(User, ticket.assignee_id)
            if team_id is not None and assignee and team_id not in assignee.team_ids:
                changes = {**changes, "assignee_id": None}  # moving teams drops a foreign assignee
    if "assignee_id" in changes:
        _check_assignee(changes["assignee_id"], team_id)
    if "tags" in changes:
        changes = {**changes, "tags": normalize_tags(changes["tags"])}
    diff: dict[str, list[Any]] = {}
    for name, new in changes.items():
        old = list(ticket.tags) if name == "tags" else getattr(ticket, name)
        if old != new:
            diff[name] = [_plain(old), _plain(new)]
            setattr(ticket, name, new)
    diff.update(_apply_custom(ticket, custom))
    realtime_access.drop_lost_viewers(ticket, diff)
    if diff:
        now = utcnow()
        ticket.updated_at = now  # also makes a tags-only change UPDATE the row: new version
        if "team_id" in diff:
            sla.on_team_change(ticket, diff["team_id"][0], now)
        if "priority" in diff:
            sla.on_priority_change(ticket, now)
        emit(TicketUpdated(ticket_id=ticket.id, **by(actor), changes=diff))
        if "assignee_id" in diff:
            emit(
                TicketAssigned(ticket_id=ticket.id, **by(actor), assignee_id=diff["assignee_id"][1])
            )
    return diff


def _apply_custom(ticket: Ticket, custom: dict[str, Any]) -> dict[str, list[Any]]:
    before = ticket.custom_fields or {}
    after = field_values.merged(before, custom)
    diff = {
        f"fields.{key}": [before.get(key), after.get(key)]
        for key in custom
        if before.get(key) != after.get(key)
    }
    if diff:
        ticket.custom_fields = after  # a new object: the JSON column sees the change
    return diff


def _plain(value: Any) -> Any:
    return value.label if isinstance(value, Priority) else value


@rolls_back_on_error
def do_update_ticket(
    actor: User, ticket_id: int, changes: dict[str, Any], expected_version: int | None = None
) -> Ticket:
    ticket = access_ticket_by_id(actor, ticket_id)
    check_fields_allowed(actor, changes, creating=False)
    _check_version(ticket, expected_version)
    with _one_change():
        apply_changes(actor, ticket, changes)
    return ticket


def fire_transition(actor: User | None, ticket: Ticket, name: str) -> None:
    """Move the ticket by a named workflow transition (the ticket is already visible to actor;
    no actor: the automation, which any transition's role list admits)."""
    engine = engine_for(ticket)
    try:
        outcome = engine.fire(ticket, name, actor.role.value if actor else None, actor)
    except UnknownTransition as exc:
        raise InvalidInput(str(exc), {"name": [str(exc)]}, allowed_transitions=exc.allowed) from exc
    except TransitionNotAllowed as exc:
        raise Conflict(str(exc), {"name": [str(exc)]}, allowed_transitions=exc.allowed) from exc
    if outcome.to_category == "solved" and outcome.from_category != "solved":
        try:
            field_values.check_solvable(ticket)  # the "required fields filled" guard
        except Conflict:
            ticket.status = outcome.from_state
            raise
    enter_state(
        ticket,
        from_category=outcome.from_category,
        to_state=outcome.to_state,
        to_category=outcome.to_category,
        now=utcnow(),
    )
    emit(
        TicketTransitioned(
            ticket_id=ticket.id,
            **by(actor),
            transition=name,
            from_state=outcome.from_state,
            to_state=outcome.to_state,
            to_category=outcome.to_category,
        )
    )


@rolls_back_on_error
def do_transition(
    actor: User, ticket_id: int, name: str, expected_version: int | None = None
) -> Ticket:
    ticket = access_ticket_by_id(actor, ticket_id)
    _check_version(ticket, expected_version)
    with _one_change():
        fire_transition(actor, ticket, name)
    return ticket


# -- bulk --------------------------------------------------------------------------------------


@dataclass
class BulkResult:
    ticket_id: int
    ok: bool
    status: int = 200
    message: str = ""
    ticket: Ticket | None = None


@rolls_back_on_error
def do_bulk(actor: User, ticket_ids: list[int], action: str, value: Any) -> list[BulkResult]:
    """Apply one action to many tickets; each succeeds or fails on its own."""
    results = []
    for ticket_id in dict.fromkeys(ticket_ids):
        try:
            with aftercommit.savepoint():  # each ticket's change lands whole or not at all
                ticket = access_ticket_by_id(actor, ticket_id)
                if action == "transition":
                    fire_transition(actor, ticket, value)
                else:
                    changes = {"assignee_id" if action == "assign" else "priority": value}
                    check_fields_allowed(actor, changes, creating=False)
                    apply_changes(actor, ticket, changes)
                db.session.flush()
            results.append(BulkResult(ticket_id, ok=True, ticket=ticket))
        except DomainError as exc:
            results.append(
                BulkResult(ticket_id, ok=False, status=exc.status_code, message=exc.message)
            )
        except StaleDataError:
            results.append(
                BulkResult(
                    ticket_id, ok=False, status=409, message="Changed by someone else meanwhile."
                )
            )
    db.session.commit()
    return results
