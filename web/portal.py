"""The customer portal: their tickets, opening one, a ticket's live conversation, profile.

Views are thin: read the form, call one service, render. A form the user can get wrong is
re-rendered with the message next to the field and what they typed kept (422), never a 500.
The ticket page is live through Socket.IO (``static/js/portal.js``); ``messages.json`` is what
it fetches to catch up after a reconnect, so nothing is lost while the socket was down.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm import policies
from autocrm.engine.versions import engine_for_version
from autocrm.errors import DomainError
from autocrm.fields import forms
from autocrm.notifications import preferences as notification_settings
from autocrm.people import users
from autocrm.people.models import User
from autocrm.requestguard import accepts_uploads
from autocrm.tickets import conversation, followers, priority_cap, representation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority
from web import custom_fields
from web.attachments import file_errors, upload_form_files
from web.forms import new_password_errors, parse_id, parse_rating
from web.logins import session_rows
from web.portal_tickets import STATUS_LABELS, my_tickets
from web.session import log_in, login_required
from workflows.definition import DONE_CATEGORIES

bp = Blueprint("portal", __name__, url_prefix="/portal")

MAX_SUBJECT = 200
MAX_DESCRIPTION = 50_000
MAX_COMMENT = 5000
RATINGS = ((5, "Excellent"), (4, "Good"), (3, "Okay"), (2, "Poor"), (1, "Very poor"))
# The kinds of notification a customer receives (the others go to staff only).
CUSTOMER_NOTIFICATION_KINDS = {
    "public_reply": "Someone from support replies to my ticket",
    "status_changed": "The status of my ticket changes",
    "feedback_request": "You ask me to rate the help I got",
}
TRANSITION_LABELS = {"solve": "Mark as solved", "reopen": "Reopen"}

Errors = dict[str, list[str]]


# -- helpers -----------------------------------------------------------------------------------


def _status_labels(version_ids: set[int]) -> dict[str, str]:
    """Human names of workflow states ("pending" -> "Waiting on customer")."""
    labels: dict[str, str] = {}
    for version_id in sorted(version_ids):
        labels = {**engine_for_version(version_id).state_labels, **labels}
    return labels


def _field_errors(exc: DomainError) -> Errors:
    errors = {name: [str(m) for m in messages] for name, messages in exc.errors.items()}
    if about_files := file_errors(errors):
        return {"files": about_files}
    return errors or {"form": [exc.message]}


def _timeline(user: User, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The status history as the page first draws it (``portal.js`` adds to it from ``trail``
    events, with the same words)."""
    items = []
    for entry in entries:
        if entry["actor_id"] is None:
            who = "automatically"
        elif entry["actor_id"] == user.id:
            who = "by you"
        else:
            who = f"by {entry['actor_name']}" if entry["actor_name"] else ""
        state = entry["to_state_label"] or ""
        text = "Ticket opened" if entry["kind"] == "ticket.created" else f"Status set to {state}"
        items.append({"id": entry["id"], "text": text, "who": who, "at": entry["created_at"]})
    return items


# -- dashboard ---------------------------------------------------------------------------------


@bp.get("/")
@login_required(staff=False)
def dashboard(user: User) -> tuple[str, int]:
    query = my_tickets(user, request.args)
    page = render_template(
        "portal/dashboard.html",
        user=user,
        query=query,
        status_choices=STATUS_LABELS,
        status_labels=_status_labels({t.workflow_version_id for t in query.rows}),
    )
    return page, 422 if query.errors else 200


# -- opening a ticket --------------------------------------------------------------------------


def _priority_choices(user: User) -> dict[str, str]:
    """The priorities the form offers: only those the admin lets customers choose."""
    return {p.label: p.label.capitalize() for p in priority_cap.allowed_priorities(user)}


def _check_new_ticket(subject: str, description: str, priority: str) -> Errors:
    errors: Errors = {}
    if not subject.strip():
        errors["subject"] = ["Please give your ticket a subject."]
    elif len(subject.strip()) > MAX_SUBJECT:
        errors["subject"] = [f"Please keep the subject to {MAX_SUBJECT} characters or fewer."]
    if not description.strip():
        errors["description"] = ["Please describe what you need help with."]
    elif len(description) > MAX_DESCRIPTION:
        errors["description"] = [f"Please keep it under {MAX_DESCRIPTION} characters."]
    if priority not in {p.label for p in Priority}:
        errors["priority"] = ["Please choose one of the listed priorities."]
    return errors


