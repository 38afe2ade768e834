"""Admin console: users (list, search, create, role, deactivate, reset password, reset
two-factor login; whether staff must use two-factor login) and teams (members, lead,
assignment policy, business-hours calendar).

Every form posts to its own URL and either redirects (success) or re-renders its page with the
input kept and each error next to its field. A generated password is shown once, on the page
answering the form that made it (never in a redirect or a flash message, which would keep it in
the session cookie). The services check admin rights again and record the audit log.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm.automation import assignment
from autocrm.errors import DomainError, InvalidInput, NotFound
from autocrm.listing import PageRequest
from autocrm.people import intake, sessions, teams, twofactor, users
from autocrm.people.models import AssignmentPolicy, Role, Team, User
from autocrm.tickets import priority_cap
from autocrm.tickets.models import Priority
from web.forms import form_errors, parse_id
from web.session import admin_required, log_in
from workflows.calendar import WEEKDAYS

bp = Blueprint("admin_people", __name__, url_prefix="/admin")

PAGE_SIZE = 25
ROLE_LABELS = {Role.AGENT: "Agent", Role.ADMIN: "Admin", Role.CUSTOMER: "Customer"}
STATUS_FILTERS = {"active": True, "deactivated": False}
POLICY_LABELS = {
    AssignmentPolicy.ROUND_ROBIN: "Round robin",
    AssignmentPolicy.LEAST_OPEN: "Fewest open tickets",
    AssignmentPolicy.MANUAL: "Manual (no automatic assignment)",
}
WEEKDAY_LABELS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_INTERVAL = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-\u2013]\s*(\d{1,2}:\d{2})\s*$")
_ALL_TEAMS_PAGE = PageRequest(limit=200, sort="id")


def _refused_change_errors(exc: DomainError) -> dict[str, Any]:
    """The errors of a change to a user or team, for its page shown again with the input kept;
    a missing user, team or member is the 404 page instead."""
    if isinstance(exc, NotFound):
        raise exc
    return form_errors(exc)


def _no_store(html: str, status: int = 200) -> Response:
    """A page showing a password: browsers and proxies must not keep it."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@admin_required
def index(user: User) -> Response:
    return redirect(url_for("admin_people.users"))


# -- users -------------------------------------------------------------------------------------


@bp.get("/users", endpoint="users")
@admin_required
def users_page(user: User) -> tuple[str, int]:
    values = {key: request.args.get(key, "").strip() for key in ("q", "role", "status", "cursor")}
    errors: dict[str, list[str]] = {}
    role = None
    if values["role"]:
        try:
            role = Role(values["role"])
        except ValueError:
            errors["role"] = ["Choose a role from the list."]
    if values["status"] and values["status"] not in STATUS_FILTERS:
        errors["status"] = ["Choose a status from the list."]
    if len(values["q"]) > 200:
        errors["q"] = ["Use at most 200 characters."]
    listing = None
    if not errors:
        page = PageRequest(limit=PAGE_SIZE, cursor=values["cursor"] or None, sort="-id")
        try:
            listing = users.list_users(
                user,
                page,
                role=role,
                q=values["q"] or None,
                active=STATUS_FILTERS.get(values["status"]),
            )
        except InvalidInput as exc:
            errors = exc.errors
    html = render_template(
        "admin/users.html",
        user=user,
        values=values,
        errors=errors,
        listing=listing,
        role_labels=ROLE_LABELS,
        team_names=_team_names(user),
        more_args={k: v for k, v in values.items() if v and k != "cursor"},
        staff_two_factor_required=twofactor.staff_required(),
        signup=intake.signup_policy(),
        customer_max_priority=priority_cap.customer_max_priority(),
        priority_choices=list(Priority),
    )
    return html, 422 if errors else 200


@bp.post("/users/signup-policy")
@admin_required
def signup_policy(user: User) -> Response:
    """Who may sign up on their own: anyone, addresses in some domains, or no one."""
    try:
        intake.do_set_signup_policy(
            user, request.form.get("mode", ""), request.form.get("domains", "")
        )
    except DomainError as exc:
        problems = [m for messages in exc.errors.values() for m in messages] or [exc.message]
        flash("The sign-up policy was not changed: " + " ".join(problems), "error")
    else:
        flash("The sign-up policy is saved.", "success")
    return redirect(url_for(".users", _anchor="signup-policy"), code=303)


