"""Request forms through the API: admins define them (audited; bad input at its field); a
ticket opened with a form asks its required fields (422 at ``fields.<key>``), lands in the
form's team (where assignment picks it up) and records the form; retired forms are refused for
new tickets; a customer is never asked, and cannot set, a staff-only field; staff move a
ticket to another form."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from tests.factories import ApiClient, assert_error, drain

SEVERITIES = [{"value": "low", "label": "Low"}, {"value": "crash", "label": "It crashes"}]


@pytest.fixture
def admin_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.admin())


@pytest.fixture
def customer_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.customer())


def define(api: ApiClient, key: str, type_: str, **more: Any) -> dict[str, Any]:
    body = {"key": key, "label": key.capitalize(), "type": type_, **more}
    response = api.post("/api/ticket-fields", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def fields(admin_api) -> None:
    define(admin_api, "severity", "dropdown", options=SEVERITIES, visibility="customer_editable")
    define(admin_api, "version", "text", visibility="customer_editable")
    define(admin_api, "triage", "text")  # staff only


@pytest.fixture
def bugs_team(factory):
    return factory.team("Bugs")


@pytest.fixture
def bug_form(admin_api, fields, bugs_team) -> dict[str, Any]:
    response = admin_api.post(
        "/api/request-forms",
        json={
            "key": "bug",
            "name": "Bug report",
            "description": "Something does not work.",
            "team_id": bugs_team.id,
            "fields": [
                {"key": "severity", "required": True},
                {"key": "version"},
                {"key": "triage", "required": True},
            ],
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_ticket(api: ApiClient, **more: Any):
    return api.post("/api/tickets", json={"subject": "Crash", "description": "Boom.", **more})


def test_admins_create_list_change_and_delete_forms_audited(admin_api, bug_form, db_session):
    assert bug_form["team_name"] == "Bugs"
    assert bug_form["fields"] == [
        {"key": "severity", "required": True},
        {"key": "version", "required": False},
        {"key": "triage", "required": True},
    ]
    billing = admin_api.post("/api/request-forms", json={"key": "billing", "name": "Billing"})
    assert billing.status_code == 201
    listed = admin_api.get("/api/request-forms").get_json()["items"]
    assert [f["name"] for f in listed] == ["Bug report", "Billing"]
    changed = admin_api.patch(
        f"/api/request-forms/{billing.get_json()['id']}",
        json={"name": "Billing question", "position": 0, "fields": [{"key": "version"}]},
    )
    assert changed.status_code == 200, changed.get_json()
    listed = admin_api.get("/api/request-forms").get_json()["items"]
    assert [f["name"] for f in listed] == ["Billing question", "Bug report"]
    retired = admin_api.patch(f"/api/request-forms/{bug_form['id']}", json={"active": False})
    assert retired.get_json()["active"] is False
    assert [f["key"] for f in admin_api.get("/api/request-forms").get_json()["items"]] == [
        "billing"
    ]
    every = admin_api.get("/api/request-forms?include_retired=true").get_json()["items"]
    assert {f["key"] for f in every} == {"bug", "billing"}
    deleted = admin_api.delete(f"/api/request-forms/{billing.get_json()['id']}")
    assert deleted.get_json() == {"id": billing.get_json()["id"], "deleted": True}
    actions = db_session.scalars(
        select(AdminAuditEntry.action)
        .where(AdminAuditEntry.target_type == "request_form")
        .order_by(AdminAuditEntry.id)
    ).all()
    assert actions == [
        "request_form.created",
        "request_form.created",
        "request_form.updated",
        "request_form.updated",
        "request_form.deleted",
    ]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"key": "bug", "name": "Another"}, "key"),
        ({"key": "other", "name": "Bug report"}, "name"),
        ({"key": "Not A Key", "name": "X"}, "key"),
        ({"key": "x", "name": "X", "fields": [{"key": "nope"}]}, "fields"),
        ({"key": "x", "name": "X", "fields": [{"key": "version"}, {"key": "version"}]}, "fields"),
        ({"key": "x", "name": "X", "team_id": 99999}, "team_id"),
        ({"key": "x", "name": "   "}, "name"),
        ({"key": "x"}, "name"),
    ],
)
def test_bad_forms_are_refused_at_their_field(admin_api, bug_form, body, where):
    errors = assert_error(admin_api.post("/api/request-forms", json=body), 422)["errors"]
    assert where in errors.get("json", errors), errors


def test_only_admins_manage_forms_and_a_used_form_is_retired_not_deleted(
    client, factory, admin_api, bug_form, customer_api
):
    agent_api = ApiClient(client, factory.agent())
    assert_error(agent_api.post("/api/request-forms", json={"key": "a", "name": "A"}), 403)
    assert_error(agent_api.patch(f"/api/request-forms/{bug_form['id']}", json={"name": "B"}), 403)
    assert_error(agent_api.delete(f"/api/request-forms/{bug_form['id']}"), 403)
    assert_error(agent_api.get("/api/request-forms?include_retired=true"), 403)
    assert open_ticket(customer_api, form="bug", fields={"severity": "low"}).status_code == 201
    refused = assert_error(admin_api.delete(f"/api/request-forms/{bug_form['id']}"), 422)
    assert "active" in refused["errors"]
    taken = assert_error(admin_api.delete("/api/ticket-fields/0"), 404)
    assert taken
    severity = next(
        f for f in admin_api.get("/api/ticket-fields").get_json()["items"] if f["key"] == "severity"
    )
    asked = assert_error(admin_api.delete(f"/api/ticket-fields/{severity['id']}"), 422)
    assert "Bug report" in asked["errors"]["key"][0]


def test_a_customer_files_with_a_form_its_team_takes_it_and_assigns_it(
    customer_api, bug_form, bugs_team, factory, db_session
):
    agent = factory.agent(bugs_team)
    customers_view = customer_api.get("/api/request-forms").get_json()["items"][0]
    assert customers_view["fields"] == [
        {"key": "severity", "required": True},
        {"key": "version", "required": False},
    ]  # the staff-only triage field is not theirs to fill
    missing = assert_error(open_ticket(customer_api, form="bug"), 422)
    assert missing["errors"] == {"fields.severity": ["Required on the Bug report form."]}
    staff_only = assert_error(
        open_ticket(customer_api, form=bug_form["id"], fields={"severity": "low", "triage": "x"}),
        422,
    )
    assert list(staff_only["errors"]) == ["fields.triage"]
    wrong_and_missing = assert_error(
        open_ticket(customer_api, form="bug", fields={"version": 7}), 422
    )
    assert set(wrong_and_missing["errors"]) == {"fields.version", "fields.severity"}
    made = open_ticket(
        customer_api, form="bug", fields={"severity": "crash", "version": "2.1"}
    ).get_json()
    assert made["form_id"] == bug_form["id"]
    assert made["form_name"] == "Bug report"
    assert made["team_id"] == bugs_team.id
    assert made["fields"] == {"severity": "crash", "version": "2.1"}
    drain(db_session)
    read = customer_api.get(f"/api/tickets/{made['id']}").get_json()
    assert read["form_name"] == "Bug report"
    staff_read = ApiClient(customer_api.client, agent).get(f"/api/tickets/{made['id']}")
    assert staff_read.get_json()["assignee_id"] == agent.id


def test_staff_must_fill_staff_fields_too_and_may_name_another_team(admin_api, bug_form, factory):
    other = factory.team("Other")
    customer = factory.customer()
    body = {"form": "bug", "requester_id": customer.id, "fields": {"severity": "low"}}
    missing = assert_error(open_ticket(admin_api, **body), 422)
    assert missing["errors"] == {"fields.triage": ["Required on the Bug report form."]}
    body["fields"]["triage"] = "seen it"
    made = open_ticket(admin_api, **body, team_id=other.id).get_json()
    assert made["team_id"] == other.id and made["form_id"] == bug_form["id"]


def test_unknown_and_retired_forms_are_refused_for_new_tickets(admin_api, customer_api, bug_form):
    for ref in ("nope", 99999, True, "", 2**40):
        errors = assert_error(open_ticket(customer_api, form=ref), 422)["errors"]
        assert "form" in errors.get("json", errors), ref
    admin_api.patch(f"/api/request-forms/{bug_form['id']}", json={"active": False})
    retired = assert_error(open_ticket(customer_api, form="bug", fields={"severity": "low"}), 422)
    assert retired["errors"]["form"] == ["The form 'Bug report' is retired: choose another."]
    assert customer_api.get("/api/request-forms").get_json()["items"] == []


def test_staff_change_a_tickets_form_customers_cannot(
    client, factory, admin_api, customer_api, bug_form, bugs_team
):
    other = admin_api.post("/api/request-forms", json={"key": "billing", "name": "Billing"})
    ticket = open_ticket(customer_api, form="bug", fields={"severity": "low"}).get_json()
    refused = assert_error(
        customer_api.patch(f"/api/tickets/{ticket['id']}", json={"form": "billing"}), 422
    )
    assert "form" in refused["errors"]
    agent_api = ApiClient(client, factory.agent(bugs_team))
    moved = agent_api.patch(f"/api/tickets/{ticket['id']}", json={"form": "billing"})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["form_id"] == other.get_json()["id"]
    assert moved.get_json()["team_id"] == bugs_team.id  # moving forms reroutes nothing
    admin_api.patch(f"/api/request-forms/{other.get_json()['id']}", json={"active": False})
    kept = agent_api.patch(f"/api/tickets/{ticket['id']}", json={"priority": "high"})
    assert kept.get_json()["form_name"] == "Billing"
    cleared = agent_api.patch(f"/api/tickets/{ticket['id']}", json={"form": None})
    assert cleared.get_json()["form_id"] is None
    retired_again = assert_error(
        agent_api.patch(f"/api/tickets/{ticket['id']}", json={"form": "billing"}), 422
    )
    assert "form" in retired_again["errors"]
    trail = agent_api.get(f"/api/tickets/{ticket['id']}/events").get_json()
    assert any("Request form changed" in (e.get("summary") or "") for e in trail)
