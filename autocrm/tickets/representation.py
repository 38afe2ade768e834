"""How a ticket, a message and a trail entry look to the people who read them: one schema each.

The REST API, the realtime events (``autocrm.realtime.publish``) and the pages all serialize
through these, so a page that applies a realtime event holds exactly what a fresh fetch would
give it. Tickets are rendered for an audience, in bulk (one query per kind of related row,
whatever the number of tickets):

- ``customer``: what the requester may see; its ``transitions`` are the customer's.
- ``staff``: all of it, plus the SLA clocks; its ``transitions`` are the staff roles'.

``transitions`` lists what the audience's roles may fire from the ticket's state, each with
the roles that may and whether only the assignee may (the ``actor_is_assignee`` guard): a
viewer's own buttons are ``allowed_for(ticket, role, user_id)``, which equals the REST
``/transitions`` answer for that viewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from marshmallow import Schema, fields
from sqlalchemy import inspect, or_, select
from sqlalchemy.orm.attributes import set_committed_value

from autocrm import aftercommit, markdown
from autocrm.engine.versions import engine_for_version
from autocrm.extensions import db
from autocrm.fields import values as field_values
from autocrm.fields.models import RequestForm
from autocrm.files.models import Attachment
from autocrm.files.representation import AttachmentSchema
from autocrm.people.models import User
from autocrm.sla import clocks as sla_clocks
from autocrm.sla.models import SlaClock
from autocrm.tickets import history, mentions
from autocrm.tickets.models import (
    Message,
    Priority,
    Ticket,
    TicketEvent,
    TicketLink,
    TicketTag,
)
from autocrm.transaction import held_values
from workflows.guards import ACTOR_GUARDS, GUARDS

Audience = Literal["staff", "customer"]
AUDIENCE_ROLES: dict[str, frozenset[str]] = {
    "staff": frozenset({"agent", "admin"}),
    "customer": frozenset({"customer"}),
}


def audience_of(user: User) -> Audience:
    return "staff" if user.role.is_staff else "customer"


# -- messages ---------------------------------------------------------------------------------


class MessageSchema(Schema):
    """A message as every reader gets it: enough to draw it without another request."""

    id = fields.Integer()
    ticket_id = fields.Integer()
    author_id = fields.Integer()
    author_name = fields.Function(lambda m: m.author.name, deserialize=str)
    author_role = fields.Function(
        lambda m: m.author.role.value,
        deserialize=str,
        metadata={"enum": ["customer", "agent", "admin"]},
    )
    body = fields.String(metadata={"description": "Markdown, as written."})
    body_html = fields.Function(
        lambda m: _body_html(m),
        deserialize=str,
        metadata={
            "description": "The body rendered to sanitized HTML (an email's text as written, "
            "its lines kept; anything else as Markdown; an internal note's @mentions as "
            '`<span class="mention" data-user-id="...">@Name</span>`).'
        },
    )
    internal = fields.Boolean()
    channel = fields.String(
        metadata={"description": "The door it came in by: web, api, chat or email."}
    )
    inbound_email_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The email it was received as (staff read the original)."},
    )
    created_at = fields.DateTime()
    attachments = fields.List(
        fields.Nested(AttachmentSchema), metadata={"description": "The message's files."}
    )


def _body_html(message: Message) -> str:
    if message.channel == "email":
        return markdown.render_plain(message.body)
    return mentions.render(message.body) if message.internal else markdown.render(message.body)


def render_message(message: Message) -> dict[str, Any]:
    return _MESSAGE.dump(message)


def render_messages(
    messages: Sequence[Message], known: Mapping[int, User] | None = None
) -> list[dict[str, Any]]:
    return _MESSAGE.dump(preload_authors(messages, known), many=True)


def preload_authors(
    messages: Sequence[Message], known: Mapping[int, User] | None = None
) -> Sequence[Message]:
    """The messages, their authors loaded in one query (not one per message); ``known``:
    users the caller has read already (a page's people), not read again."""
    authors = {i: known[i] for i in {m.author_id for m in messages} if i in known} if known else {}
    ids = {m.author_id for m in messages} - authors.keys()
    if ids:
        authors.update({u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))})
    if authors:
        # Set on the messages: the session's identity map alone holds the users only weakly.
        for message in messages:
            set_committed_value(message, "author", authors[message.author_id])
    return messages