@bp.post("/users/priority-policy")
@admin_required
def priority_policy(user: User) -> Response:
    """How high customers may set a ticket's priority (default: up to High)."""
    try:
        cap = priority_cap.do_set_customer_max_priority(user, request.form.get("max_priority", ""))
    except DomainError as exc:
        problems = [m for messages in exc.errors.values() for m in messages] or [exc.message]
        flash("The customer priority was not changed: " + " ".join(problems), "error")
    else:
        flash(f"Customers may now choose priorities up to {cap.label.capitalize()}.", "success")
    return redirect(url_for(".users", _anchor="priority-policy"), code=303)


@bp.post("/users/two-factor-policy")
@admin_required
def two_factor_policy(user: User) -> Response:
    """Require two-factor login for staff, or stop requiring it."""
    required = request.form.get("required") == "on"
    try:
        logged_out = twofactor.do_set_staff_required(user, required)
    except DomainError as exc:
        flash(" ".join(exc.errors.get("required", [exc.message])), "error")
        return redirect(url_for(".users", _anchor="two-factor-policy"), code=303)
    if required:
        flash(
            f"Staff now need two-factor login. {logged_out} "
            f"{'person was' if logged_out == 1 else 'people were'} logged out to set it up.",
            "success",
        )
    else:
        flash("Staff may now log in without two-factor login.", "success")
    return redirect(url_for(".users"), code=303)


def _team_names(user: User) -> dict[int, str]:
    return {t.id: t.name for t in teams.list_teams(user, _ALL_TEAMS_PAGE).items}


def _sorted_teams(user: User) -> list[Team]:
    return sorted(teams.list_teams(user, _ALL_TEAMS_PAGE).items, key=lambda t: t.name.lower())


def _new_user_form() -> dict[str, Any]:
    return {
        "name": request.form.get("name", "").strip(),
        "email": request.form.get("email", "").strip(),
        "role": request.form.get("role", ""),
        "team_id": request.form.get("team_id", ""),
        "password": request.form.get("password", ""),
        "generate": request.form.get("generate") == "on",
    }


def _render_new_user(
    user: User, form: dict[str, Any], errors: dict[str, Any], status: int = 200
) -> tuple[str, int]:
    html = render_template(
        "admin/users_new.html",
        user=user,
        form={**form, "password": ""},  # never echo a password back into the page
        errors=errors,
        role_labels=ROLE_LABELS,
        teams=_sorted_teams(user),
        min_password=users.MIN_PASSWORD_LENGTH,
    )
    return html, status


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new(user: User) -> Any:
    if request.method == "GET":
        form = {"name": "", "email": "", "role": Role.AGENT.value, "team_id": "", "generate": True}
        return _render_new_user(user, form, {})
    form = _new_user_form()
    errors: dict[str, list[str]] = {}
    try:
        role = Role(form["role"])
    except ValueError:
        errors["role"] = ["Choose a role."]
    team_id = parse_id(form["team_id"])
    if form["team_id"] and team_id is None:
        errors["team_ids"] = ["Choose a team from the list."]
    if not form["generate"] and not form["password"]:
        errors["password"] = ["Enter a password, or tick the box to generate one."]
    if errors:
        return _render_new_user(user, form, errors, 422)
    password = users.generate_password() if form["generate"] else form["password"]
    try:
        created = users.do_create_user(
            user,
            email=form["email"],
            password=password,
            role=role,
            name=form["name"],
            team_ids=[team_id] if team_id else [],
        )
    except DomainError as exc:
        return _render_new_user(user, form, form_errors(exc), 422)
    if form["generate"]:
        return _no_store(
            _user_page(user, created, notice="User created.", shown_password=password), 201
        )
    flash(f"User {created.name} created.", "success")
    return redirect(url_for(".user_detail", user_id=created.id))


def _user_page(
    user: User,
    shown: User,
    *,
    account: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    notice: str | None = None,
    shown_password: str | None = None,
) -> str:
    team_names = _team_names(user)
    return render_template(
        "admin/users_detail.html",
        user=user,
        shown=shown,
        account=account or {"name": shown.name, "email": shown.email, "role": shown.role.value},
        errors=errors or {},
        notice=notice,
        shown_password=shown_password,
        role_labels=ROLE_LABELS,
        member_of=[(tid, team_names.get(tid, f"Team {tid}")) for tid in shown.team_ids],
        min_password=users.MIN_PASSWORD_LENGTH,
        open_assigned=assignment.open_assigned_count(shown) if shown.role.is_staff else 0,
        session_count=len(sessions.list_sessions(shown)),
    )


@bp.get("/users/<int:user_id>")
@admin_required
def user_detail(user: User, user_id: int) -> str:
    return _user_page(user, users.access_user_by_id(user, user_id))


