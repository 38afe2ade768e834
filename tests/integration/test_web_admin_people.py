"""The admin console's Users and Teams pages, through the Flask test client with a real login
(session cookie and CSRF tokens, as a browser has them)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.people import users
from autocrm.people.models import AssignmentPolicy, Role, Team, User
from autocrm.tickets.models import Ticket
from tests.factories import PASSWORD, ApiClient, Factory, csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Tests log in (and fail to) many times; the login rate limit must not carry over."""


@pytest.fixture
def admin(factory: Factory) -> User:
    return factory.admin(name="Ada Admin")


@pytest.fixture
def token(client: FlaskClient, admin: User) -> str:
    """The admin is logged in; the session's CSRF token."""
    web_login(client, admin)
    return csrf_token(client, "/admin/users")


def text_of(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_error(page: str, control_id: str) -> str | None:
    """The error shown next to a form control (and the control says it is invalid)."""
    match = re.search(
        rf'<small class="admin-field-error" id="{control_id}-error">([^<]*)</small>', page
    )
    if match is None:
        return None
    control = re.search(rf'<(?:input|select|textarea)[^>]*id="{control_id}"[^>]*>', page)
    assert control and 'aria-invalid="true"' in control.group(0), control_id
    return html.unescape(match.group(1))


def input_value(page: str, control_id: str) -> str:
    control = re.search(rf'<input[^>]*id="{control_id}"[^>]*>', page)
    assert control, control_id
    value = re.search(r'value="([^"]*)"', control.group(0))
    return html.unescape(value.group(1)) if value else ""


def selected(page: str, control_id: str) -> str | None:
    block = re.search(rf'<select[^>]*id="{control_id}"[^>]*>(.*?)</select>', page, re.S)
    assert block, control_id
    option = re.search(r'<option value="([^"]*)" selected>', block.group(1))
    return option.group(1) if option else None


def table(response: Any, table_id: str) -> str:
    """The listing table of a page (the page also names the logged-in admin)."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', text_of(response), re.S)
    return match.group(0) if match else ""


def entries(session: Any, action: str) -> list[AdminAuditEntry]:
    stmt = select(AdminAuditEntry).where(AdminAuditEntry.action == action)
    return list(session.scalars(stmt.order_by(AdminAuditEntry.id)))


def can_log_in(client: FlaskClient, email: str, password: str) -> bool:
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )
    return response.status_code == 302


# -- who may use the console --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/users", "/admin/users/new", "/admin/teams", "/admin/audit/"]
)
def test_agents_and_customers_get_a_404_and_visitors_the_login(client, factory, path):
    assert "/login" in client.get(path).headers["Location"]
    web_login(client, factory.agent())
    assert client.get(path).status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    web_login(client, factory.customer())
    assert client.get(path).status_code in (302, 404)  # customers are sent to their portal


def test_a_post_without_csrf_token_is_refused(client, token, factory):
    agent = factory.agent()
    response = client.post(f"/admin/users/{agent.id}/status", data={"action": "deactivate"})
    assert response.status_code == 400
    assert users.access_user_by_id(agent, agent.id).active


# -- the users list -----------------------------------------------------------------------------


def test_users_list_searches_filters_and_pages(client, token, factory, db_session):
    team = factory.team("Night shift")
    factory.agent(team, name="Zed Searchable", email="zed@example.test")
    factory.customer(name="Yara Customer", email="yara.search@example.test")
    factory.agent(name="Gone Agent", email="gone@example.test", active=False)

    rows = table(client.get("/admin/users?q=search"), "users-table")
    assert "Zed Searchable" in rows and "Yara Customer" in rows  # name or email
    assert "Ada Admin" not in rows
    assert "Night shift" in rows  # the teams column

    response = client.get("/admin/users?q=search&role=agent")
    rows, page = table(response, "users-table"), text_of(response)
    assert "Zed Searchable" in rows and "Yara Customer" not in rows
    assert selected(page, "u-role") == "agent" and input_value(page, "u-q") == "search"

    rows = table(client.get("/admin/users?status=deactivated"), "users-table")
    assert "Gone Agent" in rows and "Zed Searchable" not in rows and "Deactivated" in rows

    for n in range(30):
        factory.customer(name=f"Paged {n:02}", email=f"paged{n:02}@example.test")
    first = text_of(client.get("/admin/users?q=paged"))
    assert first.count("Paged ") == 25
    next_link = re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', first)
    assert next_link, "a next-page link"
    second = text_of(client.get(html.unescape(next_link.group(1))))
    assert second.count("Paged ") == 5
    shown = set(re.findall(r"Paged \d\d", first)) | set(re.findall(r"Paged \d\d", second))
    assert len(shown) == 30  # every user once, none twice
    assert 'rel="next"' not in second


def test_bad_list_filters_are_errors_at_the_field(client, token):
    response = client.get("/admin/users?role=wizard&q=x")
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, "u-role") == "Choose a role from the list."
    assert input_value(page, "u-q") == "x"
    response = client.get("/admin/users?cursor=not-a-cursor")
    assert response.status_code == 422
    assert "out of date" in text_of(response)


# -- creating users -----------------------------------------------------------------------------


def test_creating_an_agent_in_a_team_with_a_chosen_password(client, token, factory, db_session):
    team = factory.team("Payments")
    response = client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "name": "Nina New",
            "email": "Nina@Example.test",
            "role": "agent",
            "team_id": str(team.id),
            "password": "a fine password",
        },
    )
    assert response.status_code == 302
    created = db_session.scalar(select(User).where(User.email == "nina@example.test"))
    assert (created.name, created.role, created.team_ids) == ("Nina New", Role.AGENT, [team.id])
    page = text_of(client.get(response.headers["Location"]))
    assert "User Nina New created." in page and "Payments" in page
    assert can_log_in(client, "nina@example.test", "a fine password")


def test_a_generated_password_is_shown_once_and_works(client, token, db_session):
    response = client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "name": "Gen Person",
            "email": "gen@example.test",
            "role": "customer",
            "generate": "on",
        },
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    page = text_of(response)
    password = re.search(r'<code id="generated-password"[^>]*>([^<]+)</code>', page).group(1)
    assert len(password) >= users.MIN_PASSWORD_LENGTH
    created = db_session.scalar(select(User).where(User.email == "gen@example.test"))
    assert password not in text_of(client.get(f"/admin/users/{created.id}"))  # only once
    assert can_log_in(client, "gen@example.test", password)


@pytest.mark.parametrize(
    ("changes", "control", "message"),
    [
        ({"email": "not-an-email"}, "nu-email", "Enter an address like name@example.com."),
        ({"email": "ada.taken@example.test"}, "nu-email", "A user with this email exists."),
        ({"name": "   "}, "nu-name", "Must not be blank."),
        ({"password": "short"}, "nu-password", "Use at least 8 characters."),
        ({"password": ""}, "nu-password", "Enter a password, or tick the box to generate one."),
        ({"role": "wizard"}, "nu-role", "Choose a role."),
        ({"role": "customer"}, "nu-team", "Only for staff."),
    ],
)
def test_bad_new_user_input_is_kept_with_the_error_at_its_field(
    client, token, factory, db_session, changes, control, message
):
    factory.agent(email="ada.taken@example.test")
    team = factory.team()
    form = {
        "csrf_token": token,
        "name": "Kept Name",
        "email": "kept@example.test",
        "role": "agent",
        "team_id": str(team.id),
        "password": "long enough secret",
        **changes,
    }
    response = client.post("/admin/users/new", data=form)
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, control) == message
    if "name" not in changes:
        assert input_value(page, "nu-name") == "Kept Name"
    if "email" not in changes:
        assert input_value(page, "nu-email") == "kept@example.test"
    assert "long enough secret" not in page  # a password is never echoed
    assert db_session.scalar(select(User).where(User.email == "kept@example.test")) is None
    assert entries(db_session, "user.created") == []


# -- one user's page: role, access, password ----------------------------------------------------


def test_changing_name_and_role(client, token, factory, db_session, admin):
    team = factory.team()
    agent = factory.agent(team, name="Role Person")
    team.lead_id = agent.id
    db_session.commit()
    response = client.post(
        f"/admin/users/{agent.id}",
        data={"csrf_token": token, "name": "Role P.", "email": agent.email, "role": "customer"},
    )
    assert response.status_code == 302
    fresh = db_session.get(User, agent.id)
    assert (fresh.name, fresh.role, fresh.team_ids) == ("Role P.", Role.CUSTOMER, [])
    assert db_session.get(Team, team.id).lead_id is None
    [role_change] = entries(db_session, "user.role_changed")
    assert role_change.actor_id == admin.id and role_change.target_id == agent.id
    assert role_change.changes["role"] == ["agent", "customer"]
    assert role_change.changes["teams"] == [[team.name], []]


def test_an_admin_cannot_demote_themselves_and_the_input_stays(client, token, admin):
    response = client.post(
        f"/admin/users/{admin.id}",
        data={"csrf_token": token, "name": "Still Ada", "email": admin.email, "role": "agent"},
    )
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, "ud-role") == "Not on your own account."
    assert input_value(page, "ud-name") == "Still Ada" and selected(page, "ud-role") == "agent"
    assert users.access_user_by_id(admin, admin.id).role is Role.ADMIN


def test_a_taken_email_is_an_error_at_the_email_field(client, token, factory):
    agent, other = factory.agent(), factory.agent(email="other.one@example.test")
    response = client.post(
        f"/admin/users/{agent.id}",
        data={"csrf_token": token, "name": agent.name, "email": other.email, "role": "agent"},
    )
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, "ud-email") == "A user with this email exists."
    assert input_value(page, "ud-email") == other.email


def test_a_deactivated_user_cannot_log_in_use_a_token_or_a_session_and_their_tickets_return(
    app, factory, db_session, admin
):
    agent_client, admin_client = app.test_client(), app.test_client()
    team = factory.team()
    agent = factory.agent(team, name="Dee Activated")
    ticket = factory.ticket(factory.customer(), team=team, assignee_id=agent.id)
    api = ApiClient(app.test_client(), agent)
    assert api.get("/api/users/me").status_code == 200
    web_login(agent_client, agent)
    assert agent_client.get("/agent/").status_code == 200

    web_login(admin_client, admin)
    page = text_of(admin_client.get(f"/admin/users/{agent.id}"))
    assert "Their 1 open ticket goes back to the team queue" in page
    token = csrf_token(admin_client, f"/admin/users/{agent.id}")
    response = admin_client.post(
        f"/admin/users/{agent.id}/status", data={"csrf_token": token, "action": "deactivate"}
    )
    assert response.status_code == 302
    assert "went back to their teams' queues" in text_of(
        admin_client.get(response.headers["Location"])
    )

    assert api.get("/api/users/me").status_code == 401  # the token
    in_session = agent_client.get("/agent/")
    assert in_session.status_code == 302 and "/login" in in_session.headers["Location"]
    login = agent_client.post(
        "/login",
        data={"email": agent.email, "password": PASSWORD, "csrf_token": csrf_token(agent_client)},
    )
    assert login.status_code == 401 and "deactivated" in text_of(login)
    db_session.expire_all()
    kept = db_session.get(Ticket, ticket.id)
    assert (kept.assignee_id, kept.team_id) == (None, team.id)  # back in the team queue
    [entry] = entries(db_session, "user.deactivated")
    assert entry.changes == {"active": [True, False]}

    response = admin_client.post(
        f"/admin/users/{agent.id}/status", data={"csrf_token": token, "action": "reactivate"}
    )
    assert response.status_code == 302
    assert len(entries(db_session, "user.reactivated")) == 1
    assert can_log_in(agent_client, agent.email, PASSWORD)


def test_an_admin_cannot_deactivate_themselves(client, token, admin):
    page = text_of(client.get(f"/admin/users/{admin.id}"))
    assert "You cannot deactivate your own account." in page
    response = client.post(
        f"/admin/users/{admin.id}/status", data={"csrf_token": token, "action": "deactivate"}
    )
    assert response.status_code == 422
    assert (
        '<small class="admin-field-error" id="ud-status-error">Not on your own account.</small>'
        in text_of(response)
    )
    assert users.access_user_by_id(admin, admin.id).active


def test_resetting_a_password_to_a_chosen_one_ends_old_sessions(app, factory, db_session, admin):
    agent = factory.agent()
    agent_client, admin_client = app.test_client(), app.test_client()
    web_login(agent_client, agent)
    web_login(admin_client, admin)
    token = csrf_token(admin_client, f"/admin/users/{agent.id}")

    short = admin_client.post(
        f"/admin/users/{agent.id}/password", data={"csrf_token": token, "password": "short"}
    )
    assert short.status_code == 422
    assert field_error(text_of(short), "ud-password") == "Use at least 8 characters."

    response = admin_client.post(
        f"/admin/users/{agent.id}/password",
        data={"csrf_token": token, "password": "brand new secret"},
    )
    assert response.status_code == 302
    assert agent_client.get("/agent/").status_code == 302  # logged out
    assert not can_log_in(agent_client, agent.email, PASSWORD)
    assert can_log_in(agent_client, agent.email, "brand new secret")
    [entry] = entries(db_session, "user.password_reset")
    assert entry.changes == {}
    assert "brand new secret" not in str(entry.changes) + entry.target_label


def test_an_admin_resetting_their_own_password_stays_logged_in(client, token, admin):
    response = client.post(
        f"/admin/users/{admin.id}/password",
        data={"csrf_token": token, "password": "my new admin secret"},
    )
    assert response.status_code == 302
    assert client.get("/admin/users").status_code == 200
    assert can_log_in(client, admin.email, "my new admin secret")


def test_a_generated_reset_password_is_shown_once(client, token, factory):
    agent = factory.agent()
    response = client.post(
        f"/admin/users/{agent.id}/password", data={"csrf_token": token, "generate": "on"}
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="generated-password"[^>]*>([^<]+)<', text_of(response)).group(1)
    assert can_log_in(client, agent.email, password)


def test_an_unknown_user_is_the_404_page(client, token):
    assert client.get("/admin/users/999999").status_code == 404
    response = client.post("/admin/users/999999/status", data={"csrf_token": token, "action": "x"})
    assert response.status_code == 404


# -- teams --------------------------------------------------------------------------------------


def team_form(token: str, **fields: str) -> dict[str, str]:
    """The team form as posted: no lead, round robin, no cap, unless ``fields`` say otherwise."""
    form = {
        "csrf_token": token,
        "description": "",
        "lead_id": "",
        "assignment_policy": "round_robin",
        "max_open_per_agent": "",
    }
    return {**form, **fields}


def test_creating_a_team_and_listing_it(client, token, factory, db_session, admin):
    lead = factory.agent(name="Lee Lead")
    form = team_form(
        token, name="Escalations", description="The hard ones", lead_id=str(lead.id),
        assignment_policy="least_open", max_open_per_agent="7",
    )  # fmt: skip
    response = client.post("/admin/teams/new", data=form)
    assert response.status_code == 302
    team = db_session.scalar(select(Team).where(Team.name == "Escalations"))
    assert (team.lead_id, team.assignment_policy, team.max_open_per_agent) == (
        lead.id,
        AssignmentPolicy.LEAST_OPEN,
        7,
    )
    assert team.member_ids == [lead.id]  # the lead joins
    listing = text_of(client.get("/admin/teams"))
    assert "Escalations" in listing and "Lee Lead" in listing and "Fewest open tickets" in listing
    assert "at most 7 open per agent" in listing
    [created] = entries(db_session, "team.created")
    assert created.actor_id == admin.id and created.changes["lead"] == [None, "Lee Lead"]


@pytest.mark.parametrize(
    ("changes", "control", "message"),
    [
        ({"name": "Taken"}, "t-name", "A team with this name exists."),
        ({"name": " "}, "t-name", "Must not be blank."),
        ({"max_open_per_agent": "lots"}, "t-cap", "A whole number, or empty for no cap."),
        ({"max_open_per_agent": "0"}, "t-cap", "A whole number from 1 to 10000, or none."),
        ({"assignment_policy": "random"}, "t-policy", None),
        ({"lead_id": "abc"}, "t-lead", "Choose a lead from the list."),
    ],
)
def test_bad_team_input_is_kept_with_the_error_at_its_field(
    client, token, factory, db_session, changes, control, message
):
    factory.team("Taken")
    form = {**team_form(token, name="Kept Team", description="Kept description"), **changes}
    response = client.post("/admin/teams/new", data=form)
    assert response.status_code == 422
    page = text_of(response)
    error = field_error(page, control)
    assert error is not None and (message is None or error == message)
    if "name" not in changes:
        assert input_value(page, "t-name") == "Kept Team"
    assert "Kept description" in page
    assert db_session.scalar(select(Team).where(Team.name == "Kept Team")) is None


def test_editing_a_team_and_its_members(client, token, factory, db_session):
    team = factory.team("Tier 1")
    agent, other = factory.agent(name="Mia Member"), factory.agent(name="Otto Other")
    url = f"/admin/teams/{team.id}"

    response = client.post(f"{url}/members", data={"csrf_token": token, "user_id": agent.id})
    assert response.status_code == 302
    assert client.post(f"{url}/members", data={"csrf_token": token, "user_id": other.id})
    page = text_of(client.get(url))
    assert "Mia Member" in page and "Members (2)" in page

    form = team_form(
        token, name="Tier One", description="First line", lead_id=str(agent.id),
        assignment_policy="manual",
    )  # fmt: skip
    response = client.post(url, data=form)
    assert response.status_code == 302
    fresh = db_session.get(Team, team.id)
    assert (fresh.name, fresh.description, fresh.lead_id) == ("Tier One", "First line", agent.id)
    assert fresh.assignment_policy is AssignmentPolicy.MANUAL

    response = client.post(f"{url}/members/{agent.id}/remove", data={"csrf_token": token})
    assert response.status_code == 302
    fresh = db_session.get(Team, team.id)
    assert fresh.member_ids == [other.id] and fresh.lead_id is None

    [updated] = entries(db_session, "team.updated")
    assert updated.changes["name"] == ["Tier 1", "Tier One"]
    assert updated.changes["lead"] == [None, "Mia Member"]
    assert updated.changes["assignment_policy"] == ["round_robin", "manual"]
    assert [e.changes["member"] for e in entries(db_session, "team.member_added")] == [
        [None, "Mia Member"],
        [None, "Otto Other"],
    ]
    [removed] = entries(db_session, "team.member_removed")
    assert removed.changes == {"member": ["Mia Member", None], "lead": ["Mia Member", None]}


def test_a_team_with_a_deactivated_lead_can_still_be_edited(client, token, factory, db_session):
    lead = factory.agent(name="Former Lead")
    team = factory.team("Led", lead=lead)
    lead.active = False
    db_session.commit()
    page = text_of(client.get(f"/admin/teams/{team.id}"))
    assert selected(page, "t-lead") == str(lead.id)
    assert "Former Lead (Agent, deactivated)" in page
    form = team_form(token, name="Led", description="Still led", lead_id=str(lead.id))
    response = client.post(f"/admin/teams/{team.id}", data=form)
    assert response.status_code == 302
    fresh = db_session.get(Team, team.id)
    assert (fresh.description, fresh.lead_id) == ("Still led", lead.id)
    other = factory.agent()
    other.active = False
    db_session.commit()
    form = team_form(token, name="Led", lead_id=str(other.id))
    response = client.post(f"/admin/teams/{team.id}", data=form)
    assert response.status_code == 422  # a new lead must be active
    assert field_error(text_of(response), "t-lead") == "Must be an active agent or admin."


def test_adding_a_customer_to_a_team_is_an_error_at_the_field(client, token, factory):
    team, customer = factory.team(), factory.customer()
    response = client.post(
        f"/admin/teams/{team.id}/members", data={"csrf_token": token, "user_id": customer.id}
    )
    assert response.status_code == 422
    assert field_error(text_of(response), "t-add") == "Must be staff."


# -- business hours -----------------------------------------------------------------------------


def calendar_form(token: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "mode": "own",
        "timezone": "Europe/Berlin",
        "hours_mon": "09:00-12:00, 13:00-17:00",
        "hours_tue": "09:00-17:00",
        "hours_wed": "",
        "hours_thu": "",
        "hours_fri": "09:00-15:00",
        "hours_sat": "",
        "hours_sun": "",
        "holidays": "2026-12-25\n2026-12-26",
    }
    return {**form, **fields}


def test_saving_business_hours_and_going_back_to_the_workflows(client, token, factory, db_session):
    team = factory.team()
    url = f"/admin/teams/{team.id}"
    page = text_of(client.get(url))
    assert 'id="cal-mode-workflow" name="mode" value="workflow" checked' in page
    assert input_value(page, "cal-mon") == "08:00-18:00"  # the workflow's hours, to start from

    response = client.post(f"{url}/calendar", data=calendar_form(token))
    assert response.status_code == 302
    assert db_session.get(Team, team.id).calendar == {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": [["09:00", "12:00"], ["13:00", "17:00"]],
            "tue": [["09:00", "17:00"]],
            "fri": [["09:00", "15:00"]],
        },
        "holidays": ["2026-12-25", "2026-12-26"],
    }
    page = text_of(client.get(url))
    assert input_value(page, "cal-mon") == "09:00-12:00, 13:00-17:00"
    assert "Europe/Berlin: Mon 09:00-12:00, 13:00-17:00; Tue 09:00-17:00" in text_of(
        client.get("/admin/teams")
    )

    response = client.post(f"{url}/calendar", data=calendar_form(token, mode="workflow"))
    assert response.status_code == 302
    assert db_session.get(Team, team.id).calendar is None
    calendar_changes = [e.changes["calendar"] for e in entries(db_session, "team.updated")]
    assert calendar_changes[0][0] is None and calendar_changes[0][1]["timezone"] == "Europe/Berlin"
    assert calendar_changes[1][1] is None


@pytest.mark.parametrize(
    ("fields", "control", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "cal-timezone", "unknown time zone 'Mars/Olympus'."),
        ({"hours_tue": "nine to five"}, "cal-tue", None),
        ({"hours_wed": "10:00-12:00, 11:00-13:00"}, "cal-wed", None),
        ({"hours_thu": "17:00-09:00"}, "cal-thu", "start 17:00 must be before end 09:00."),
        ({"hours_fri": "09:00-25:00"}, "cal-fri", None),
        ({"holidays": "2026-12-25\nChristmas"}, "cal-holidays", None),
        (
            {f"hours_{d}": "" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            "cal-hours",
            None,
        ),
    ],
)
def test_bad_business_hours_are_errors_at_the_field_with_the_input_kept(
    client, token, factory, db_session, fields, control, message
):
    team = factory.team()
    response = client.post(f"/admin/teams/{team.id}/calendar", data=calendar_form(token, **fields))
    assert response.status_code == 422
    page = text_of(response)
    if control == "cal-hours":
        assert "never open" in page
    else:
        error = field_error(page, control)
        assert error is not None and (message is None or error == message), error
    for name, value in fields.items():
        if name.startswith("hours_") and value:
            assert input_value(page, f"cal-{name[6:]}") == value
    if "holidays" in fields:
        assert "Christmas" in page and "Line 2:" in page
    assert input_value(page, "cal-timezone") == fields.get("timezone", "Europe/Berlin")
    assert db_session.get(Team, team.id).calendar is None