@bp.route("/tickets/new", methods=["GET", "POST"])
@accepts_uploads
@login_required(staff=False)
def new_ticket(user: User) -> Response | tuple[str, int]:
    """First the request forms to pick from (when there are any), then the ticket's form,
    asking the chosen form's fields (``web.custom_fields``)."""
    form = {
        "subject": request.form.get("subject", ""),
        "description": request.form.get("description", ""),
        "priority": request.form.get("priority", Priority.NORMAL.label),
    }
    choice = custom_fields.choose_form(user)
    asked = forms.asked_fields(user, choice.chosen) if choice.chosen else None
    errors: Errors = {"form": [choice.error]} if choice.error else {}
    if request.method == "POST" and not errors:
        errors = _check_new_ticket(**form)
        sent = (
            custom_fields.asked_form_values(asked)
            if asked is not None
            else custom_fields.form_values(user, editable_only=True)
        )
        try:
            if errors:  # the fields' own errors shown with the others, nothing saved
                forms.check_form_values(user, choice.chosen, sent)
            else:
                ticket = tickets.do_create_ticket(
                    user,
                    subject=form["subject"],
                    description=form["description"],
                    priority=Priority.from_label(form["priority"]),
                    channel="web",
                    attachment_ids=upload_form_files(user),
                    fields=sent,
                    form=choice.chosen.id if choice.chosen else None,
                )
        except DomainError as exc:
            errors = {**errors, **_field_errors(exc)}
        if not errors:
            flash("Your ticket has been sent. We will get back to you here.", "success")
            return redirect(url_for("portal.ticket", ticket_id=ticket.id))
    html = render_template(
        "portal/new_ticket.html",
        user=user,
        form=form,
        errors=errors,
        priorities=tuple(_priority_choices(user).items()),
        choice=choice,
        picking=request.method == "GET" and (choice.must_pick or bool(choice.error)),
        asked_rows=custom_fields.asked_rows(asked) if asked is not None else None,
    )
    return html, 422 if errors else 200


# -- one ticket --------------------------------------------------------------------------------


def _ticket_page(user: User, ticket_id: int, status: int = 200, **context: Any) -> tuple[str, int]:
    ticket = tickets.access_ticket_by_id(user, ticket_id)
    labels = _status_labels({ticket.workflow_version_id})
    messages, more = conversation.list_messages(user, ticket.id, limit=200)
    view = representation.render_ticket(ticket, "customer")
    trail = representation.render_trail(tickets.list_events(user, ticket.id))
    context.setdefault("reply", "")
    context.setdefault("errors", {})
    context.setdefault("rating", None)
    context.setdefault("comment", "")
    context.setdefault("follower_form", {"email": "", "name": ""})
    html = render_template(
        "portal/ticket.html",
        user=user,
        ticket=ticket,
        status_label=view["status_label"],
        view=view,
        messages=representation.render_messages(messages),
        more_messages=more,
        timeline=_timeline(user, trail),
        transitions=[
            (t["name"], TRANSITION_LABELS.get(t["name"], t["label"]))
            for t in representation.allowed_for(view, "customer", user.id)
        ],
        transition_labels=TRANSITION_LABELS,
        closed=ticket.category == "closed",
        done=ticket.category in DONE_CATEGORIES,
        feedback=conversation.feedback_for(user, ticket.id),
        ratings=RATINGS,
        status_labels=labels,
        followers=followers.follower_views(user, ticket.id),
        may_rate=policies.can_give_feedback(user, ticket),
        **context,
    )
    return html, status


@bp.get("/tickets/<int:ticket_id>")
@login_required(staff=False)
def ticket(user: User, ticket_id: int) -> tuple[str, int]:
    return _ticket_page(user, ticket_id)


@bp.get("/tickets/<int:ticket_id>/messages.json")
@login_required(staff=False)
def messages_json(user: User, ticket_id: int) -> Response | tuple[Response, int]:
    """What a reconnecting page missed: public messages after ``after`` (a message id)."""
    raw_after = request.args.get("after", "0")
    after = 0 if raw_after == "0" else parse_id(raw_after)
    if after is None:
        return jsonify({"error": "after must be a message id."}), 400
    messages, more = conversation.list_messages(user, ticket_id, after=after, limit=100)
    return jsonify({"items": representation.render_messages(messages), "has_more": more})


@bp.post("/tickets/<int:ticket_id>/messages")
@accepts_uploads
@login_required(staff=False)
def send_message(user: User, ticket_id: int) -> Response | tuple[Any, int]:
    """The reply form without JavaScript or with files, and the page's fallback while the
    socket is down (JSON in, JSON out)."""
    wants_json = request.is_json
    if wants_json:
        body = str((request.get_json(silent=True) or {}).get("body", ""))
    else:
        body = request.form.get("body", "")
    try:
        tickets.access_ticket_by_id(user, ticket_id)  # an unknown ticket stores no files
        conversation.check_message(body)  # nor does a blank reply
        ids = [] if wants_json else upload_form_files(user)
        message = conversation.do_add_message(user, ticket_id, body, attachment_ids=ids)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        if wants_json:
            return jsonify({"ok": False, "error": exc.message, "errors": exc.errors}), 422
        errors = _field_errors(exc)
        if "files" not in errors:
            errors = {"body": [exc.message]}
        return _ticket_page(user, ticket_id, 422, reply=body, errors=errors)
    if wants_json:
        return jsonify({"ok": True, "message": representation.render_message(message)}), 201
    return redirect(url_for("portal.ticket", ticket_id=ticket_id, _anchor="reply"))


