"""Macros over /api/macros and /api/tickets/<id>/macros/<mid>/{preview,apply}: who sees and
manages which macro, the preview in words, and applying one whole or not at all (a stale
version or a change not possible now changes nothing), audited as ``macro.applied``."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.macros import services as macros
from autocrm.macros.models import Macro
from autocrm.people import tokens
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message, Priority, Ticket
from tests.factories import ApiClient, Factory, assert_error


@pytest.fixture
def desk(factory: Factory) -> dict[str, Any]:
    support, tier2 = factory.team("Support"), factory.team("Tier 2")
    agent = factory.agent(support, name="Alex Agent")
    people: dict[str, Any] = {
        "support": support,
        "tier2": tier2,
        "agent": agent,
        "colleague": factory.agent(support, name="Bea Colleague"),
        "senior": factory.agent(tier2, name="Sam Senior"),
        "admin": factory.admin(),
        "customer": factory.customer(name="Casey Customer"),
    }
    ticket = factory.ticket(people["customer"], team=support, subject="Blue screen")
    tickets.do_transition(agent, ticket.id, "start")
    people["ticket"] = ticket
    return people


def api(client: Any, user: Any) -> ApiClient:
    return ApiClient(client, user)


def apply_url(ticket: Ticket, macro: Macro | int, action: str = "apply") -> str:
    macro_id = macro if isinstance(macro, int) else macro.id
    return f"/api/tickets/{ticket.id}/macros/{macro_id}/{action}"


# -- managing ----------------------------------------------------------------------------------


def test_an_agent_creates_reads_changes_and_deletes_a_macro(client, desk):
    agent = api(client, desk["agent"])
    created = agent.post(
        "/api/macros",
        json={
            "title": "Ask for screenshot",
            "body": "Hi {{requester.first_name}}, could you send a screenshot?",
            "scope": "team",
            "team_id": desk["support"].id,
            "actions": {"transition": "wait_on_customer", "add_tags": ["Needs-Info"]},
        },
    )
    assert created.status_code == 201, created.json
    macro = created.json
    assert macro["scope"] == "team" and macro["team_id"] == desk["support"].id
    assert macro["actions"] == {"transition": "wait_on_customer", "add_tags": ["needs-info"]}
    assert macro["text_only"] is False and macro["usage_count"] == 0

    assert agent.get(f"/api/macros/{macro['id']}").json["title"] == "Ask for screenshot"
    listed = api(client, desk["colleague"]).get("/api/macros").json["items"]
    assert [m["title"] for m in listed] == ["Ask for screenshot"]

    changed = agent.patch(f"/api/macros/{macro['id']}", json={"title": "Screenshot please"})
    assert changed.status_code == 200 and changed.json["actions"] == macro["actions"]
    assert changed.json["title"] == "Screenshot please"

    deleted = agent.delete(f"/api/macros/{macro['id']}")
    assert deleted.json == {"id": macro["id"], "deleted": True}
    assert_error(agent.get(f"/api/macros/{macro['id']}"), 404)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": " ", "body": "x"}, "title"),
        ({"title": "Empty"}, "body"),
        ({"title": "x", "body": "y", "scope": "global"}, "scope"),
        ({"title": "x", "body": "y", "scope": "team"}, "team_id"),
        ({"title": "x", "actions": {"transition": "teleport"}}, "actions.transition"),
        ({"title": "x", "actions": {"assignee_id": 999999}}, "actions.assignee_id"),
        ({"title": "x", "actions": {"team_id": 999999}}, "actions.team_id"),
        ({"title": "x", "actions": {"add_tags": ["no spaces"]}}, "actions.add_tags"),
    ],
)
def test_bad_macros_are_refused_naming_the_field(client, desk, payload, field):
    body = assert_error(api(client, desk["agent"]).post("/api/macros", json=payload), 422)
    assert field in body["errors"], body


def test_a_macro_for_another_team_and_unknown_keys_are_refused(client, desk):
    agent = api(client, desk["agent"])
    foreign = {"title": "x", "body": "y", "scope": "team", "team_id": desk["tier2"].id}
    assert "team_id" in assert_error(agent.post("/api/macros", json=foreign), 422)["errors"]
    odd = {"title": "x", "actions": {"delete_ticket": True}}
    assert (
        "delete_ticket"
        in assert_error(agent.post("/api/macros", json=odd), 422)["errors"]["json"]["actions"]
    )
    wrong = {"title": "x", "actions": {"assignee_id": "you"}}
    errors = assert_error(agent.post("/api/macros", json=wrong), 422)["errors"]
    assert "assignee_id" in errors["json"]["actions"]


def test_customers_get_403_everywhere(client, desk):
    admin_macro = macros.do_create_macro(desk["admin"], title="G", body="x", scope="global")
    customer = api(client, desk["customer"])
    assert_error(customer.get("/api/macros"), 403)
    assert_error(customer.post("/api/macros", json={"title": "x", "body": "y"}), 403)
    assert_error(customer.get(f"/api/macros/{admin_macro.id}"), 403)
    ticket = desk["ticket"]  # the customer's own ticket, which they do see
    assert_error(customer.post(apply_url(ticket, admin_macro, "preview")), 403)
    assert_error(customer.post(apply_url(ticket, admin_macro), json={}), 403)


def test_another_teams_and_someone_elses_personal_macros_are_404(client, desk):
    tier2_macro = macros.do_create_macro(
        desk["senior"], title="Tier 2 only", body="x", team_id=desk["tier2"].id
    )
    personal = macros.do_create_macro(desk["colleague"], title="Bea's", body="x", scope="personal")
    agent, admin = api(client, desk["agent"]), api(client, desk["admin"])
    for macro in (tier2_macro, personal):
        assert_error(agent.get(f"/api/macros/{macro.id}"), 404)
        assert_error(agent.patch(f"/api/macros/{macro.id}", json={"title": "mine"}), 404)
        assert_error(agent.delete(f"/api/macros/{macro.id}"), 404)
        assert_error(agent.post(apply_url(desk["ticket"], macro, "preview")), 404)
        assert_error(agent.post(apply_url(desk["ticket"], macro), json={}), 404)
    titles = [m["title"] for m in agent.get("/api/macros").json["items"]]
    assert titles == []
    # Admins see every team's macros, but a personal macro stays its owner's.
    assert admin.get(f"/api/macros/{tier2_macro.id}").status_code == 200
    assert_error(admin.get(f"/api/macros/{personal.id}"), 404)
    assert api(client, desk["colleague"]).get(f"/api/macros/{personal.id}").status_code == 200


def test_only_admins_manage_global_macros(client, desk):
    shared = macros.do_create_macro(desk["admin"], title="Thanks", body="x", scope="global")
    agent = api(client, desk["agent"])
    assert agent.get(f"/api/macros/{shared.id}").status_code == 200
    assert_error(agent.patch(f"/api/macros/{shared.id}", json={"title": "Mine"}), 403)
    assert_error(agent.delete(f"/api/macros/{shared.id}"), 403)
    assert api(client, desk["admin"]).delete(f"/api/macros/{shared.id}").status_code == 200


# -- preview and apply -------------------------------------------------------------------------


def test_preview_says_what_would_change_and_changes_nothing(client, db_session, desk):
    macro = macros.do_create_macro(
        desk["agent"],
        title="Escalate",
        body="Passing this to {{ticket.number}}'s next line, {{requester.name}}.",
        team_id=desk["support"].id,
        actions={"team_id": desk["tier2"].id, "priority": "high", "assignee_id": "me"},
    )
    ticket = desk["ticket"]
    version = db_session.get(Ticket, ticket.id).version
    preview = api(client, desk["agent"]).post(apply_url(ticket, macro, "preview"))
    assert preview.status_code == 200, preview.json
    assert preview.json["body"] == f"Passing this to {ticket.id}'s next line, Casey Customer."
    assert preview.json["version"] == version and preview.json["text_only"] is False
    changes = {c["field"]: c for c in preview.json["changes"]}
    assert changes["priority"]["description"] == "Priority: normal → high"
    assert changes["team_id"]["description"] == "Team: Support → Tier 2"
    # Alex is not in Tier 2: assigning to "me" there is not possible, so nor is the macro.
    assert changes["assignee_id"]["possible"] is False
    assert "not a member" in changes["assignee_id"]["reason"]
    assert preview.json["applicable"] is False
    fresh = db_session.get(Ticket, ticket.id)
    assert fresh.version == version and fresh.team_id == desk["support"].id


def test_applying_replies_changes_fields_and_transitions_in_one_go(client, db_session, desk):
    macro = macros.do_create_macro(
        desk["agent"],
        title="Ask for screenshot",
        body="Could you send a screenshot, {{requester.first_name}}?",
        scope="personal",
        actions={
            "transition": "wait_on_customer",
            "priority": "high",
            "add_tags": ["needs-info"],
            "assignee_id": "me",
        },
    )
    ticket = desk["ticket"]
    version = db_session.get(Ticket, ticket.id).version
    applied = api(client, desk["agent"]).post(apply_url(ticket, macro), json={"version": version})
    assert applied.status_code == 200, applied.json
    assert applied.json["status"] == "pending" and applied.json["priority"] == "high"
    assert applied.json["tags"] == ["needs-info"]
    assert applied.json["assignee_id"] == desk["agent"].id
    assert applied.headers["ETag"] == f'"{applied.json["version"]}"'
    [message] = db_session.scalars(select(Message).where(Message.ticket_id == ticket.id)).all()
    assert message.body == "Could you send a screenshot, Casey?" and not message.internal
    assert message.author_id == desk["agent"].id

    entry = db_session.scalar(
        select(AdminAuditEntry).where(AdminAuditEntry.action == "macro.applied")
    )
    assert (entry.target_type, entry.target_id, entry.actor_id) == (
        "macro",
        macro.id,
        desk["agent"].id,
    )
    assert entry.changes["ticket_id"] == [None, ticket.id]
    used = db_session.get(Macro, macro.id)
    db_session.refresh(used)
    assert used.usage_count == 1 and used.last_used_at is not None


def test_an_edited_reply_is_sent_instead_of_the_macro_text(client, db_session, desk):
    macro = macros.do_create_macro(
        desk["agent"], title="Thanks", body="Thanks!", actions={"transition": "solve"}
    )
    ticket = desk["ticket"]
    applied = api(client, desk["agent"]).post(
        apply_url(ticket, macro), json={"body": "Thanks a lot, Casey!"}
    )
    assert applied.status_code == 200 and applied.json["status"] == "solved"
    bodies = db_session.scalars(select(Message.body).where(Message.ticket_id == ticket.id))
    assert list(bodies) == ["Thanks a lot, Casey!"]


def test_a_stale_version_applies_nothing(client, db_session, desk):
    macro = macros.do_create_macro(
        desk["agent"], title="Pending", body="Waiting", actions={"transition": "wait_on_customer"}
    )
    ticket = desk["ticket"]
    version = db_session.get(Ticket, ticket.id).version
    tickets.do_update_ticket(desk["colleague"], ticket.id, {"priority": Priority.LOW})
    body = assert_error(
        api(client, desk["agent"]).post(apply_url(ticket, macro), json={"version": version}), 409
    )
    assert "version" in body["errors"]
    assert_nothing_applied(db_session, ticket, macro)
    stale = api(client, desk["agent"]).post(
        apply_url(ticket, macro), json={}, headers={"If-Match": f'"{version}"'}
    )
    assert_error(stale, 409)


def assert_nothing_applied(db_session: Any, ticket: Ticket, macro: Macro) -> None:
    db_session.expire_all()
    assert db_session.get(Ticket, ticket.id).status == "open"
    assert db_session.scalar(select(Message.id).where(Message.ticket_id == ticket.id)) is None
    assert db_session.get(Macro, macro.id).usage_count == 0
    applied = select(AdminAuditEntry.id).where(AdminAuditEntry.action == "macro.applied")
    assert db_session.scalar(applied) is None


def test_a_change_not_possible_now_refuses_the_whole_macro(client, db_session, desk):
    macro = macros.do_create_macro(
        desk["agent"],
        title="Back to work",
        body="We are back on it.",
        actions={"priority": "urgent", "transition": "resume"},  # resume: from pending only
    )
    ticket = desk["ticket"]
    body = assert_error(api(client, desk["agent"]).post(apply_url(ticket, macro), json={}), 409)
    assert "not possible from Open" in body["message"]
    assert body["errors"]["macro"]
    assert_nothing_applied(db_session, ticket, macro)
    assert db_session.get(Ticket, ticket.id).priority is Priority.NORMAL


def test_a_read_only_token_cannot_apply(client, db_session, desk):
    macro = macros.do_create_macro(desk["agent"], title="Hi", body="Hello")
    made = tokens.do_create_token(desk["agent"], name="ro", scope="read", expires_in_days=None)
    headers = {"Authorization": f"Bearer {made.token}"}
    refused = client.post(apply_url(desk["ticket"], macro), json={}, headers=headers)
    assert refused.status_code == 403
    assert_nothing_applied(db_session, desk["ticket"], macro)


def test_a_reply_to_a_closed_ticket_is_not_possible(client, db_session, desk):
    macro = macros.do_create_macro(desk["agent"], title="Hi", body="Hello again")
    ticket = desk["ticket"]
    for name in ("solve", "close"):
        tickets.do_transition(desk["agent"], ticket.id, name)
    agent = api(client, desk["agent"])
    preview = agent.post(apply_url(ticket, macro, "preview")).json
    assert preview["applicable"] is False and preview["text_only"] is True
    [reply] = preview["changes"]
    assert (reply["field"], reply["possible"]) == ("reply", False)
    assert "closed" in reply["reason"]
    body = assert_error(agent.post(apply_url(ticket, macro), json={}), 409)
    assert "closed" in body["message"]
    assert db_session.scalar(select(Message.id).where(Message.ticket_id == ticket.id)) is None