# -- the trail --------------------------------------------------------------------------------


class TrailEntrySchema(Schema):
    """One entry of a ticket's audit trail (customers see only creation and status changes)."""

    id = fields.Integer()
    ticket_id = fields.Integer()
    kind = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.String(allow_none=True, metadata={"description": "Null: automation."})
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    to_state_label = fields.String(allow_none=True)
    data = fields.Dict()
    created_at = fields.DateTime()
    summary = fields.String(
        allow_none=True,
        metadata={
            "description": 'The entry in words, with who or what did it ("Priority changed '
            'from Normal to High by Ann Admin"); null when the entry just before it says it '
            "already (an assignment made by that field change)."
        },
    )
    why = fields.List(
        fields.String(),
        metadata={"description": "For automated changes: the rule and the conditions that held."},
    )


def render_trail(entries: Sequence[TicketEvent]) -> list[dict[str, Any]]:
    return _TRAIL_ENTRY.dump(trail_views(entries), many=True)


def trail_views(entries: Sequence[TicketEvent]) -> list[dict[str, Any]]:
    """The entries' fields for ``TrailEntrySchema`` (names and labels read once for all)."""
    if not entries:
        return []
    names = history.load_names(entries)  # the actors and the tickets' workflows among them
    rows = []
    lines = history.describe_entries(entries, names)
    for entry, line in zip(entries, lines, strict=True):
        labels = names.engines[entry.ticket_id].state_labels
        rows.append(
            {
                "id": entry.id,
                "ticket_id": entry.ticket_id,
                "kind": entry.kind,
                "actor_id": entry.actor_id,
                "actor_name": names.users.get(entry.actor_id) if entry.actor_id else None,
                "from_state": entry.from_state,
                "to_state": entry.to_state,
                "to_state_label": labels.get(entry.to_state, entry.to_state)
                if entry.to_state
                else None,
                "data": entry.data,
                "created_at": entry.created_at,
                "summary": line.summary,
                "why": line.why,
            }
        )
    return rows


# -- tickets ----------------------------------------------------------------------------------


class OfferedTransitionSchema(Schema):
    name = fields.String()
    label = fields.String()
    to = fields.String()
    roles = fields.List(fields.String())
    assignee_only = fields.Boolean(metadata={"description": "Only the ticket's assignee may."})


class SlaClockSchema(Schema):
    metric = fields.String()
    state = fields.String(metadata={"enum": ["running", "warning", "paused", "met", "breached"]})
    due_at = fields.DateTime(allow_none=True)
    stopped_at = fields.DateTime(allow_none=True)
    breached_at = fields.DateTime(allow_none=True)


PRIORITIES = [p.label for p in Priority]


class PriorityField(fields.Field):
    """``low|normal|high|urgent`` on the wire, ``Priority`` inside."""

    default_error_messages = {"invalid": f"Must be one of: {', '.join(PRIORITIES)}."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})["enum"] = PRIORITIES
        super().__init__(**kwargs)

    def _serialize(self, value: Priority | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else Priority(value).label

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Priority:
        if not isinstance(value, str) or value.lower() not in PRIORITIES:
            raise self.make_error("invalid")
        return Priority.from_label(value)


class TicketSchema(Schema):
    """A ticket in a list (the REST list and bulk answers); one ticket carries more."""

    id = fields.Integer()
    subject = fields.String()
    description = fields.String()
    status = fields.String()
    priority = PriorityField()
    channel = fields.String()
    requester_id = fields.Integer()
    assignee_id = fields.Integer(allow_none=True)
    team_id = fields.Integer(allow_none=True)
    tags = fields.List(fields.String())
    version = fields.Integer()
    workflow_version_id = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    first_responded_at = fields.DateTime(allow_none=True)
    solved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    merged_into_id = fields.Integer(
        allow_none=True, metadata={"description": "The ticket this one was merged into."}
    )
    form_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The request form it was filed with (GET /api/request-forms)."},
    )