@bp.post("/tickets/<int:ticket_id>/transition")
@login_required(staff=False)
def transition(user: User, ticket_id: int) -> Response:
    name = request.form.get("name", "")
    raw_version = request.form.get("version", "")
    version = parse_id(raw_version)
    try:
        ticket = tickets.do_transition(user, ticket_id, name, expected_version=version)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        message = exc.message
        if exc.status_code == 409:
            message = "The ticket changed in the meantime; here is its current state."
        flash(message, "error")
    else:
        done = ticket.category in DONE_CATEGORIES
        flash("Marked as solved. Thank you!" if done else "The ticket is open again.", "success")
    return redirect(url_for("portal.ticket", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/feedback")
@login_required(staff=False)
def feedback(user: User, ticket_id: int) -> Response | tuple[str, int]:
    raw_comment = request.form.get("comment", "")
    rating = parse_rating(request.form.get("rating"))
    kept = {"rating": rating, "comment": raw_comment}
    if rating is None:
        errors = {"rating": ["Please choose a rating from 1 to 5."]}
        return _ticket_page(user, ticket_id, 422, errors=errors, **kept)
    if len(raw_comment) > MAX_COMMENT:
        errors = {"comment": [f"Please keep the comment under {MAX_COMMENT} characters."]}
        return _ticket_page(user, ticket_id, 422, errors=errors, **kept)
    try:
        conversation.do_give_feedback(user, ticket_id, rating, raw_comment)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return _ticket_page(
            user, ticket_id, exc.status_code, errors={"feedback": [exc.message]}, **kept
        )
    flash("Thank you for your feedback!", "success")
    return redirect(url_for("portal.ticket", ticket_id=ticket_id, _anchor="feedback"))


@bp.post("/tickets/<int:ticket_id>/followers")
@login_required(staff=False)
def add_follower(user: User, ticket_id: int) -> Response | tuple[str, int]:
    """Add a colleague by email: they see the ticket and hear of it as you do."""
    form = {"email": request.form.get("email", ""), "name": request.form.get("name", "")}
    try:
        added = followers.do_add_follower(user, ticket_id, email=form["email"], name=form["name"])
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        errors = {f"follower_{name}": messages for name, messages in exc.errors.items()}
        return _ticket_page(
            user,
            ticket_id,
            exc.status_code,
            errors=errors or {"follower_email": [exc.message]},
            follower_form=form,
        )
    flash(f"{added.name} now follows this ticket.", "success")
    return redirect(url_for("portal.ticket", ticket_id=ticket_id, _anchor="followers"))


@bp.post("/tickets/<int:ticket_id>/unfollow")
@login_required(staff=False)
def unfollow(user: User, ticket_id: int) -> Response:
    """Stop following a ticket: it leaves the list of tickets you see."""
    try:
        followers.do_remove_follower(user, ticket_id, user.id)
    except DomainError as exc:
        tickets.access_ticket_by_id(user, ticket_id)  # an unknown ticket: the 404 page
        flash(exc.message, "error")
        return redirect(url_for("portal.ticket", ticket_id=ticket_id))
    flash(f"You no longer follow ticket #{ticket_id}.", "success")
    return redirect(url_for("portal.dashboard"))


# -- profile -----------------------------------------------------------------------------------


def _profile_page(user: User, status: int = 200, **context: Any) -> tuple[str, int]:
    context.setdefault("errors", {})
    context.setdefault("prefs", notification_settings.email_preferences(user))
    context.setdefault("sessions", session_rows(user))
    html = render_template(
        "portal/profile.html", user=user, kinds=CUSTOMER_NOTIFICATION_KINDS, **context
    )
    return html, status


@bp.get("/profile")
@login_required(staff=False)
def profile(user: User) -> tuple[str, int]:
    return _profile_page(user)


@bp.post("/profile/notifications")
@login_required(staff=False)
def save_notifications(user: User) -> Response:
    chosen = set(request.form.getlist("email"))
    # Only the kinds the form shows: a staff-only kind keeps whatever it was.
    notification_settings.do_set_email_preferences(
        user, {kind: kind in chosen for kind in CUSTOMER_NOTIFICATION_KINDS}
    )
    flash("Your email settings are saved.", "success")
    return redirect(url_for("portal.profile"))


@bp.post("/profile/password")
@login_required(staff=False)
def change_password(user: User) -> Response | tuple[str, int]:
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    confirm = request.form.get("confirm_password", "")
    errors: Errors = dict(new_password_errors(new, confirm))
    if not current:
        errors["current_password"] = ["Please enter your current password."]
    if not errors:
        try:
            users.do_change_own_password(user, current, new)
        except DomainError as exc:
            errors = _field_errors(exc)
            if "password" in errors:  # check_password names the API's field
                errors["new_password"] = errors.pop("password")
    if errors:
        return _profile_page(user, 422, errors=errors)
    log_in(user, via=None)  # the session carried the old password's fingerprint
    flash("Your password has been changed.", "success")
    return redirect(url_for("portal.profile"))
