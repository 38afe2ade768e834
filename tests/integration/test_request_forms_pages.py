"""Request forms on the pages: the console adds and edits them (audited, errors at their field,
input kept); the portal's and the help center's new-ticket pages first offer the forms as plain
links, then ask the chosen form's fields, refuse a required one left empty with everything
typed kept, and file the ticket with its form in the form's team; the workspace shows and
changes a ticket's form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.fields import definitions, forms
from autocrm.fields.models import RequestForm
from autocrm.people.models import Team
from autocrm.tickets.models import Ticket
from tests.factories import csrf_token, web_login


def html(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def bug_form(factory, db_session) -> RequestForm:
    admin = factory.admin()
    for key, kind, visibility, options in (
        ("severity", "dropdown", "customer_editable", [{"value": "crash", "label": "It crashes"}]),
        ("steps", "long_text", "customer_editable", []),
        ("triage", "text", "staff", []),
    ):
        body = {"key": key, "label": key.capitalize(), "type": kind, "visibility": visibility}
        definitions.do_create_field(admin, body | ({"options": options} if options else {}))
    team = factory.team("Bugs")
    return forms.do_create_form(
        admin,
        {
            "key": "bug",
            "name": "Bug report",
            "description": "Something does not work",
            "team_id": team.id,
            "fields": [
                {"key": "severity", "required": True},
                {"key": "steps"},
                {"key": "triage", "required": True},
            ],
        },
    )


def test_an_admin_adds_and_edits_a_form_in_the_console(
    client, factory, db_session, fresh_login_limit
):
    admin = factory.admin()
    definitions.do_create_field(admin, {"key": "version", "label": "Version", "type": "text"})
    definitions.do_create_field(admin, {"key": "os", "label": "OS", "type": "text"})
    team = factory.team("Billing team")
    web_login(client, admin)
    token = csrf_token(client, "/admin/forms")
    data = {
        "csrf_token": token,
        "key": "billing",
        "name": "Billing question",
        "description": "Invoices and payments",
        "team_id": str(team.id),
        "active": "on",
        "ask.version": "required",
        "order.version": "2",
        "ask.os": "optional",
        "order.os": "1",
    }
    bad = client.post("/admin/forms", data={**data, "key": "Not a key"})
    assert bad.status_code == 422
    page = html(bad)
    assert 'id="rf-key-error"' in page and 'value="Billing question"' in page
    assert re.search(r'name="ask.version"[^>]*>.*?<option value="required" selected', page, re.S)
    added = client.post("/admin/forms", data=data)
    assert added.status_code == 302, html(added)
    made = db_session.scalar(select(RequestForm).where(RequestForm.key == "billing"))
    assert made.items == [{"key": "os", "required": False}, {"key": "version", "required": True}]
    assert made.team_id == team.id
    listing = html(client.get("/admin/forms"))
    assert "Billing question" in listing and "Version (required)" in listing
    taken = client.post("/admin/forms", data={**data, "key": "other"})
    assert taken.status_code == 422 and "That name is taken." in html(taken)
    saved = client.post(
        f"/admin/forms/{made.id}",
        data={"csrf_token": token, "name": "Billing", "team_id": "", "ask.version": "optional"},
    )
    assert saved.status_code == 302, html(saved)
    db_session.refresh(made)
    assert (made.name, made.team_id, made.active) == ("Billing", None, False)
    assert made.items == [{"key": "version", "required": False}]
    bad_position = client.post(
        f"/admin/forms/{made.id}", data={"csrf_token": token, "name": "B", "position": "soon"}
    )
    assert bad_position.status_code == 422 and 'id="rf-position-error"' in html(bad_position)
    audited = db_session.scalars(
        select(AdminAuditEntry.action).where(AdminAuditEntry.target_type == "request_form")
    ).all()
    assert audited == ["request_form.created", "request_form.updated"]
    assert (
        client.post(f"/admin/forms/{made.id}/delete", data={"csrf_token": token}).status_code == 302
    )
    assert db_session.get(RequestForm, made.id) is None


def test_a_customer_picks_a_form_in_the_portal_and_nothing_typed_is_lost(
    client, factory, db_session, bug_form, fresh_login_limit
):
    customer = factory.customer()
    web_login(client, customer)
    picker = html(client.get("/portal/tickets/new"))
    assert 'href="/portal/tickets/new?form=bug"' in picker
    assert 'name="subject"' not in picker  # the first step is only the choice
    page = html(client.get("/portal/tickets/new?form=bug"))
    assert "Bug report" in page and 'name="cf.severity"' in page and 'name="cf.steps"' in page
    assert "cf.triage" not in page  # staff fill that one
    assert 'name="form" value="bug"' in page
    token = csrf_token(client, "/portal/tickets/new?form=bug")
    typed = {
        "csrf_token": token,
        "form": "bug",
        "subject": "",
        "description": "It crashes on save.",
        "priority": "normal",
        "cf.steps": "Open, save, boom.",
        "cf.severity": "",
    }
    refused = client.post("/portal/tickets/new", data=typed)
    assert refused.status_code == 422
    page = html(refused)
    assert "Required on the Bug report form." in page
    assert 'id="subject"' in page and "Please give your ticket a subject." in page
    assert "It crashes on save." in page and "Open, save, boom." in page
    assert 'name="form" value="bug"' in page
    sent = client.post(
        "/portal/tickets/new", data={**typed, "subject": "Crash", "cf.severity": "crash"}
    )
    assert sent.status_code == 302, html(sent)
    ticket = db_session.scalar(select(Ticket).where(Ticket.requester_id == customer.id))
    assert ticket.form_id == bug_form.id and ticket.team_id == bug_form.team_id
    assert ticket.custom_fields == {"severity": "crash", "steps": "Open, save, boom."}
    assert 'id="ticket-form">Bug report<' in html(client.get(f"/portal/tickets/{ticket.id}"))
    other = html(client.get("/portal/tickets/new?form=other"))
    assert 'name="subject"' in other and "Something else" in other
    unknown = client.get("/portal/tickets/new?form=nope")
    assert "No request form" in html(unknown) and 'href="/portal/tickets/new?form=bug"' in html(
        unknown
    )


def test_the_portal_without_forms_asks_as_before(client, factory, fresh_login_limit):
    web_login(client, factory.customer())
    page = html(client.get("/portal/tickets/new"))
    assert 'name="subject"' in page and "Request type" not in page


def ask(client, path: str, **fields: str):
    page = html(client.get(path))
    shown = re.search(r'name="shown" value="([^"]+)"', page)
    assert shown, page
    data = {"csrf_token": csrf_token(client, path), "shown": shown[1], "website": "", **fields}
    with time_machine.travel(utcnow() + timedelta(seconds=5), tick=False):
        return client.post("/help/new", data=data)


def test_a_stranger_picks_a_form_on_the_help_centers_form(
    client, db_session, bug_form, fresh_login_limit
):
    picker = html(client.get("/help/new"))
    assert 'href="/help/new?form=bug"' in picker and 'name="email"' not in picker
    page = html(client.get("/help/new?form=bug"))
    assert 'name="cf.severity"' in page and "cf.triage" not in page
    typed = {
        "form": "bug",
        "name": "Sam",
        "email": "sam@example.test",
        "subject": "Crash",
        "description": "Boom.",
        "cf.steps": "Click it.",
    }
    refused = ask(client, "/help/new?form=bug", **typed)
    assert refused.status_code == 422
    assert "Required on the Bug report form." in html(refused)
    assert "Click it." in html(refused) and 'value="sam@example.test"' in html(refused)
    assert db_session.scalar(select(Ticket).where(Ticket.subject == "Crash")) is None
    sent = ask(client, "/help/new?form=bug", **typed, **{"cf.severity": "crash"})
    assert sent.status_code == 200 and "on its way" in html(sent), html(sent)
    ticket = db_session.scalar(select(Ticket).where(Ticket.subject == "Crash"))
    assert ticket.form_id == bug_form.id and ticket.team_id == bug_form.team_id
    assert ticket.custom_fields == {"severity": "crash", "steps": "Click it."}


def test_the_workspace_shows_and_changes_a_tickets_form(
    client, factory, db_session, bug_form, fresh_login_limit
):
    admin = factory.admin()
    other = forms.do_create_form(admin, {"key": "billing", "name": "Billing question"})
    ticket = factory.ticket(
        factory.customer(), form="bug", fields={"severity": "crash", "triage": "ok"}
    )
    agent = factory.agent(db_session.get(Team, bug_form.team_id))
    web_login(client, agent)
    page = html(client.get(f"/agent/tickets/{ticket.id}"))
    assert "Bug report" in page
    token = csrf_token(client, f"/agent/tickets/{ticket.id}")
    changed = client.post(
        f"/agent/tickets/{ticket.id}/form",
        data={"csrf_token": token, "form": str(other.id), "version": str(ticket.version)},
    )
    assert changed.status_code == 302
    db_session.refresh(ticket)
    assert ticket.form_id == other.id
    assert "Billing question" in html(client.get(f"/agent/tickets/{ticket.id}"))


def test_an_agent_opens_a_ticket_with_a_form_its_fields_asked_and_its_team_chosen(
    client, factory, db_session, bug_form, fresh_login_limit
):
    customer = factory.customer()
    web_login(client, factory.agent())
    page = html(client.get("/agent/tickets/new"))
    assert 'href="/agent/tickets/new?form=bug"' in page and "cf.severity" not in page
    page = html(client.get("/agent/tickets/new?form=bug"))
    assert 'name="cf.severity"' in page and 'name="cf.triage"' in page  # staff fill both
    assert f'<option value="{bug_form.team_id}" selected>' in page
    typed = {
        "csrf_token": csrf_token(client, "/agent/tickets/new?form=bug"),
        "form": "bug",
        "email": customer.email,
        "name": "",
        "subject": "",
        "description": "Called: it crashes.",
        "priority": "normal",
        "team_id": str(bug_form.team_id),
        "channel": "phone",
        "cf.severity": "crash",
        "cf.triage": "",
    }
    refused = client.post("/agent/tickets/new", data=typed)
    assert refused.status_code == 422
    page = html(refused)
    assert "Required on the Bug report form." in page and 'id="nt-subject-error"' in page
    assert "Called: it crashes." in page and 'value="crash" selected' in page
    sent = client.post("/agent/tickets/new", data={**typed, "subject": "Crash", "cf.triage": "ok"})
    assert sent.status_code == 302, html(sent)
    ticket = db_session.scalar(select(Ticket).where(Ticket.requester_id == customer.id))
    assert (ticket.form_id, ticket.team_id) == (bug_form.id, bug_form.team_id)
    assert ticket.custom_fields == {"severity": "crash", "triage": "ok"}