class TicketViewSchema(TicketSchema):
    """One ticket as its requester may see it (the REST detail and ``ticket_updated``)."""

    status_label = fields.String(metadata={"description": "The state's name for people."})
    category = fields.String(metadata={"enum": ["new", "open", "pending", "solved", "closed"]})
    requester_name = fields.String()
    assignee_name = fields.String(allow_none=True)
    team_name = fields.String(allow_none=True)
    form_name = fields.String(allow_none=True, metadata={"description": "Its request form's."})
    transitions = fields.List(fields.Nested(OfferedTransitionSchema))
    attachments = fields.List(
        fields.Nested(AttachmentSchema),
        metadata={"description": "The files sent with the ticket (its description's)."},
    )
    visible_fields = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={
            "description": "Custom field values by key (GET /api/ticket-fields), only those "
            "filled; customers get only customer-visible fields."
        },
    )


class StaffTicketViewSchema(TicketViewSchema):
    """What staff see besides: the SLA clocks (due times of the running ones in ``sla_due``)."""

    sla_due = fields.Dict(keys=fields.String(), values=fields.DateTime(allow_none=True))
    sla_clocks = fields.List(fields.Nested(SlaClockSchema))
    linked_ticket_ids = fields.List(
        fields.Integer(), metadata={"description": "Related tickets, linked both ways."}
    )


def schema_for(audience: Audience) -> type[TicketViewSchema]:
    return StaffTicketViewSchema if audience == "staff" else TicketViewSchema


def render_ticket(ticket: Ticket, audience: Audience) -> dict[str, Any]:
    return render_tickets([ticket], audience)[0]


def render_tickets(
    tickets: Sequence[Ticket], audience: Audience, shared: TicketLookups | None = None
) -> list[dict[str, Any]]:
    return dump_views(ticket_views(tickets, audience, shared), audience)


def dump_views(views: list[dict[str, Any]], audience: Audience) -> list[dict[str, Any]]:
    """``ticket_views`` as the audience's schema sends them."""
    return _TICKET_VIEW[audience].dump(views, many=True)


def ticket_view(ticket: Ticket, audience: Audience) -> dict[str, Any]:
    return committed_view(ticket, audience) or ticket_views([ticket], audience)[0]


def keep_committed_view(ticket_id: int, audience: Audience, view: dict[str, Any]) -> None:
    """Just before a commit: the ticket's final view, for ``committed_view``."""
    aftercommit.keep(("ticket_view", ticket_id, audience), view)


def committed_view(ticket: Ticket, audience: Audience) -> dict[str, Any] | None:
    """The view of the ticket rendered just before the session's last commit (the
    ``ticket_updated`` event's), while the session has begun nothing since: the response to a
    change, with no reading back what was just written. None: render it anew."""
    identity = inspect(ticket).identity  # the id, without loading an expired ticket
    if identity is None:
        return None
    return cast(dict[str, Any] | None, aftercommit.kept(("ticket_view", identity[0], audience)))


@dataclass(frozen=True)
class TicketLookups:
    """What tickets' views read alike for every audience (``ticket_lookups``): the same
    tickets rendered for staff and for customers read it once."""

    names: dict[int | None, str]
    teams: dict[int, str]
    form_names: dict[int, str]
    files: dict[int, list[Attachment]]
    definitions: dict[str, Any]


def ticket_lookups(tickets: Sequence[Ticket]) -> TicketLookups:
    """The people, teams, forms, description files and field definitions of ``tickets``
    (and so of any of them), one query each."""
    people: set[int | None] = {t.requester_id for t in tickets}
    return TicketLookups(
        names=_user_names(people | {t.assignee_id for t in tickets}),
        teams=history.team_names({t.team_id for t in tickets if t.team_id is not None}),
        form_names=_form_names({t.form_id for t in tickets if t.form_id is not None}),
        files=_description_files({t.id for t in tickets}),
        definitions=field_values.defined_fields(),
    )


