"""Workflow administration through the API, end to end: copy the default workflow, edit the
draft (kept as entered, errors by location), draw it, simulate it against recorded tickets,
publish it; new tickets follow the new version while old ones keep theirs, unless a state map
moves them. Admins only."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.engine.models import WorkflowVersion
from autocrm.sla.models import SlaClock
from autocrm.tickets import priority_cap
from autocrm.tickets.models import Ticket, TicketEvent
from tests.factories import ApiClient, assert_error, drain
from workflows import default_definition

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


# -- helpers ------------------------------------------------------------------------------------


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def put(api: ApiClient, url: str, **kw: Any) -> Any:
    return api.client.put(url, headers=api.headers, **kw)


def new_ticket(api: ApiClient, db_session: Any, **fields: Any) -> dict[str, Any]:
    body = {"subject": "Printer on fire", "description": "It is on fire.", **fields}
    ticket = ok(api.post("/api/tickets", json=body), 201)
    drain(db_session, ticket_id=ticket["id"])
    return ok(api.get(f"/api/tickets/{ticket['id']}"))


def escalation_draft() -> dict[str, Any]:
    """The default workflow plus a state ``escalated`` (open), a transition into it, a way
    out, and a rule tagging urgent tickets as they arrive."""
    draft = copy.deepcopy(default_definition())
    draft["name"] = "escalations"
    draft["states"].append({"name": "escalated", "category": "open", "label": "Escalated"})
    draft["transitions"].append(
        {
            "name": "escalate",
            "from": ["new", "open"],
            "to": "escalated",
            "roles": ["agent", "admin"],
        }
    )
    solve = next(t for t in draft["transitions"] if t["name"] == "solve")
    solve["from"].append("escalated")
    draft["rules"].append(
        {
            "name": "tag_urgent",
            "event": "ticket.created",
            "if": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}],
            "then": [{"action": "add_tag", "tag": "hot"}],
        }
    )
    return draft


@pytest.fixture
def admin(client, factory) -> ApiClient:
    return ApiClient(client, factory.admin())


@pytest.fixture
def customer(client, factory) -> ApiClient:
    return ApiClient(client, factory.customer())


def default_workflow(admin: ApiClient) -> dict[str, Any]:
    return next(w for w in ok(admin.get("/api/workflows")) if w["name"] == "default")


def create_copy(admin: ApiClient, name: str = "escalations") -> dict[str, Any]:
    source = default_workflow(admin)
    return ok(admin.post("/api/workflows", json={"name": name, "copy_from": source["id"]}), 201)


# -- the whole story ----------------------------------------------------------------------------


def test_copy_edit_validate_simulate_publish_and_new_tickets_follow(admin, customer, db_session):
    priority_cap.do_set_customer_max_priority(admin.user, "urgent")  # the customer files urgent
    before = new_ticket(customer, db_session, priority="urgent")  # installs the default workflow
    plain = new_ticket(customer, db_session)
    assert before["tags"] == []  # the default workflow has no tagging rule

    workflow = create_copy(admin)
    assert workflow["versions"] == []
    assert workflow["is_default"] is False
    assert [s["name"] for s in workflow["draft"]["states"]] == [
        s["name"] for s in default_definition()["states"]
    ]
    assert workflow["draft"]["name"] == "escalations"
    listed = {w["name"]: w for w in ok(admin.get("/api/workflows"))}
    assert listed["escalations"]["latest_version"] is None
    assert listed["escalations"]["has_draft"] is True
    assert listed["default"]["latest_version"] == 1
    assert listed["default"]["is_default"] is True
    base = f"/api/workflows/{workflow['id']}"

    # A typo in the new transition: saved as entered, errors at the field.
    bad = escalation_draft()
    bad["transitions"][-1]["to"] = "escalatd"
    index = len(bad["transitions"]) - 1
    saved = ok(put(admin, f"{base}/draft", json={"definition": bad}))
    assert saved["valid"] is False
    assert saved["draft"] == bad
    assert saved["errors"] == {f"transitions.{index}.to": ["Unknown state 'escalatd'."]}
    assert ok(admin.get(base))["draft"] == bad, "nothing entered is lost"
    checked = ok(admin.post(f"{base}/draft/validate", json={}))
    assert checked == {"valid": False, "errors": saved["errors"]}
    refused = assert_error(admin.post(f"{base}/draft/simulate", json={}), 422)
    assert refused["errors"] == saved["errors"]
    refused = assert_error(admin.post(f"{base}/draft/publish", json={}), 422)
    assert refused["errors"] == saved["errors"]
    # Even the broken draft can be drawn: the diagram is how the admin finds the typo.
    diagram = admin.get(f"{base}/draft/diagram.svg")
    assert diagram.status_code == 200
    assert diagram.mimetype == "image/svg+xml"
    assert 'data-state="escalated"' in diagram.get_data(as_text=True)

    fixed = ok(put(admin, f"{base}/draft", json={"definition": escalation_draft()}))
    assert fixed == {"valid": True, "errors": {}, "draft": escalation_draft()}
    assert ok(admin.post(f"{base}/draft/validate")) == {"valid": True, "errors": {}}

    # Simulated against the recorded tickets: only the urgent one would go differently.
    assert ok(admin.post(f"{base}/draft/simulate"))["summary"]["simulated"] == 2  # default: 50
    report = ok(admin.post(f"{base}/draft/simulate", json={"limit": 10}))
    by_id = {t["ticket_id"]: t for t in report["tickets"]}
    assert {before["id"], plain["id"]} <= set(by_id)
    assert report["summary"]["simulated"] == len(report["tickets"])
    assert [d["rule"] for d in by_id[before["id"]]["would_fire_not_fired"]] == ["tag_urgent"]
    assert by_id[before["id"]]["would_fire_not_fired"][0]["trigger"] == "ticket.created"
    assert by_id[before["id"]]["fired_would_not"] == []
    assert by_id[before["id"]]["differs"] is True
    assert by_id[plain["id"]]["differs"] is False
    # The tag it would add is not applied to the replay: the ticket says so.
    [caveat] = by_id[before["id"]]["caveats"]
    assert "'tag_urgent'" in caveat and "not simulated" in caveat
    assert by_id[plain["id"]]["caveats"] == []
    assert report["summary"]["with_caveats"] == 1
    assert set(by_id[plain["id"]]["sla"]) == {"first_response", "resolution"}
    assert by_id[plain["id"]]["sla"]["first_response"]["actual"] == "open"

    version = ok(
        admin.post(f"{base}/draft/publish", json={"note": "Escalations", "make_default": True}),
        201,
    )
    assert version["number"] == 1
    assert version["note"] == "Escalations"
    assert version["published_by_id"] == admin.user.id
    stored = ok(admin.get(f"{base}/versions/1"))
    assert "escalated" in {s["name"] for s in stored["definition"]["states"]}
    shown = ok(admin.get(base))
    assert [v["number"] for v in shown["versions"]] == [1]
    assert shown["is_default"] is True
    assert shown["draft"] == escalation_draft(), "the draft stays, for further edits"
    listed = {w["name"]: w for w in ok(admin.get("/api/workflows"))}
    assert listed["default"]["is_default"] is False

    after = new_ticket(customer, db_session, priority="urgent")
    assert after["workflow_version_id"] != before["workflow_version_id"]
    assert after["tags"] == ["hot"], "the new version's rule ran"
    assert (
        ok(admin.get(f"/api/tickets/{before['id']}"))["workflow_version_id"]
        == before["workflow_version_id"]
    ), "old tickets keep their version"
    escalated = ok(admin.post(f"/api/tickets/{after['id']}/transitions", json={"name": "escalate"}))
    assert escalated["status"] == "escalated"
    refused = assert_error(
        admin.post(f"/api/tickets/{before['id']}/transitions", json={"name": "escalate"}), 422
    )
    assert "escalate" in refused["message"]


def test_publishing_with_a_state_map_moves_tickets_in_flight(admin, customer, db_session):
    new_ticket(customer, db_session)  # installs the default workflow
    workflow = create_copy(admin)
    base = f"/api/workflows/{workflow['id']}"
    ok(put(admin, f"{base}/draft", json={"definition": escalation_draft()}))
    ok(admin.post(f"{base}/draft/publish", json={"make_default": True}), 201)
    waiting = new_ticket(customer, db_session)
    working = new_ticket(customer, db_session)
    ok(admin.post(f"/api/tickets/{working['id']}/transitions", json={"name": "start"}))
    done = new_ticket(customer, db_session)
    for name in ("solve", "close"):
        ok(admin.post(f"/api/tickets/{done['id']}/transitions", json={"name": name}))

    # Version 2 drops "new": tickets waiting there must go somewhere.
    draft = escalation_draft()
    draft["initial"] = "open"
    draft["states"] = [s for s in draft["states"] if s["name"] != "new"]
    for transition in draft["transitions"]:
        transition["from"] = [s for s in transition["from"] if s != "new"]
    draft["transitions"] = [t for t in draft["transitions"] if t["name"] != "start"]
    draft["rules"] = [r for r in draft["rules"] if r["name"] != "start_on_first_agent_reply"]
    saved = ok(put(admin, f"{base}/draft", json={"definition": draft}))
    assert saved["valid"], saved["errors"]

    missing = assert_error(
        admin.post(f"{base}/draft/publish", json={"state_map": {"open": "open"}}), 422
    )
    assert set(missing["errors"]) == {"state_map.new"}
    assert "in use" in missing["errors"]["state_map.new"][0]
    unknown = assert_error(
        admin.post(f"{base}/draft/publish", json={"state_map": {"new": "nowhere", "open": "open"}}),
        422,
    )
    assert set(unknown["errors"]) == {"state_map.new"}
    assert "nowhere" in unknown["errors"]["state_map.new"][0]
    assert [v["number"] for v in ok(admin.get(base))["versions"]] == [1], "nothing published"

    second = ok(
        admin.post(
            f"{base}/draft/publish", json={"state_map": {"new": "escalated", "open": "open"}}
        ),
        201,
    )
    assert second["number"] == 2
    version_2 = db_session.scalar(
        select(WorkflowVersion.id).where(
            WorkflowVersion.workflow_id == workflow["id"], WorkflowVersion.number == 2
        )
    )
    moved = ok(admin.get(f"/api/tickets/{waiting['id']}"))
    assert moved["status"] == "escalated"
    assert moved["workflow_version_id"] == version_2
    assert db_session.get(Ticket, waiting["id"]).category == "open"
    still_open = ok(admin.get(f"/api/tickets/{working['id']}"))
    assert (still_open["status"], still_open["workflow_version_id"]) == ("open", version_2)
    closed = ok(admin.get(f"/api/tickets/{done['id']}"))
    assert closed["workflow_version_id"] == waiting["workflow_version_id"], "closed: not moved"

    [trail] = db_session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == waiting["id"], TicketEvent.kind == "workflow.migrated"
        )
    ).all()
    assert (trail.from_state, trail.to_state) == ("new", "escalated")
    assert trail.actor_id == admin.user.id
    assert trail.data["from_version"] == 1
    assert trail.data["to_version"] == 2
    # The moved ticket runs on version 2 now: "solve" from escalated is allowed there.
    solved = ok(admin.post(f"/api/tickets/{waiting['id']}/transitions", json={"name": "solve"}))
    assert solved["status"] == "solved"


def test_a_state_map_enters_the_new_states_as_a_transition_would(admin, customer, db_session):
    """Timestamps and SLA clocks follow the category each ticket enters, at publish time: one
    mapped into closed has closed_at, into solved a resolution time, out of solved neither."""
    new_ticket(customer, db_session)
    workflow = create_copy(admin)
    base = f"/api/workflows/{workflow['id']}"
    ok(admin.post(f"{base}/draft/publish", json={"make_default": True}), 201)
    to_solve = new_ticket(customer, db_session)
    to_close = new_ticket(customer, db_session)
    ok(admin.post(f"/api/tickets/{to_close['id']}/transitions", json={"name": "start"}))
    to_reopen = new_ticket(customer, db_session)
    ok(admin.post(f"/api/tickets/{to_reopen['id']}/transitions", json={"name": "solve"}))
    assert ok(admin.get(f"/api/tickets/{to_reopen['id']}"))["solved_at"] is not None

    state_map = {"new": "solved", "open": "closed", "solved": "open"}
    ok(admin.post(f"{base}/draft/publish", json={"state_map": state_map}), 201)

    def moved(ticket: dict[str, Any]) -> tuple[dict[str, Any], Ticket, dict[str, SlaClock]]:
        row = db_session.get(Ticket, ticket["id"])
        db_session.refresh(row)
        clocks = db_session.scalars(select(SlaClock).where(SlaClock.ticket_id == row.id))
        return ok(admin.get(f"/api/tickets/{row.id}")), row, {c.metric: c for c in clocks}

    closed, closed_row, closed_clocks = moved(to_close)
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    assert closed_row.closed_at == closed_row.status_changed_at
    assert {c.stopped_at for c in closed_clocks.values()} == {closed_row.status_changed_at}

    solved, solved_row, solved_clocks = moved(to_solve)
    assert (solved["status"], solved["closed_at"]) == ("solved", None)
    assert solved_row.solved_at == solved_row.status_changed_at
    assert solved_row.resolution_business_seconds is not None
    assert {c.stopped_at for c in solved_clocks.values()} == {solved_row.status_changed_at}

    reopened, reopened_row, reopened_clocks = moved(to_reopen)
    assert reopened["status"] == "open"
    assert (reopened["solved_at"], reopened["closed_at"]) == (None, None)
    assert reopened_row.resolution_business_seconds is None
    resolution = reopened_clocks["resolution"]
    assert resolution.started_at == reopened_row.status_changed_at
    assert resolution.stopped_at is None and resolution.due_at is not None


def test_without_a_state_map_tickets_stay_on_their_version(admin, customer, db_session):
    new_ticket(customer, db_session)
    workflow = create_copy(admin)
    base = f"/api/workflows/{workflow['id']}"
    ok(admin.post(f"{base}/draft/publish", json={"make_default": True}), 201)
    ticket = new_ticket(customer, db_session)
    ok(admin.post(f"{base}/draft/publish", json={}), 201)

    assert (
        ok(admin.get(f"/api/tickets/{ticket['id']}"))["workflow_version_id"]
        == ticket["workflow_version_id"]
    )
    later = new_ticket(customer, db_session)
    assert later["workflow_version_id"] != ticket["workflow_version_id"], "v2 is the newest"


def test_simulation_compares_the_draft_with_the_version_the_ticket_ran_on(
    admin, customer, client, factory, db_session
):
    """Both sides are replays of the same trail (messages included): rules that only leave a
    notification, like ask_for_feedback, count as much as those that move the ticket."""
    agent = ApiClient(client, factory.agent())
    ticket = new_ticket(customer, db_session)
    ok(agent.post(f"/api/tickets/{ticket['id']}/messages", json={"body": "On it."}), 201)
    drain(db_session, ticket_id=ticket["id"])  # start_on_first_agent_reply moves it to open
    assert ok(admin.get(f"/api/tickets/{ticket['id']}"))["status"] == "open"
    ok(agent.post(f"/api/tickets/{ticket['id']}/transitions", json={"name": "solve"}))
    drain(db_session, ticket_id=ticket["id"])  # ask_for_feedback: only a notification shows it
    workflow = create_copy(admin)
    base = f"/api/workflows/{workflow['id']}"

    def report_for(draft: dict[str, Any]) -> dict[str, Any]:
        ok(put(admin, f"{base}/draft", json={"definition": draft}))
        report = ok(admin.post(f"{base}/draft/simulate", json={"limit": 1}))
        [only] = report["tickets"]
        assert only["ticket_id"] == ticket["id"]
        return only

    unchanged = report_for(ok(admin.get(base))["draft"])
    assert unchanged["differs"] is False, unchanged
    assert unchanged["caveats"] == [] and unchanged["transitions"] == unchanged["states"] == []
    first_response = unchanged["sla"]["first_response"]
    assert first_response["published"] == first_response["draft"] == "met"
    assert first_response["published_due_at"] == first_response["draft_due_at"] is not None
    assert first_response["actual"] == "met", "older clients read the published outcome"

    without = copy.deepcopy(default_definition())
    without["rules"] = [r for r in without["rules"] if r["name"] != "start_on_first_agent_reply"]
    removed = report_for(without)
    assert [d["rule"] for d in removed["fired_would_not"]] == ["start_on_first_agent_reply"]
    assert removed["fired_would_not"][0]["trigger"] == "message.created"
    assert removed["would_fire_not_fired"] == []

    silent = copy.deepcopy(default_definition())
    silent["rules"] = [r for r in silent["rules"] if r["name"] != "ask_for_feedback"]
    assert [d["rule"] for d in report_for(silent)["fired_would_not"]] == ["ask_for_feedback"]

    no_solving_open = copy.deepcopy(default_definition())
    solve = next(t for t in no_solving_open["transitions"] if t["name"] == "solve")
    solve["from"].remove("open")
    refused = report_for(no_solving_open)
    assert [(t["transition"], t["published"], t["draft"]) for t in refused["transitions"]] == [
        ("solve", "allowed", "refused")
    ]
    assert [(s["event"], s["published"], s["draft"]) for s in refused["states"]] == [
        ("solve", "solved", "open")
    ]
    assert any("would refuse 'solve'" in caveat for caveat in refused["caveats"])


# -- diagrams, reading, errors ------------------------------------------------------------------


def test_diagrams_of_versions_and_drafts_are_svg(admin, customer, db_session):
    new_ticket(customer, db_session)
    default = default_workflow(admin)

    response = admin.get(f"/api/workflows/{default['id']}/versions/1/diagram.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert SVG_NS in svg
    assert 'data-state="on_hold"' in svg
    # The installed default has no draft yet.
    assert_error(admin.get(f"/api/workflows/{default['id']}/draft/diagram.svg"), 404)
    assert_error(admin.get(f"/api/workflows/{default['id']}/versions/2/diagram.svg"), 404)

    workflow = create_copy(admin)
    base = f"/api/workflows/{workflow['id']}"
    ok(put(admin, f"{base}/draft", json={"definition": {"states": "nothing to draw"}}))
    assert_error(admin.get(f"{base}/draft/diagram.svg"), 422)


def test_version_reads_and_unknown_ids(admin, customer, db_session):
    new_ticket(customer, db_session)
    default = default_workflow(admin)

    version = ok(admin.get(f"/api/workflows/{default['id']}/versions/1"))
    assert version["number"] == 1
    assert version["definition"]["initial"] == "new"
    assert_error(admin.get(f"/api/workflows/{default['id']}/versions/9"), 404)
    assert_error(admin.get("/api/workflows/999999"), 404)
    assert_error(put(admin, "/api/workflows/999999/draft", json={"definition": {}}), 404)
    assert_error(admin.post(f"/api/workflows/{default['id']}/draft/validate", json={}), 404)


def test_creating_workflows(admin):
    blank = ok(admin.post("/api/workflows", json={"name": "bundled"}), 201)
    assert blank["draft"]["initial"] == "new"
    assert blank["draft"]["name"] == "bundled"
    given = {"name": "tiny", "states": []}
    entered = ok(admin.post("/api/workflows", json={"name": "entered", "definition": given}), 201)
    assert entered["draft"] == given

    taken = assert_error(admin.post("/api/workflows", json={"name": "bundled"}), 422)
    assert "name" in taken["errors"]
    unknown = assert_error(
        admin.post("/api/workflows", json={"name": "x", "copy_from": 99999}), 422
    )
    assert "copy_from" in unknown["errors"]
    nothing = assert_error(
        admin.post("/api/workflows", json={"name": "y", "copy_from": blank["id"]}), 422
    )
    assert "no published version" in nothing["errors"]["copy_from"][0]
    both = assert_error(
        admin.post("/api/workflows", json={"name": "z", "copy_from": 1, "definition": {}}), 422
    )
    assert "copy_from" in both["errors"]


def test_bad_bodies_are_422(admin):
    workflow = ok(admin.post("/api/workflows", json={"name": "bodies"}), 201)
    base = f"/api/workflows/{workflow['id']}"

    assert_error(put(admin, f"{base}/draft", json={"definition": ["not", "an", "object"]}), 422)
    assert_error(put(admin, f"{base}/draft", json=["definition"]), 422)
    assert_error(put(admin, f"{base}/draft", json={}), 422)
    assert_error(admin.post(f"{base}/draft/simulate", json={"limit": 0}), 422)
    assert_error(admin.post(f"{base}/draft/simulate", json={"limit": 501}), 422)
    assert_error(admin.post(f"{base}/draft/publish", json={"state_map": {"new": 3}}), 422)
    assert ok(admin.get(base))["draft"]["name"] == "bodies", "nothing was changed"


def test_validating_a_definition_sent_without_saving_it(admin):
    workflow = ok(admin.post("/api/workflows", json={"name": "check"}), 201)
    base = f"/api/workflows/{workflow['id']}"
    broken = escalation_draft()
    broken["rules"][-1]["then"] = [{"action": "transition", "name": ["not", "a", "name"]}]
    broken["states"][0]["category"] = "sideways"

    result = ok(admin.post(f"{base}/draft/validate", json={"definition": broken}))

    assert result["valid"] is False
    assert result["errors"] == {
        "states.0.category": ["Must be one of: new, open, pending, solved, closed."]
    }
    assert ok(admin.get(base))["draft"]["name"] == "check", "the stored draft is untouched"


def test_a_draft_of_the_wrong_shape_gets_errors_not_a_crash(admin):
    workflow = ok(admin.post("/api/workflows", json={"name": "shapes"}), 201)
    base = f"/api/workflows/{workflow['id']}"
    odd = escalation_draft()
    odd["rules"][-1]["then"] = [{"action": "transition", "name": ["not", "a", "name"]}]

    saved = ok(put(admin, f"{base}/draft", json={"definition": odd}))

    assert saved["valid"] is False
    assert saved["errors"]


# -- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "customer"])
def test_only_admins_may_touch_workflows(client, factory, role):
    caller = ApiClient(client, factory.user(role))
    workflow_id = 1
    calls = [
        ("get", "/api/workflows", None),
        ("post", "/api/workflows", {"name": "mine"}),
        ("get", f"/api/workflows/{workflow_id}", None),
        ("get", f"/api/workflows/{workflow_id}/versions/1", None),
        ("get", f"/api/workflows/{workflow_id}/versions/1/diagram.svg", None),
        ("get", f"/api/workflows/{workflow_id}/draft/diagram.svg", None),
        ("put", f"/api/workflows/{workflow_id}/draft", {"definition": {}}),
        ("post", f"/api/workflows/{workflow_id}/draft/validate", {}),
        ("post", f"/api/workflows/{workflow_id}/draft/simulate", {}),
        ("post", f"/api/workflows/{workflow_id}/draft/publish", {}),
    ]
    for method, url, body in calls:
        response = getattr(caller.client, method)(url, headers=caller.headers, json=body)
        assert_error(response, 403)
