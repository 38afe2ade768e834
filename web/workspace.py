"""The agent's ticket workspace: conversation, notes, macros, workflow actions.

Pages work without JavaScript (forms that POST and redirect); ``static/js/workspace.js``
adds the live conversation over Socket.IO, the typing and presence warnings, and catching up
on messages after a reconnect through ``messages.json`` (session-authenticated, unlike the
bearer-token REST API). Every change goes through a service with the ticket's version, so a
stale page gets the "changed by someone else" message with the user's input kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm.engine.versions import engine_for
from autocrm.errors import Conflict, DomainError, InvalidInput, NotFound
from autocrm.kb import articles
from autocrm.listing import PageRequest
from autocrm.macros import applying
from autocrm.macros import services as macros
from autocrm.mail import receive, serving
from autocrm.people import teams, users
from autocrm.people.models import Role, Team, User
from autocrm.requestguard import accepts_uploads
from autocrm.tickets import conversation, followers, links, mentions, merging, representation
from autocrm.tickets import services as tickets
from autocrm.tickets import tags as ticket_tags
from autocrm.tickets.models import Priority, Ticket
from web import kb_staff
from web.attachments import file_errors, upload_form_files
from web.forms import parse_id
from web.session import login_required

bp = Blueprint("workspace", __name__, url_prefix="/agent")

CONFLICT_MESSAGE = (
    "This ticket was changed by someone else while you were working on it. The page now shows "
    "its current state and your input is kept: check it and submit again."
)
METRIC_LABELS = {
    "first_response": "First response",
    "next_reply": "Next reply",
    "resolution": "Resolution",
}
MESSAGE_PAGES = 10  # at most 10 x 200 messages on the page; the rest is one reload away


# -- the workspace page ------------------------------------------------------------------------


@bp.get("/tickets/<int:ticket_id>")
@login_required(staff=True)
def ticket(user: User, ticket_id: int) -> str | tuple[str, int]:
    """The workspace. Without JavaScript, ``?macro=<id>`` (formerly ``?canned=``) previews a
    macro on the ticket (a text-only one also starts the reply with its text), and
    ``?kb_insert=<article id>`` (with ``visibility``) starts it with an article's link;
    ``?kb_q=`` lists knowledge-base articles in the reply area."""
    draft, notice, preview = "", None, None
    internal = request.args.get("visibility") == "internal"
    macro_id = request.args.get("macro", type=int) or request.args.get("canned", type=int)
    article_id = request.args.get("kb_insert", type=int)
    item = tickets.access_ticket_by_id(user, ticket_id)
    if macro_id:
        try:
            preview = applying.preview_by_id(user, ticket_id, macro_id)
            draft = preview.body if preview.macro.text_only else ""
        except NotFound as exc:
            notice = exc.message
    elif article_id:
        try:
            link = kb_staff.reply_link(
                articles.access_article_by_id(user, article_id), internal_reply=internal
            )
            draft, notice = link.markdown or "", link.warning
        except NotFound as exc:
            notice = exc.message
    kb_query = request.args.get("kb_q", "").strip()
    return _render(
        user,
        item,
        draft=draft,
        internal=internal,
        notice=notice,
        kb_query=kb_query,
        kb_results=kb_staff.reply_results(user, kb_query, internal_reply=internal),
        macro_preview=preview,
    )


def _render(
    user: User,
    item: Ticket,
    *,
    status: int = 200,
    draft: str = "",
    internal: bool = False,
    notice: str | None = None,
    reply_error: str | None = None,
    fields: dict[str, Any] | None = None,
    field_errors: dict[str, Any] | None = None,
    kb_query: str = "",
    kb_results: list[dict[str, Any]] | None = None,
    follower_form: dict[str, str] | None = None,
    follower_errors: dict[str, Any] | None = None,
    link_form: dict[str, str] | None = None,
    link_errors: dict[str, Any] | None = None,
    macro_preview: applying.Preview | None = None,
) -> tuple[str, int]:
    shared = _Shared.read(user, item)
    team_list = shared.teams
    messages = representation.render_messages(_all_messages(user, item.id), shared.people)
    view = representation.ticket_view(item, "staff")
    transitions = representation.allowed_for(view, user.role.value, user.id)
    state_labels = engine_for(item).state_labels
    html = render_template(
        "agent/ticket.html",
        user=user,
        ticket=item,
        messages=messages,
        people=shared.names(item),
        teams=sorted(team_list, key=lambda t: t.name.lower()),
        staff=shared.assignable_staff(),
        priorities=[p.label for p in Priority],
        view=representation.schema_for("staff")().dump(view),
        original_email_id=receive.first_email_of(item) if item.channel == "email" else None,
        transitions=transitions,
        state_labels=state_labels,
        reply_moves=reply_moves(transitions, state_labels, item.status),
        clocks=[
            {**c, "label": METRIC_LABELS.get(c["metric"], c["metric"])} for c in view["sla_clocks"]
        ],
        metric_labels=METRIC_LABELS,
        team_names={t.id: t.name for t in team_list},
        trail=_trail(user, item),
        macros=macros.list_macros(user),
        preview=macro_preview,
        draft=draft,
        internal=internal,
        notice=notice,
        reply_error=reply_error,
        fields=fields or _current_fields(item),
        tag_suggestions=ticket_tags.tags_in_use(user, "", ticket_tags.MAX_SUGGESTIONS),
        field_errors=field_errors or {},
        kb_query=kb_query,
        kb_results=kb_results or [],
        requester_tickets=tickets.other_tickets_of_requester(user, item),
        followers=followers.follower_views(user, item.id),
        follower_form=follower_form or {"user_id": "", "email": "", "name": ""},
        follower_errors=follower_errors or {},
        linked=links.list_linked(user, item.id, view.get("linked_ticket_ids")),
        link_form=link_form or {"linked_id": "", "into": ""},
        link_errors=link_errors or {},
    )
    return html, status


def reply_moves(
    transitions: list[dict[str, Any]], state_labels: dict[str, str], status: str
) -> list[dict[str, str]]:
    """The reply box's "Send and set <state>" choices: one per state the viewer's transitions
    lead to from here (the first transition to it), named by that state, whatever the workflow
    calls its transitions. workspace.js redraws them the same way."""
    moves: dict[str, dict[str, str]] = {}
    for transition in transitions:
        target = transition["to"]
        if target != status and target not in moves:
            label = state_labels.get(target, target)
            moves[target] = {"name": transition["name"], "to": target, "label": label}
    return list(moves.values())


def _all_messages(user: User, ticket_id: int) -> list[Any]:
    messages: list[Any] = []
    after = None
    for _ in range(MESSAGE_PAGES):
        page, more = conversation.list_messages(
            user, ticket_id, after=after, limit=conversation.MAX_MESSAGES_PAGE
        )
        messages.extend(page)
        if not more:
            break
        after = page[-1].id
    return messages


def _current_fields(item: Ticket) -> dict[str, Any]:
    return {
        "priority": Priority(item.priority).label,
        "team_id": item.team_id,
        "assignee_id": item.assignee_id,
        "tags": ", ".join(item.tags),
        "version": item.version,
    }


@dataclass(frozen=True)
class _Shared:
    """What several panels name alike, read once for the page: the staff and the requester
    (authors, presence, the assignee and follower choices) and the teams. Holding them also
    keeps them in the session, where the ticket's view and the trail find their names
    (``held_values``) instead of reading them again."""

    people: dict[int, User]  # every agent and admin, active or not, and the requester, by name
    teams: list[Team]

    @classmethod
    def read(cls, user: User, item: Ticket) -> _Shared:
        return cls(
            people={p.id: p for p in users.staff_and([item.requester_id])},
            teams=teams.list_teams(user, PageRequest(limit=200, sort="id")).items,
        )

    def names(self, item: Ticket) -> dict[int, str]:
        """Names for message authors, presence and the trail: staff and the requester."""
        return {
            p.id: p.name
            for p in self.people.values()
            if p.role is not Role.CUSTOMER or p.id == item.requester_id
        }

    def assignable_staff(self) -> list[dict[str, Any]]:
        """Active staff, by name, with the teams they are in (the service checks the
        ticket's team)."""
        team_names = {t.id: t.name for t in self.teams}
        return [
            {
                "id": person.id,
                "name": person.name,
                "teams": ", ".join(team_names[i] for i in person.team_ids if i in team_names),
            }
            for person in self.people.values()
            if person.role is not Role.CUSTOMER and person.active
        ]


def _trail(user: User, item: Ticket) -> list[dict[str, Any]]:
    """The history panel, newest first, in the words of ``autocrm.tickets.history`` (which the
    REST trail and the live ``trail`` events carry too); nothing is said twice."""
    entries = representation.trail_views(tickets.list_events(user, item.id))
    return [
        {
            "id": entry["id"],
            "when": entry["created_at"],
            "summary": entry["summary"],
            "why": entry["why"],
            "automated": entry["actor_id"] is None,
        }
        for entry in reversed(entries)
        if entry["summary"] is not None
    ]


# -- conversation ------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


@bp.get("/tickets/<int:ticket_id>/messages.json")
@login_required(staff=True)
def messages_json(user: User, ticket_id: int) -> Response | tuple[Response, int]:
    """What a client missed: messages after ``after`` (a message id), oldest first."""
    after = request.args.get("after", type=int)
    try:
        items, more = conversation.list_messages(user, ticket_id, after=after, limit=200)
    except DomainError as exc:
        return jsonify({"ok": False, "error": exc.message}), exc.status_code
    return jsonify({"items": representation.render_messages(items), "has_more": more})


@bp.post("/tickets/<int:ticket_id>/messages")
@accepts_uploads
@login_required(staff=True)
def add_message(user: User, ticket_id: int) -> Any:
    """The reply box without a socket or with files: a form POST, or JSON from the page's
    script."""
    data: Any = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(data, "get"):
        data = {}
    body = str(data.get("body") or "")
    internal = data.get("visibility") == "internal" or data.get("internal") is True
    # "Send and set <state>": the button's transition, fired in the reply's transaction.
    move = str(data.get("transition") or "") or None
    try:
        tickets.access_ticket_by_id(user, ticket_id)  # an unknown ticket stores no files
        conversation.check_message(body)  # nor does a blank reply
        ids = [] if request.is_json else upload_form_files(user)
        message = conversation.do_add_message(
            user, ticket_id, body, internal=internal, attachment_ids=ids, transition=move
        )
    except DomainError as exc:
        error = " ".join(file_errors(exc.errors)) or exc.message
        if move and "transition" in exc.errors:  # the workflow refused the move: nothing was sent
            error = f"Not sent: {exc.message} Your text is kept; send it again."
        if _wants_json():
            return jsonify({"ok": False, "error": error, "errors": exc.errors}), exc.status_code
        if isinstance(exc, NotFound):
            raise
        item = tickets.access_ticket_by_id(user, ticket_id)
        return _render(
            user, item, status=exc.status_code, draft=body, internal=internal, reply_error=error
        )
    if _wants_json():
        return jsonify({"ok": True, "message": representation.render_message(message)}), 201
    sent = "Internal note added" if internal else "Reply sent"
    flash(f"{sent} and status set." if move else f"{sent}.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id, _anchor=f"message-{message.id}"))


# -- workflow and fields -----------------------------------------------------------------------


def _version_from_form() -> int | None:
    return parse_id(request.form.get("version"))


@bp.post("/tickets/<int:ticket_id>/transition")
@login_required(staff=True)
def transition(user: User, ticket_id: int) -> Any:
    name = request.form.get("name", "")
    version = _version_from_form()
    try:
        if version is None:
            raise InvalidInput("The form is missing the ticket's version; reload the page.")
        tickets.do_transition(user, ticket_id, name, version)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        item = tickets.access_ticket_by_id(user, ticket_id)
        return _render(user, item, status=exc.status_code, notice=_conflict_text(exc))
    flash("Status updated.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id))


def _conflict_text(exc: DomainError) -> str:
    """A stale version or a lost race reads as "changed by someone else"; a transition that is
    not allowed (also 409) keeps its own message."""
    if isinstance(exc, Conflict) and "allowed_transitions" not in exc.extra:
        return CONFLICT_MESSAGE
    return exc.message


@bp.post("/tickets/<int:ticket_id>/fields")
@login_required(staff=True)
def update_fields(user: User, ticket_id: int) -> Any:
    """The details form: posted by its Save button, or as JSON by workspace.js as soon as a
    field changes (then the answer is JSON: the ticket as it is now, or the refusal)."""
    item = tickets.access_ticket_by_id(user, ticket_id)
    data: Any = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(data, "get"):
        data = {}
    submitted = {
        "priority": str(data.get("priority") or ""),
        "team_id": _optional_int(_text(data.get("team_id"))),
        "assignee_id": _optional_int(_text(data.get("assignee_id"))),
        "tags": str(data.get("tags") or ""),
        "version": parse_id(_text(data.get("version"))),
    }
    try:
        changes = _field_changes(item, submitted)
        if submitted["version"] is None:
            raise InvalidInput("The form is missing the ticket's version; reload the page.")
        if changes:
            tickets.do_update_ticket(user, ticket_id, changes, submitted["version"])
    except DomainError as exc:
        if _wants_json():
            body = {"ok": False, "error": _conflict_text(exc), "errors": exc.errors}
            return jsonify(body), exc.status_code
        if isinstance(exc, NotFound):
            raise
        item = tickets.access_ticket_by_id(user, ticket_id)
        # The user's values stay in the form; the version becomes the current one, so that
        # submitting again is a conscious choice over what the other person did.
        kept = {**submitted, "version": item.version}
        return _render(
            user,
            item,
            status=exc.status_code,
            notice=_conflict_text(exc),
            fields=kept,
            field_errors=exc.errors,
        )
    if _wants_json():
        item = tickets.access_ticket_by_id(user, ticket_id)
        view = representation.render_tickets([item], "staff")[0]
        return jsonify({"ok": True, "changed": bool(changes), "ticket": view})
    flash("Ticket updated." if changes else "Nothing to change.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id))


def _text(value: Any) -> str | None:
    """A form value, or a JSON one (a number, null) as the form would have sent it."""
    return None if value is None else str(value)


@bp.post("/tickets/<int:ticket_id>/followers")
@login_required(staff=True)
def add_follower(user: User, ticket_id: int) -> Any:
    """Add a follower: a staff member picked from the list, or anyone by email."""
    form = {key: request.form.get(key, "") for key in ("user_id", "email", "name")}
    try:
        picked = parse_id(form["user_id"]) if form["user_id"] else None
        if form["user_id"] and picked is None:
            raise InvalidInput("Unknown user.", {"user_id": ["Choose someone from the list."]})
        added = followers.do_add_follower(
            user,
            ticket_id,
            user_id=picked,
            email=None if picked else form["email"],
            name=form["name"],
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        item = tickets.access_ticket_by_id(user, ticket_id)
        errors = exc.errors or {"email": [exc.message]}
        return _render(
            user, item, status=exc.status_code, follower_form=form, follower_errors=errors
        )
    flash(f"{added.name} now follows this ticket.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id, _anchor="ws-followers"))


@bp.post("/tickets/<int:ticket_id>/followers/<int:user_id>/remove")
@login_required(staff=True)
def remove_follower(user: User, ticket_id: int, user_id: int) -> Any:
    try:
        followers.do_remove_follower(user, ticket_id, user_id)
    except DomainError as exc:
        tickets.access_ticket_by_id(user, ticket_id)  # an unknown ticket: the 404 page
        flash(exc.message, "error")
    else:
        flash("Follower removed.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id, _anchor="ws-followers"))


# -- links and merging -------------------------------------------------------------------------


def _ticket_number(form: dict[str, str], field: str) -> int:
    """The ticket number typed in ``field`` ("123" or "#123"): InvalidInput naming it otherwise."""
    number = parse_id(form[field].strip().removeprefix("#"))
    if number is None:
        raise InvalidInput("Give a ticket number.", {field: ["Give a ticket number, like 123."]})
    return number


def _links_refused(
    user: User, ticket_id: int, exc: DomainError, form: dict[str, str], field: str
) -> tuple[str, int]:
    """The workspace again with the refusal shown at the form's field."""
    item = tickets.access_ticket_by_id(user, ticket_id)  # an unknown ticket: the 404 page
    errors = exc.errors if exc.errors and field in exc.errors else {field: [exc.message]}
    return _render(user, item, status=exc.status_code, link_form=form, link_errors=errors)


@bp.post("/tickets/<int:ticket_id>/links")
@login_required(staff=True)
def add_link(user: User, ticket_id: int) -> Any:
    form = {"linked_id": request.form.get("linked_id", ""), "into": ""}
    try:
        other = links.do_link(user, ticket_id, _ticket_number(form, "linked_id"))
    except DomainError as exc:
        return _links_refused(user, ticket_id, exc, form, "linked_id")
    flash(f"Linked to #{other.id}.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id, _anchor="ws-links"))


@bp.post("/tickets/<int:ticket_id>/links/<int:other_id>/remove")
@login_required(staff=True)
def remove_link(user: User, ticket_id: int, other_id: int) -> Any:
    try:
        links.do_unlink(user, ticket_id, other_id)
    except DomainError as exc:
        tickets.access_ticket_by_id(user, ticket_id)  # an unknown ticket: the 404 page
        flash(exc.message, "error")
    else:
        flash(f"Unlinked #{other_id}.", "success")
    return redirect(url_for(".ticket", ticket_id=ticket_id, _anchor="ws-links"))


@bp.post("/tickets/<int:ticket_id>/merge")
@login_required(staff=True)
def merge(user: User, ticket_id: int) -> Any:
    form = {"linked_id": "", "into": request.form.get("into", "")}
    try:
        target = merging.do_merge(user, ticket_id, _ticket_number(form, "into"))
    except DomainError as exc:
        return _links_refused(user, ticket_id, exc, form, "into")
    flash(f"Merged #{ticket_id} into this ticket.", "success")
    return redirect(url_for(".ticket", ticket_id=target.id))


def _optional_int(raw: str | None) -> int | str | None:
    if raw is None or raw == "":
        return None
    parsed = parse_id(raw)
    return raw if parsed is None else parsed  # a string is reported as invalid by _field_changes


def _field_changes(item: Ticket, submitted: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the ticket, so moving teams can drop a foreign assignee."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    try:
        priority = Priority.from_label(submitted["priority"])
    except KeyError:
        errors["priority"] = ["Choose a priority."]
    else:
        if priority != item.priority:
            changes["priority"] = priority
    for name in ("team_id", "assignee_id"):
        value = submitted[name]
        if isinstance(value, str):
            errors[name] = ["Choose from the list."]
        elif value != getattr(item, name):
            changes[name] = value
    tags = [t for t in submitted["tags"].replace(",", " ").split() if t]
    if tickets.normalize_tags(tags) != list(item.tags):
        changes["tags"] = tags
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return changes


# -- tags ------------------------------------------------------------------------------------


@bp.get("/tags.json")
@login_required(staff=True)
def tags_json(user: User) -> tuple[Response, int]:
    """Tags in use starting with ``q`` (the details form's autocomplete; as ``GET /api/tags``)."""
    try:
        found = ticket_tags.tags_in_use(user, request.args.get("q", ""))
    except DomainError as exc:
        return jsonify({"ok": False, "error": exc.message, "errors": exc.errors}), exc.status_code
    return jsonify({"ok": True, "items": found}), 200


# -- knowledge base ----------------------------------------------------------------------------


@bp.get("/tickets/<int:ticket_id>/articles.json")
@login_required(staff=True)
def kb_search(user: User, ticket_id: int) -> tuple[Response, int]:
    """Articles matching ``q`` with snippets, and for each the Markdown link to insert into a
    ``reply`` (``public``, the default, or ``internal``): none for an internal article in a
    public reply, since its reader could not open it."""
    reply = request.args.get("reply", "public")
    try:
        tickets.access_ticket_by_id(user, ticket_id)
        if reply not in {"public", "internal"}:
            raise InvalidInput("reply: public or internal.", {"reply": ["public or internal"]})
    except DomainError as exc:
        return jsonify({"ok": False, "error": exc.message}), exc.status_code
    q = request.args.get("q", "")
    items = kb_staff.reply_results(user, q, internal_reply=reply == "internal")
    return jsonify({"ok": True, "items": items}), 200


@bp.get("/tickets/<int:ticket_id>/mentionable.json")
@login_required(staff=True)
def mentionable(user: User, ticket_id: int) -> tuple[Response, int]:
    """The reply box's @mention suggestions: colleagues who may see the ticket matching ``q``,
    each with the text that mentions them (``autocrm.tickets.mentions``)."""
    try:
        people = conversation.list_mentionable(user, ticket_id, request.args.get("q", ""))
    except DomainError as exc:
        return jsonify({"ok": False, "error": exc.message}), exc.status_code
    items = [
        {"id": p.id, "name": p.name, "email": p.email, "mention": mentions.syntax(p)}
        for p in people
    ]
    return jsonify({"ok": True, "items": items}), 200


# -- the original of an email message ----------------------------------------------------------


@bp.get("/emails/<int:inbound_id>")
@login_required(staff=True)
def email_original(user: User, inbound_id: int) -> str:
    """The full email a message came from: its quoted history and signature were trimmed."""
    inbound = receive.access_original(user, inbound_id)
    parsed = receive.read_parsed(inbound)
    return render_template("agent/email_original.html", user=user, inbound=inbound, parsed=parsed)


@bp.get("/emails/<int:inbound_id>/raw")
@login_required(staff=True)
def email_raw(user: User, inbound_id: int) -> Response:
    return serving.send_original(receive.access_original(user, inbound_id))