def ticket_views(
    tickets: Sequence[Ticket], audience: Audience, shared: TicketLookups | None = None
) -> list[dict[str, Any]]:
    """Each ticket's fields for the audience's schema; the people, teams and clocks are read
    once for all the tickets. ``shared``: ``ticket_lookups`` of these tickets (or of more),
    if the caller has them already."""
    if not tickets:
        return []
    db.session.flush()  # the version and updated_at a reader will see are set at flush
    shared = shared or ticket_lookups(tickets)
    names, teams, form_names = shared.names, shared.teams, shared.form_names
    files, definitions = shared.files, shared.definitions
    clocks = sla_clocks.ticket_clocks(t.id for t in tickets) if audience == "staff" else {}
    links = linked_ids(t.id for t in tickets) if audience == "staff" else {}
    rows = []
    for ticket in tickets:
        engine = engine_for_version(ticket.workflow_version_id)
        row = {
            **{name: getattr(ticket, name) for name in _PLAIN},
            "status_label": engine.state_labels.get(ticket.status, ticket.status),
            "priority": Priority(ticket.priority),
            "requester_name": names.get(ticket.requester_id),
            "assignee_name": names.get(ticket.assignee_id) if ticket.assignee_id else None,
            "team_name": teams.get(ticket.team_id) if ticket.team_id else None,
            "form_name": form_names.get(ticket.form_id) if ticket.form_id else None,
            "tags": list(ticket.tags),
            "transitions": _offered(
                ticket,
                engine.transitions.values(),
                audience,
                unsolvable=engine.categories
                if field_values.missing_to_solve(ticket, definitions)
                else None,
            ),
            "attachments": files.get(ticket.id, []),
            "visible_fields": field_values.visible_values(
                ticket.custom_fields, audience, definitions
            ),
        }
        if audience == "staff":
            mine = clocks.get(ticket.id, [])
            row["sla_due"] = {c.metric: c.due_at for c in mine if c.stopped_at is None}
            row["sla_clocks"] = [_clock(c) for c in mine]
            row["linked_ticket_ids"] = links.get(ticket.id, [])
        rows.append(row)
    return rows


# One instance of each schema: building one reads its fields anew, and dumping keeps no state.
_MESSAGE = MessageSchema()
_TRAIL_ENTRY = TrailEntrySchema()
_TICKET_VIEW: dict[str, TicketViewSchema] = {
    "staff": StaffTicketViewSchema(),
    "customer": TicketViewSchema(),
}


# -- a list of tickets (the REST list) ---------------------------------------------------------

# What a listed ticket shows (``TicketSchema`` and its custom fields), selected as columns: a
# page of 50 rows hydrated as ORM objects and dumped field by field through marshmallow cost
# more than the query itself (issue 17).
LISTED_COLUMNS = (
    Ticket.id, Ticket.subject, Ticket.description, Ticket.status, Ticket.priority,
    Ticket.channel, Ticket.requester_id, Ticket.assignee_id, Ticket.team_id, Ticket.version,
    Ticket.workflow_version_id, Ticket.created_at, Ticket.updated_at,
    Ticket.first_responded_at, Ticket.solved_at, Ticket.closed_at, Ticket.merged_into_id,
    Ticket.form_id, Ticket.custom_fields,
)  # fmt: skip
_LISTED_NAMES = tuple(column.key for column in LISTED_COLUMNS)
_LISTED_TIMES = ("created_at", "updated_at", "first_responded_at", "solved_at", "closed_at")


