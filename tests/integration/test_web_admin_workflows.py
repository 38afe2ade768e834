"""The admin console's workflow pages through the Flask test client with a real login: the
list of workflows and versions, the draft editor (form and raw YAML/JSON), validation errors at
the field that is wrong, simulation, publishing with a state map. Forms are read from the pages
and posted back as a browser without JavaScript would (blank ``<noscript>`` rows included,
``<template>`` rows not)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from autocrm.engine import drafts
from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.engine.versions import current_version
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from tests.factories import Factory, csrf_token, drain, web_login
from workflows import default_definition, load_definition

BASE = "/admin/workflows"
# Six levels of aliases: a few hundred bytes describing ~200,000 values.
ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]\n" for i in range(1, 6)
)


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every test logs in; the login rate limit must not carry over between them."""


# -- reading forms the way a browser does -------------------------------------------------------


class _FormReader(HTMLParser):
    """The fields of one form (found by its action), as a browser without scripts submits
    them: checked boxes only, the selected option, <noscript> content, no <template> rows."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.fields: MultiDict[str, str] = MultiDict()
        self.inside = False
        self.templates = 0
        self.select: str | None = None
        self.select_value: str | None = None
        self.first_option: str | None = None
        self.option: str | None = None
        self.textarea: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = html.unescape(a.get("action", "")) == self.action
        if not self.inside:
            return
        if tag == "template":
            self.templates += 1
        if self.templates:
            return
        if tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.add(a["name"], a.get("value", "on"))
            elif kind not in ("submit", "button"):
                self.fields.add(a["name"], a.get("value", ""))
        elif tag == "select":
            self.select, self.select_value, self.first_option = a.get("name"), None, None
        elif tag == "option" and self.select is not None:
            self.option = a.get("value")
            if self.first_option is None:
                self.first_option = self.option
            if "selected" in a:
                self.select_value = self.option
        elif tag == "textarea":
            self.textarea, self.text = a.get("name"), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "template" and self.inside:
            self.templates -= 1
        elif self.templates:
            return
        elif tag == "select" and self.select is not None:
            value = self.select_value if self.select_value is not None else self.first_option
            self.fields.add(self.select, value or "")
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.fields.add(self.textarea, "".join(self.text).removeprefix("\n"))
            self.textarea = None
        elif tag == "form":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.textarea is not None and not self.templates:
            self.text.append(data)


def form_fields(page: str, action: str) -> MultiDict[str, str]:
    reader = _FormReader(action)
    reader.feed(page)
    assert "csrf_token" in reader.fields, f"no form posting to {action}"
    return reader.fields


def field_tag(page: str, name: str) -> str:
    """The opening tag of the input, select or textarea named ``name``."""
    match = re.search(rf'<(input|select|textarea)\b[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    assert match, f"no field {name}"
    return match.group(0)


def error_next_to(page: str, name: str) -> str:
    """The message shown at a field: the element its aria-describedby names as the error."""
    tag = field_tag(page, name)
    assert 'aria-invalid="true"' in tag, tag
    ids = re.search(r'aria-describedby="([^"]+)"', tag)
    assert ids, tag
    error_id = next(i for i in ids.group(1).split() if i.endswith("-error"))
    match = re.search(rf'id="{re.escape(error_id)}">([^<]*)<', page)
    assert match, f"no element {error_id}"
    # the message follows its field in the page
    assert page.index(tag) < page.index(f'id="{error_id}"')
    return html.unescape(match.group(1))


def text_of(response: TestResponse) -> str:
    return html.unescape(response.get_data(as_text=True))


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def admin(client: FlaskClient, factory: Factory) -> Any:
    user = factory.admin(name="Ada Admin")
    web_login(client, user)
    return user


def default_workflow_id(db_session: Any) -> int:
    current_version()
    workflow_id = db_session.scalar(select(Workflow.id).where(Workflow.name == "default"))
    assert workflow_id is not None
    return workflow_id


def open_editor(client: FlaskClient, workflow_id: int) -> tuple[str, MultiDict[str, str]]:
    response = client.get(f"{BASE}/{workflow_id}/draft")
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    return page, form_fields(page, f"{BASE}/{workflow_id}/draft")


def stored_draft(db_session: Any, workflow_id: int) -> Any:
    db_session.expire_all()
    return db_session.get(Workflow, workflow_id).draft


# -- who may see the pages ------------------------------------------------------------------------


def test_only_admins_reach_the_workflow_pages(client, factory, db_session):
    workflow_id = default_workflow_id(db_session)
    pages = [
        f"{BASE}/",
        f"{BASE}/{workflow_id}/draft",
        f"{BASE}/{workflow_id}/draft/review",
        f"{BASE}/{workflow_id}/versions/1",
        f"{BASE}/{workflow_id}/versions/1/diagram.svg",
    ]
    posts = [f"{BASE}/", f"{BASE}/{workflow_id}/draft", f"{BASE}/{workflow_id}/draft/publish"]

    for url in pages:  # nobody logged in: off to the login page
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url

    web_login(client, factory.customer())
    for url in pages:  # customers: back to their own pages
        response = client.get(url)
        assert response.status_code == 302 and "/login" not in response.headers["Location"], url

    client.post("/logout", data={"csrf_token": csrf_token(client, "/portal/")})
    agent = factory.agent()
    web_login(client, agent)
    token = csrf_token(client, "/notifications")
    for url in pages:  # agents: the console does not exist for them
        assert client.get(url).status_code == 404, url
    for url in posts:
        assert client.post(url, data={"csrf_token": token, "name": "x"}).status_code == 404, url
    assert db_session.scalar(select(Workflow.id).where(Workflow.name == "x")) is None
    assert workflow_admin_version_count(db_session, workflow_id) == 1


def workflow_admin_version_count(db_session: Any, workflow_id: int) -> int:
    return len(
        db_session.scalars(
            select(WorkflowVersion.id).where(WorkflowVersion.workflow_id == workflow_id)
        ).all()
    )


# -- the list -------------------------------------------------------------------------------------


def test_the_list_shows_each_version_with_its_tickets(client, admin, factory, db_session):
    customer = factory.customer()
    factory.ticket(customer)
    factory.ticket(customer)
    workflow_id = default_workflow_id(db_session)

    response = client.get(f"{BASE}/")
    assert response.status_code == 200
    page = text_of(response)
    assert "default" in page and "Default" in page
    assert f'href="{BASE}/{workflow_id}/versions/1"' in page
    row = re.search(r"Version 1</a>.*?</tr>", page, re.S).group(0)
    assert "<td>2</td>" in row, "two tickets pin version 1"
    assert "Start a draft" in page, "the installed default has no draft yet"
    assert "<script>" not in page


def test_creating_a_workflow_from_scratch_or_a_version(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    token = csrf_token(client, f"{BASE}/")

    response = client.post(
        f"{BASE}/", data={"csrf_token": token, "name": "scratch", "start": "empty"}
    )
    assert response.status_code == 302
    scratch = db_session.scalar(select(Workflow).where(Workflow.name == "scratch"))
    assert response.headers["Location"].endswith(f"{BASE}/{scratch.id}/draft")
    assert [s["name"] for s in scratch.draft["states"]] == ["new"]
    assert load_definition(scratch.draft), "from scratch is valid from the start"

    response = client.post(
        f"{BASE}/",
        data={"csrf_token": token, "name": "copied", "start": f"version:{workflow_id}:1"},
    )
    assert response.status_code == 302
    copied = db_session.scalar(select(Workflow).where(Workflow.name == "copied"))
    assert copied.draft["name"] == "copied"
    assert len(copied.draft["transitions"]) == len(default_definition()["transitions"])

    taken = client.post(
        f"{BASE}/",
        data={"csrf_token": token, "name": "copied", "description": "again", "start": "empty"},
    )
    assert taken.status_code == 422
    page = taken.get_data(as_text=True)
    assert "exists" in error_next_to(page, "name")
    assert 'value="copied"' in field_tag(page, "name") and 'value="again"' in page

    for data, field in [
        ({"name": "", "start": "bundled"}, "name"),
        ({"name": "n" * 81, "start": "bundled"}, "name"),
        ({"name": "ok", "start": "version:99999:1"}, "start"),
        ({"name": "ok", "start": "nonsense"}, "start"),
        ({"name": "ok", "start": "bundled", "description": "d" * 5001}, "description"),
    ]:
        response = client.post(f"{BASE}/", data={"csrf_token": token, **data})
        assert response.status_code == 422, data
        assert error_next_to(response.get_data(as_text=True), field), data


# -- the editor -----------------------------------------------------------------------------------


def test_saving_the_form_unchanged_keeps_the_workflow(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    page, fields = open_editor(client, workflow_id)
    assert "copy of version 1" in page
    assert stored_draft(db_session, workflow_id) is None

    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert response.status_code == 302, response.get_data(as_text=True)
    saved = stored_draft(db_session, workflow_id)
    assert load_definition(saved) == load_definition(default_definition())


def test_an_invalid_edit_is_saved_and_shown_at_its_field(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    _, fields = open_editor(client, workflow_id)
    assert fields["transitions.2.name"] == "hold"
    fields["transitions.2.to"] = "on_hols"

    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error_next_to(page, "transitions.2.to") == "Unknown state 'on_hols'."
    assert 'value="on_hols"' in field_tag(page, "transitions.2.to"), "the input is kept"
    summary = re.search(r'id="wf-summary".*?</div>', page, re.S).group(0)
    assert f'href="{BASE}/{workflow_id}/draft?view=form#f-transitions-2-to"' in summary
    assert "Transition 3 “hold”, to" in html.unescape(summary)
    assert stored_draft(db_session, workflow_id)["transitions"][2]["to"] == "on_hols"

    # Opening the editor later shows the same error at the same field.
    page, fields = open_editor(client, workflow_id)
    assert error_next_to(page, "transitions.2.to") == "Unknown state 'on_hols'."
    fields["transitions.2.to"] = "on_hold"
    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert response.status_code == 302
    page = text_of(client.get(response.headers["Location"]))
    assert "Draft saved. It is valid" in page
    assert 'aria-invalid="true"' not in page


def test_rows_are_added_and_removed_without_javascript(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    _, fields = open_editor(client, workflow_id)
    states = len(default_definition()["states"])
    transitions = len(default_definition()["transitions"])
    rules = len(default_definition()["rules"])
    # The blank rows a browser without scripts shows, one per list, filled in:
    fields[f"states.{states}.name"] = "escalated"
    fields[f"states.{states}.label"] = "Escalated"
    fields[f"states.{states}.category"] = "open"
    fields[f"transitions.{transitions}.name"] = "escalate"
    fields[f"transitions.{transitions}.from"] = "new, open"
    fields[f"transitions.{transitions}.to"] = "escalated"
    fields.setlist(f"transitions.{transitions}.roles", ["agent", "admin"])
    fields["transitions.4.from"] += ", escalated"  # solve
    fields[f"rules.{rules}.name"] = "tag_urgent"
    fields[f"rules.{rules}.trigger"] = "event"
    fields[f"rules.{rules}.event"] = "ticket.created"
    fields[f"rules.{rules}.if.0.field"] = "ticket.priority"
    fields[f"rules.{rules}.if.0.value"] = "urgent"
    fields[f"rules.{rules}.then.0.action"] = "add_tag"
    fields[f"rules.{rules}.then.0.value"] = "hot"
    fields["rules.5.remove"] = "1"  # escalate_unassigned_urgent
    fields["sla.on_warning.0.remove"] = "1"

    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert response.status_code == 302, response.get_data(as_text=True)
    draft = stored_draft(db_session, workflow_id)
    assert draft["states"][-1] == {"name": "escalated", "label": "Escalated", "category": "open"}
    assert draft["transitions"][-1] == {
        "name": "escalate",
        "from": ["new", "open"],
        "to": "escalated",
        "roles": ["agent", "admin"],
    }
    assert draft["rules"][-1] == {
        "name": "tag_urgent",
        "event": "ticket.created",
        "if": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}],
        "then": [{"action": "add_tag", "tag": "hot"}],
    }
    assert "escalate_unassigned_urgent" not in {r["name"] for r in draft["rules"]}
    assert draft["sla"]["on_warning"] == []
    assert len(draft["rules"]) == rules  # one removed, one added
    assert load_definition(draft)


def test_rule_and_sla_errors_are_placed_at_their_fields(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    _, fields = open_editor(client, workflow_id)
    # Values of the wrong kind first: validation checks the graph once they are right.
    fields["rules.3.after.days"] = "two"
    fields["sla.targets.urgent.first_response"] = "-5"
    fields["sla.warning_at"] = "2"
    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Not a valid number" in error_next_to(page, "rules.3.after.days")
    assert 'value="two"' in field_tag(page, "rules.3.after.days")
    assert "greater than 0" in error_next_to(page, "sla.targets.urgent.first_response")
    assert 'value="-5"' in field_tag(page, "sla.targets.urgent.first_response")
    assert "less than 1" in error_next_to(page, "sla.warning_at")

    fields["rules.3.after.days"] = "2"
    fields["sla.targets.urgent.first_response"] = "60"
    fields["sla.warning_at"] = "0.8"
    assert fields["rules.0.then.0.value"] == "resume"
    fields["rules.0.then.0.value"] = "resum"
    fields["rules.1.if.0.field"] = "ticket.mood"  # not offered, but a forged post may say it
    fields["rules.2.trigger"] = ""
    fields["sla.calendar.timezone"] = "Mars/Olympus"
    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error_next_to(page, "rules.0.then.0.value") == "Unknown transition 'resum'."
    assert "Unknown field 'ticket.mood'" in error_next_to(page, "rules.1.if.0.field")
    assert "ticket.mood (unknown)" in page, "the unknown value stays selected"
    assert "exactly one" in error_next_to(page, "rules.2.trigger")
    assert "Mars/Olympus" in error_next_to(page, "sla.calendar.timezone")

    fields["sla.calendar.timezone"] = "UTC"
    fields["sla.calendar.hours.tue"] = "8am-6pm"
    response = client.post(f"{BASE}/{workflow_id}/draft", data=fields)
    assert "8am" in error_next_to(response.get_data(as_text=True), "sla.calendar.hours.tue")


# -- the raw view ---------------------------------------------------------------------------------


def test_raw_yaml_with_a_syntax_error_is_answered_at_the_field(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    open_editor(client, workflow_id)
    token = csrf_token(client, f"{BASE}/{workflow_id}/draft")
    broken = "name: default\ninitial: new\nstates: [\n  {name: new, category: new\n"

    response = client.post(
        f"{BASE}/{workflow_id}/draft/raw",
        data={"csrf_token": token, "format": "yaml", "raw": broken},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    message = error_next_to(page, "raw")
    assert message.startswith("YAML syntax error on line ")
    textarea = re.search(r'<textarea[^>]*name="raw"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert html.unescape(textarea).removeprefix("\n") == broken, "the input is kept"
    assert 'data-view-panel="raw">' in page.replace(" hidden>", ">X"), "the raw view is shown"
    assert stored_draft(db_session, workflow_id) is None, "nothing was saved"

    response = client.post(
        f"{BASE}/{workflow_id}/draft/raw",
        data={"csrf_token": token, "format": "json", "raw": '{"name": "x",}'},
    )
    assert response.status_code == 422
    assert "JSON syntax error on line 1" in error_next_to(response.get_data(as_text=True), "raw")


def test_raw_edits_are_saved_and_their_errors_located(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    page = client.get(f"{BASE}/{workflow_id}/draft?view=raw").get_data(as_text=True)
    fields = form_fields(page, f"{BASE}/{workflow_id}/draft/raw")
    assert fields["format"] == "yaml"
    assert "- {name: new, label: New, category: new" in fields["raw"]
    fields["raw"] = fields["raw"].replace("to: on_hold", "to: limbo")

    response = client.post(f"{BASE}/{workflow_id}/draft/raw", data=fields)
    assert response.status_code == 422
    page = text_of(response)
    assert "transitions.2.to</code>: Unknown state 'limbo'." in page
    assert "to: limbo" in page, "the text is kept as typed"
    assert stored_draft(db_session, workflow_id)["transitions"][2]["to"] == "limbo"
    # ...and the form view shows the same error at the field.
    assert error_next_to(page, "transitions.2.to") == "Unknown state 'limbo'."

    json_page = client.get(f"{BASE}/{workflow_id}/draft?view=raw&format=json")
    fields = form_fields(json_page.get_data(as_text=True), f"{BASE}/{workflow_id}/draft/raw")
    assert fields["format"] == "json" and '"to": "limbo"' in fields["raw"]
    fields["raw"] = fields["raw"].replace('"limbo"', '"on_hold"')
    response = client.post(f"{BASE}/{workflow_id}/draft/raw", data=fields)
    assert response.status_code == 302
    assert load_definition(stored_draft(db_session, workflow_id))


def test_parts_the_form_cannot_show_are_named(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    draft = {**default_definition(), "colour": "teal"}
    drafts.do_save_draft(admin, workflow_id, draft)
    page, _ = open_editor(client, workflow_id)
    assert "parts the form cannot show: <code>colour</code>" in page
    assert "<span>colour</span>: Unknown field." in page, "in the summary, at no field"


# -- bad input never breaks a page ----------------------------------------------------------------


def test_bad_input_is_answered_not_a_server_error(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    token = csrf_token(client, f"{BASE}/")
    draft_url = f"{BASE}/{workflow_id}/draft"
    forms = [
        {},
        {"states.0.name": "x" * 10_000, "states.99999999999999.name": "y"},
        {"states.a.name": "x", "states": "flat", "states.0": "scalar", "rules.0.if": "z"},
        {"rules.0.name": "r", "rules.0.trigger": "after", "rules.0.after.days": "1e999"},
        {"rules.0.name": "r", "rules.0.then.0.action": "assign_team", "rules.0.then.0.value": "1"},
        {"rules.0.then.0.action": "assign_agent", "rules.0.then.0.value": "9" * 40},
        {"rules.0.name": "r", "rules.0.if.0.field": "ticket.tags", "rules.0.if.0.value": "NaN"},
        {"rules.0.name": "r", "rules.0.if.0.value": "[" * 5000},
        {"sla.enabled": "1", "sla.targets.low.resolution": "Infinity", "sla.warning_at": "x"},
        {"sla.enabled": "1", "sla.calendar.hours.mon": "25:00-26:00", "sla.pause_in": "nope"},
        {"sla.enabled": "1", "sla.calendar.holidays": "2026-02-30, tomorrow"},
        {f"states.{i}.name": f"s{i}" for i in range(400)},
    ]
    for data in forms:
        response = client.post(draft_url, data={"csrf_token": token, **data})
        assert response.status_code in (302, 422), (data, response.status_code)
        assert client.get(draft_url).status_code == 200, data
        assert client.get(f"{draft_url}?view=raw&format=json").status_code == 200, data
        assert client.get(f"{BASE}/{workflow_id}/draft/review").status_code == 200, data
        assert client.get(f"{draft_url}/diagram.svg").status_code in (200, 422), data
        assert client.get(f"{BASE}/").status_code == 200, data

    raws = [
        ("yaml", "- just\n- a list\n"),
        ("yaml", "!!python/object/apply:os.system ['true']"),
        ("yaml", "a: !!binary aGVsbG8=\n"),
        ("yaml", "a: .nan\n"),
        ("yaml", "1: one\n"),
        ("yaml", ALIAS_BOMB),
        ("yaml", "[" * 3000),
        ("json", '{"a": NaN}'),
        ("json", "[" * 3000),
        ("json", '{"a": ' + "9" * 5000 + "}"),
        ("toml", "a = 1"),
        ("yaml", "x" * 200_001),
    ]
    for fmt, raw in raws:
        response = client.post(
            f"{draft_url}/raw", data={"csrf_token": token, "format": fmt, "raw": raw}
        )
        assert response.status_code == 422, (fmt, raw[:50], response.status_code)
        assert error_next_to(response.get_data(as_text=True), "raw"), (fmt, raw[:50])

    dates = client.post(
        f"{draft_url}/raw",
        data={"csrf_token": token, "format": "yaml", "raw": "name: d\nwhen: 2026-12-25\n"},
    )
    assert dates.status_code == 422  # saved (dates stay text), but not a valid workflow
    assert stored_draft(db_session, workflow_id)["when"] == "2026-12-25"

    for limit in ("", "abc", "0", "-1", "501", "1.5", "9" * 30):
        response = client.get(f"{BASE}/{workflow_id}/draft/review?limit={limit}")
        assert response.status_code == 422, limit
        assert "1 to 500" in error_next_to(response.get_data(as_text=True), "limit")
    publish_url = f"{BASE}/{workflow_id}/draft/publish"
    for data in (
        {"note": "n" * 5001},
        {"move_tickets": "1", "state_map.": "x", "state_map." + "s" * 60: "open"},
    ):
        response = client.post(publish_url, data={"csrf_token": token, **data})
        assert response.status_code == 422, data
    assert workflow_admin_version_count(db_session, workflow_id) == 1
    for url in (
        f"{BASE}/999999/draft",
        f"{BASE}/{workflow_id}/versions/7",
        f"{BASE}/{workflow_id}/versions/7/diagram.svg",
        f"{BASE}/999999/draft/review",
    ):
        assert client.get(url).status_code == 404, url


# -- versions, diagrams ---------------------------------------------------------------------------


def test_a_version_page_shows_the_definition_and_its_diagram(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    response = client.get(f"{BASE}/{workflow_id}/versions/1")
    assert response.status_code == 200
    page = text_of(response)
    assert f'src="{BASE}/{workflow_id}/versions/1/diagram.svg"' in page
    assert "Waiting on customer" in page and "auto_close_solved" in page
    assert "4 days after <code>solved_at</code>" in page
    assert "<code>notify team_lead</code> “SLA breached.”" in page
    assert "New tickets use it" in page

    svg = client.get(f"{BASE}/{workflow_id}/versions/1/diagram.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert 'data-state="on_hold"' in svg.get_data(as_text=True)

    assert client.get(f"{BASE}/{workflow_id}/draft/diagram.svg").status_code == 404  # no draft
    drafts.do_save_draft(admin, workflow_id, {"states": "nothing to draw"})
    broken = client.get(f"{BASE}/{workflow_id}/draft/diagram.svg")
    assert broken.status_code == 422 and broken.mimetype == "text/plain"
    review = client.get(f"{BASE}/{workflow_id}/draft/review").get_data(as_text=True)
    assert "cannot be drawn" in review and "diagram.svg" not in review


# -- simulating and publishing --------------------------------------------------------------------


def test_simulation_shows_per_ticket_differences(client, admin, factory, db_session):
    customer = factory.customer()
    urgent = factory.ticket(customer, subject="Server down", priority=Priority.URGENT)
    calm = factory.ticket(customer, subject="A question")
    drain(db_session)  # SLA clocks and rules, so the tickets have a recorded history
    workflow_id = default_workflow_id(db_session)
    draft = default_definition()
    draft["rules"].append(
        {
            "name": "tag_urgent",
            "event": "ticket.created",
            "if": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}],
            "then": [{"action": "add_tag", "tag": "hot"}],
        }
    )
    drafts.do_save_draft(admin, workflow_id, draft)

    page = text_of(client.get(f"{BASE}/{workflow_id}/draft/review"))
    assert f'src="{BASE}/{workflow_id}/draft/diagram.svg"' in page
    assert "The draft is valid" in page
    response = client.get(f"{BASE}/{workflow_id}/draft/review?limit=10")
    assert response.status_code == 200
    page = text_of(response)
    assert "Replayed 2 tickets: 1 would go differently</strong>; 1 with caveats." in page
    ticket_block = re.search(r'<li class="wf-sim-ticket">.*?</div>', page, re.S).group(0)
    assert f"#{urgent.id}</a> Server down" in ticket_block
    assert "<code>tag_urgent</code>" in ticket_block and "(ticket.created)" in ticket_block
    caveats = ticket_block.split("What the simulation could not model for this ticket:")[1]
    assert "Rule 'tag_urgent' would fire under the draft" in caveats
    assert f"#{calm.id}</a>" in page.split("would go exactly the same")[1]
    assert 'value="10"' in field_tag(page, "limit")

    drafts.do_save_draft(admin, workflow_id, {**draft, "initial": "nowhere"})
    refused = client.get(f"{BASE}/{workflow_id}/draft/review?limit=10")
    assert refused.status_code == 422
    page = text_of(refused)
    assert "not valid" in error_next_to(page, "limit")
    assert f'href="{BASE}/{workflow_id}/draft?view=form#f-initial"' in page


def test_publishing_with_a_missing_state_map_entry_is_refused_at_it(
    client, admin, factory, db_session
):
    customer = factory.customer()
    waiting = factory.ticket(customer)  # in "new"
    working = factory.ticket(customer)
    tickets.do_transition(admin, working.id, "start")
    workflow_id = default_workflow_id(db_session)
    draft = default_definition()
    draft["initial"] = "open"
    draft["states"] = [s for s in draft["states"] if s["name"] != "new"]
    draft["transitions"] = [t for t in draft["transitions"] if t["name"] != "start"]
    for transition in draft["transitions"]:
        transition["from"] = [s for s in transition["from"] if s != "new"]
    draft["rules"] = [r for r in draft["rules"] if r["name"] != "start_on_first_agent_reply"]
    drafts.do_save_draft(admin, workflow_id, draft)

    page = client.get(f"{BASE}/{workflow_id}/draft/review").get_data(as_text=True)
    fields = form_fields(page, f"{BASE}/{workflow_id}/draft/publish")
    assert fields["state_map.open"] == "open", "a state that stays maps to itself"
    assert fields["state_map.new"] == "", "a state that vanishes needs a choice"
    assert "(not in the draft)" in page
    fields["move_tickets"] = "1"
    fields["note"] = "No more new"

    response = client.post(f"{BASE}/{workflow_id}/draft/publish", data=fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "in use by 1 ticket" in error_next_to(page, "state_map.new")
    assert "No more new" in page, "the note is kept"
    assert 'name="move_tickets" value="1" checked' in page
    assert workflow_admin_version_count(db_session, workflow_id) == 1

    fields["state_map.new"] = "open"
    response = client.post(f"{BASE}/{workflow_id}/draft/publish", data=fields)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{BASE}/#workflow-{workflow_id}")
    db_session.expire_all()
    moved = db_session.get(Ticket, waiting.id)
    assert moved.status == "open"
    page = text_of(client.get(f"{BASE}/"))
    assert "Published default version 2." in page
    row = re.search(r"Version 2</a>.*?</tr>", page, re.S).group(0)
    assert "No more new" in row and "Ada Admin" in row and "<td>2</td>" in row


def test_publishing_an_invalid_draft_is_refused(client, admin, db_session):
    workflow_id = default_workflow_id(db_session)
    drafts.do_save_draft(admin, workflow_id, {**default_definition(), "initial": "x"})
    token = csrf_token(client, f"{BASE}/")
    response = client.post(
        f"{BASE}/{workflow_id}/draft/publish", data={"csrf_token": token, "note": "try"}
    )
    assert response.status_code == 422
    page = text_of(response)
    assert "The draft is not valid" in page and "Unknown state 'x'." in page
    assert workflow_admin_version_count(db_session, workflow_id) == 1