def _failed_user_change(user: User, user_id: int, exc: DomainError, **kept: Any) -> tuple[str, int]:
    errors = _refused_change_errors(exc)
    shown = users.access_user_by_id(user, user_id)
    return _user_page(user, shown, errors=errors, **kept), exc.status_code


@bp.post("/users/<int:user_id>")
@admin_required
def user_update(user: User, user_id: int) -> Any:
    """The account form: name, email and role."""
    account = {key: request.form.get(key, "").strip() for key in ("name", "email", "role")}
    try:
        try:
            role = Role(account["role"])
        except ValueError:
            raise InvalidInput("Choose a role.", {"role": ["Choose a role."]}) from None
        changes = {"name": account["name"], "email": account["email"], "role": role}
        users.do_update_user(user, user_id, changes)
    except DomainError as exc:
        return _failed_user_change(user, user_id, exc, account=account)
    flash("Account saved.", "success")
    return redirect(url_for(".user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/status")
@admin_required
def user_status(user: User, user_id: int) -> Any:
    activate = request.form.get("action") == "reactivate"
    try:
        if request.form.get("action") not in ("deactivate", "reactivate"):
            raise InvalidInput("Unknown action.", {"active": ["Use the buttons on this page."]})
        shown = users.do_update_user(user, user_id, {"active": activate})
    except DomainError as exc:
        return _failed_user_change(user, user_id, exc)
    flash(
        f"{shown.name} can log in again."
        if activate
        else f"{shown.name} is deactivated and logged out everywhere; their open tickets went "
        "back to their teams' queues.",
        "success",
    )
    return redirect(url_for(".user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/password")
@admin_required
def user_password(user: User, user_id: int) -> Any:
    generate = request.form.get("generate") == "on"
    password = users.generate_password() if generate else request.form.get("password", "")
    try:
        if not password:
            raise InvalidInput(
                "No password given.",
                {"password": ["Enter a new password, or tick the box to generate one."]},
            )
        shown = users.do_update_user(user, user_id, {"password": password})
    except DomainError as exc:
        return _failed_user_change(user, user_id, exc)
    if shown.id == user.id:
        log_in(shown, via=None)  # the new password ended every session, this one included
    if generate:
        page = _user_page(user, shown, notice="Password reset.", shown_password=password)
        return _no_store(page)
    flash(f"Password of {shown.name} reset; their sessions have ended.", "success")
    return redirect(url_for(".user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/sessions/end")
@admin_required
def user_sessions_end(user: User, user_id: int) -> Any:
    """Log a user out everywhere (a lost laptop, a shared computer): every session ends."""
    try:
        ended = sessions.do_end_all_sessions(user, user_id)
    except DomainError as exc:
        return _failed_user_change(user, user_id, exc)
    if user_id == user.id:
        return redirect(url_for("web_auth.login"))
    flash(
        f"Ended {ended} session{'s' if ended != 1 else ''}; open pages are logged out.", "success"
    )
    return redirect(url_for(".user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/two-factor/reset")
@admin_required
def user_two_factor_reset(user: User, user_id: int) -> Any:
    """Turn off a user's two-factor login (a lost phone): the password alone logs them in
    again, or they set it up anew if staff must use it."""
    try:
        shown = twofactor.do_reset(user, user_id)
    except DomainError as exc:
        return _failed_user_change(user, user_id, exc)
    flash(f"Two-factor login of {shown.name} is reset.", "success")
    return redirect(url_for(".user_detail", user_id=user_id))


# -- teams -------------------------------------------------------------------------------------


@bp.get("/teams", endpoint="teams")
@admin_required
def teams_page(user: User) -> tuple[str, int]:
    cursor = request.args.get("cursor", "").strip() or None
    errors: dict[str, Any] = {}
    listing = None
    try:
        listing = teams.list_teams(user, PageRequest(limit=PAGE_SIZE, cursor=cursor, sort="id"))
    except InvalidInput as exc:
        errors = exc.errors
    html = render_template(
        "admin/teams.html",
        user=user,
        listing=listing,
        errors=errors,
        names=users.staff_names(),
        policy_labels=POLICY_LABELS,
        describe_calendar=describe_calendar,
    )
    return html, 422 if errors else 200


def _settings_form() -> dict[str, Any]:
    return {
        key: request.form.get(key, "").strip()
        for key in ("name", "description", "lead_id", "assignment_policy", "max_open_per_agent")
    }


def _settings_changes(form: dict[str, Any]) -> dict[str, Any]:
    """The settings form as service fields; what cannot be read becomes an error at its field."""
    errors: dict[str, list[str]] = {}
    lead_id = parse_id(form["lead_id"])
    if form["lead_id"] and lead_id is None:
        errors["lead_id"] = ["Choose a lead from the list."]
    cap = None
    if form["max_open_per_agent"]:
        raw = form["max_open_per_agent"]
        cap = int(raw) if raw.isdecimal() and len(raw) < 7 else None
        if cap is None:
            errors["max_open_per_agent"] = ["A whole number, or empty for no cap."]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return {
        "name": form["name"],
        "description": form["description"],
        "lead_id": lead_id,
        "assignment_policy": form["assignment_policy"],
        "max_open_per_agent": cap,
    }


def _team_form_context(user: User, team: Team | None = None) -> dict[str, Any]:
    staff = users.active_staff()
    if team is not None and team.lead is not None and team.lead not in staff:
        staff.append(team.lead)  # a deactivated lead stays selectable until replaced
    return {"staff": staff, "policy_labels": POLICY_LABELS, "role_labels": ROLE_LABELS}


@bp.route("/teams/new", methods=["GET", "POST"])
@admin_required
def team_new(user: User) -> Any:
    form: dict[str, Any] = {
        "name": "",
        "description": "",
        "lead_id": "",
        "assignment_policy": AssignmentPolicy.ROUND_ROBIN.value,
        "max_open_per_agent": "",
    }
    errors: dict[str, Any] = {}
    if request.method == "POST":
        form = _settings_form()
        try:
            created = teams.do_create_team(user, **_settings_changes(form))
        except DomainError as exc:
            errors = form_errors(exc)
        else:
            flash(f"Team {created.name} created. Add its members below.", "success")
            return redirect(url_for(".team_detail", team_id=created.id))
    html = render_template(
        "admin/teams_new.html", user=user, form=form, errors=errors, **_team_form_context(user)
    )
    return html, 422 if errors else 200


def _current_settings(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "description": team.description,
        "lead_id": str(team.lead_id or ""),
        "assignment_policy": team.assignment_policy.value,
        "max_open_per_agent": str(team.max_open_per_agent or ""),
    }


def _team_page(
    user: User,
    team: Team,
    *,
    settings: dict[str, Any] | None = None,
    calendar: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    members = sorted((m.user for m in team.memberships), key=lambda u: u.name.lower())
    member_ids = {m.id for m in members}
    fallback = teams.workflow_calendar()
    html = render_template(
        "admin/teams_detail.html",
        user=user,
        team=team,
        members=members,
        candidates=[s for s in users.active_staff() if s.id not in member_ids],
        settings=settings or _current_settings(team),
        calendar=calendar or calendar_form_values(team.calendar or fallback, team.calendar),
        calendar_errors=calendar_field_errors(errors or {}),
        workflow_calendar=describe_calendar(fallback),
        errors=errors or {},
        weekdays=WEEKDAY_LABELS,
        timezones=sorted(available_timezones()),
        **_team_form_context(user, team),
    )
    return html, status


@bp.get("/teams/<int:team_id>")
@admin_required
def team_detail(user: User, team_id: int) -> tuple[str, int]:
    return _team_page(user, teams.access_team_by_id(user, team_id))


def _failed_team_change(user: User, team_id: int, exc: DomainError, **kept: Any) -> tuple[str, int]:
    errors = _refused_change_errors(exc)
    team = teams.access_team_by_id(user, team_id)
    return _team_page(user, team, errors=errors, status=exc.status_code, **kept)


@bp.post("/teams/<int:team_id>")
@admin_required
def team_update(user: User, team_id: int) -> Any:
    form = _settings_form()
    try:
        teams.do_update_team(user, team_id, _settings_changes(form))
    except DomainError as exc:
        return _failed_team_change(user, team_id, exc, settings=form)
    flash("Team saved.", "success")
    return redirect(url_for(".team_detail", team_id=team_id))


@bp.post("/teams/<int:team_id>/members")
@admin_required
def team_member_add(user: User, team_id: int) -> Any:
    member_id = parse_id(request.form.get("user_id"))
    try:
        if member_id is None:
            raise InvalidInput("Choose someone.", {"user_id": ["Choose someone from the list."]})
        teams.do_add_member(user, team_id, member_id)
    except DomainError as exc:
        return _failed_team_change(user, team_id, exc)
    flash("Member added.", "success")
    return redirect(url_for(".team_detail", team_id=team_id, _anchor="members"))


@bp.post("/teams/<int:team_id>/members/<int:member_id>/remove")
@admin_required
def team_member_remove(user: User, team_id: int, member_id: int) -> Any:
    try:
        teams.do_remove_member(user, team_id, member_id)
    except DomainError as exc:
        return _failed_team_change(user, team_id, exc)
    flash("Member removed.", "success")
    return redirect(url_for(".team_detail", team_id=team_id, _anchor="members"))


# -- the business-hours calendar form ------------------------------------------------------------


def calendar_form_values(
    definition: dict[str, Any] | None, own: dict[str, Any] | None
) -> dict[str, Any]:
    """A calendar definition as the form shows it: "09:00-12:00, 13:00-17:00" per weekday,
    one holiday per line. ``own`` says whether the team has hours of its own."""
    definition = definition or {}
    hours = definition.get("hours") or {}
    return {
        "mode": "own" if own else "workflow",
        "timezone": definition.get("timezone", "UTC"),
        **{
            f"hours_{day}": ", ".join(f"{start}-{end}" for start, end in hours.get(day, []))
            for day in WEEKDAYS
        },
        "holidays": "\n".join(str(day) for day in definition.get("holidays", [])),
    }


def _calendar_form() -> dict[str, Any]:
    return {
        "mode": request.form.get("mode", ""),
        "timezone": request.form.get("timezone", "").strip(),
        **{f"hours_{day}": request.form.get(f"hours_{day}", "").strip() for day in WEEKDAYS},
        "holidays": request.form.get("holidays", "").strip(),
    }


def calendar_definition(form: dict[str, Any]) -> dict[str, Any] | None:
    """The form as a calendar definition (None: use the workflow's); text that is not a list
    of "HH:MM-HH:MM" intervals is an error at its weekday."""
    if form["mode"] == "workflow":
        return None
    if form["mode"] != "own":
        raise InvalidInput("Choose whose hours apply.", {"calendar.mode": ["Choose one."]})
    errors: dict[str, list[str]] = {}
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        text = form[f"hours_{day}"]
        intervals = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            match = _INTERVAL.match(part)
            if match is None:
                errors[f"calendar.hours.{day}"] = [
                    f"{part!r} is not a time range; write e.g. 09:00-17:00 (commas between)."
                ]
                break
            intervals.append([match[1], match[2]])
        if intervals:
            hours[day] = intervals
    if errors:
        raise InvalidInput("The business hours are not valid.", errors)
    holidays = [line.strip() for line in form["holidays"].splitlines() if line.strip()]
    return {"timezone": form["timezone"], "hours": hours, "holidays": holidays}


def calendar_field_errors(errors: dict[str, Any]) -> dict[str, list[str]]:
    """Errors keyed ``calendar.hours.mon.0`` (the service's) by the form field they belong to."""
    by_field: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if not key.startswith("calendar"):
            continue
        parts = key.split(".")
        if len(parts) >= 3 and parts[1] == "hours":
            field = f"hours_{parts[2]}"
        elif len(parts) >= 2 and parts[1] in ("timezone", "holidays", "mode", "hours"):
            field = parts[1]
        else:
            field = "hours"
        if parts[1:2] == ["holidays"] and len(parts) == 3 and parts[2].isdecimal():
            messages = [f"Line {int(parts[2]) + 1}: {m}" for m in messages]
        by_field.setdefault(field, []).extend(messages)
    return by_field


@bp.post("/teams/<int:team_id>/calendar")
@admin_required
def team_calendar(user: User, team_id: int) -> Any:
    form = _calendar_form()
    try:
        teams.do_update_team(user, team_id, {"calendar": calendar_definition(form)})
    except DomainError as exc:
        return _failed_team_change(user, team_id, exc, calendar=form)
    flash(
        "Business hours saved; running SLA deadlines of the team's tickets were recomputed.",
        "success",
    )
    return redirect(url_for(".team_detail", team_id=team_id, _anchor="hours"))


def describe_calendar(definition: dict[str, Any] | None) -> str:
    """One line for people: "Europe/Berlin: Mon 09:00-17:00; ...; 2 holidays"."""
    if not definition:
        return "Always open"
    hours = definition.get("hours") or {}
    days = [
        f"{day.capitalize()} " + ", ".join(f"{start}-{end}" for start, end in hours[day])
        for day in WEEKDAYS
        if hours.get(day)
    ]
    text = f"{definition.get('timezone', 'UTC')}: {'; '.join(days) or 'never open'}"
    holidays = definition.get("holidays") or []
    if holidays:
        text += f"; {len(holidays)} holiday{'s' if len(holidays) != 1 else ''}"
    return text