def listed_items(
    items: Sequence[Any], audience: Audience, snippets: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """The JSON objects of a list page (the API's ``TicketListItemSchema``), built from rows
    of ``LISTED_COLUMNS`` or from tickets; ``snippets``: a search's, by ticket id (a plain
    listing has no ``snippet`` key at all). Equal to that schema's dump (a test says so),
    without its per-field cost; the tags of the rows are read in one query."""
    if not items:
        return []
    tags = _tags_of([item.id for item in items if not isinstance(item, Ticket)])
    definitions = field_values.defined_fields()
    listed = []
    for item in items:
        # Rows unpack by position: a Row's attribute access by name costs more than the rest.
        values = (
            [getattr(item, name) for name in _LISTED_NAMES] if isinstance(item, Ticket) else item
        )
        row = dict(zip(_LISTED_NAMES, values, strict=True))
        custom = row.pop("custom_fields")
        row["fields"] = field_values.visible_values(custom, audience, definitions)
        row["priority"] = Priority(row["priority"]).label
        row["tags"] = list(item.tags) if isinstance(item, Ticket) else tags.get(row["id"], [])
        for name in _LISTED_TIMES:
            if (value := row[name]) is not None:
                row[name] = value.isoformat()
        if snippets is not None:
            row["snippet"] = snippets.get(row["id"])
        listed.append(row)
    return listed


def _tags_of(ticket_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    if not ticket_ids:
        return found
    stmt = (
        select(TicketTag.ticket_id, TicketTag.tag)
        .where(TicketTag.ticket_id.in_(ticket_ids))
        .order_by(TicketTag.tag)
    )
    for ticket_id, tag in db.session.execute(stmt):
        found.setdefault(ticket_id, []).append(tag)
    return found


def allowed_for(ticket: dict[str, Any], role: str, user_id: int) -> list[dict[str, Any]]:
    """The rendered ticket's transitions one viewer may fire (what the page shows as buttons)."""
    return [
        t
        for t in ticket["transitions"]
        if role in t["roles"] and (not t["assignee_only"] or ticket["assignee_id"] == user_id)
    ]


_PLAIN = (
    "id", "subject", "description", "status", "category", "channel", "requester_id",
    "assignee_id", "team_id", "version", "workflow_version_id", "created_at", "updated_at",
    "first_responded_at", "solved_at", "closed_at", "merged_into_id", "form_id",
)  # fmt: skip


def _offered(
    ticket: Ticket,
    specs: Iterable[Any],
    audience: Audience,
    unsolvable: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Transitions from the ticket's state that the audience's roles may fire, checking every
    guard that does not depend on who fires it. ``unsolvable``: the state categories of a
    ticket that lacks a required-to-solve field (no move into a solved state is offered)."""
    roles = AUDIENCE_ROLES[audience]
    if unsolvable is not None and unsolvable.get(ticket.status) != "solved":
        specs = [s for s in specs if unsolvable.get(s.dest) != "solved"]
    return [
        {
            "name": spec.name,
            "label": spec.label,
            "to": spec.dest,
            "roles": sorted(spec.roles & roles),
            "assignee_only": any(g in ACTOR_GUARDS for g in spec.guards),
        }
        for spec in specs
        if ticket.status in spec.sources
        and spec.roles & roles
        and all(GUARDS[g](ticket, None) for g in spec.guards if g not in ACTOR_GUARDS)
    ]


def clock_state(clock: SlaClock) -> str:
    if clock.breached_at is not None:
        return "breached"
    if clock.stopped_at is not None:
        return "met"
    if clock.due_at is None:
        return "paused"
    return "warning" if clock.warned_at is not None else "running"


def _clock(clock: SlaClock) -> dict[str, Any]:
    return {
        "metric": clock.metric,
        "state": clock_state(clock),
        "due_at": clock.due_at,
        "stopped_at": clock.stopped_at,
        "breached_at": clock.breached_at,
    }


def _description_files(ticket_ids: set[int]) -> dict[int, list[Attachment]]:
    by_ticket: dict[int, list[Attachment]] = {}
    stmt = (
        select(Attachment)
        .where(Attachment.ticket_id.in_(ticket_ids), Attachment.message_id.is_(None))
        .order_by(Attachment.id)
    )
    for attachment in db.session.scalars(stmt):
        by_ticket.setdefault(attachment.ticket_id or 0, []).append(attachment)
    return by_ticket


def _form_names(form_ids: set[int]) -> dict[int, str]:
    if not form_ids:
        return {}
    stmt = select(RequestForm.id, RequestForm.name).where(RequestForm.id.in_(form_ids))
    return {row[0]: row[1] for row in db.session.execute(stmt)}


def _user_names(user_ids: set[int | None]) -> dict[int | None, str]:
    names: dict[int | None, str] = held_values(User, {i for i in user_ids if i is not None}, "name")
    ids = {i for i in user_ids if i is not None and i not in names}
    if ids:
        rows = db.session.execute(select(User.id, User.name).where(User.id.in_(ids)))
        names.update({row[0]: row[1] for row in rows})
    return names


def linked_ids(ticket_ids: Iterable[int]) -> dict[int, list[int]]:
    """For each ticket, the ids of the tickets linked to it, in order (no permission check)."""
    wanted = set(ticket_ids)
    found: dict[int, list[int]] = {ticket_id: [] for ticket_id in wanted}
    if not wanted:
        return found
    stmt = select(TicketLink.ticket_id, TicketLink.linked_id).where(
        or_(TicketLink.ticket_id.in_(wanted), TicketLink.linked_id.in_(wanted))
    )
    for low, high in db.session.execute(stmt):
        if low in found:
            found[low].append(high)
        if high in found:
            found[high].append(low)
    return {ticket_id: sorted(ids) for ticket_id, ids in found.items()}
