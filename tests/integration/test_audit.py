"""The audit log of admin changes: what the admin services record (in the same transaction, never
a secret), ``GET /api/audit`` (admins only, filters, keyset pages) and the /admin/audit page."""

from __future__ import annotations

import copy
import html
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from autocrm.audit import services as audit
from autocrm.audit.models import AdminAuditEntry
from autocrm.engine import drafts, publishing
from autocrm.errors import Forbidden, InvalidInput
from autocrm.fields import definitions
from autocrm.listing import PageRequest
from autocrm.macros import services as macros
from autocrm.mail import mailboxes
from autocrm.people import teams, users
from autocrm.people.models import Role, User
from tests.factories import ApiClient, Factory, assert_error, web_login
from workflows import default_definition


@pytest.fixture
def admin(factory: Factory) -> User:
    return factory.admin(name="Ada Admin")


def all_entries(session: Any) -> list[AdminAuditEntry]:
    return list(session.scalars(select(AdminAuditEntry).order_by(AdminAuditEntry.id)))


def count(session: Any) -> int:
    return session.scalar(select(func.count()).select_from(AdminAuditEntry))


# -- what the services record -------------------------------------------------------------------


def test_user_changes_are_recorded_one_entry_per_kind_without_secrets(db_session, admin):
    created = users.do_create_user(
        admin, email="Sam@Example.test", password="first secret 1", role=Role.AGENT, name="Sam"
    )
    users.do_update_user(
        admin,
        created.id,
        {"name": "Samuel", "role": Role.ADMIN, "active": False, "password": "second secret 2"},
    )
    got = [
        (e.action, e.actor_id, e.target_type, e.target_id, e.changes)
        for e in all_entries(db_session)
    ]
    assert got == [
        (
            "user.created",
            admin.id,
            "user",
            created.id,
            {"name": [None, "Sam"], "email": [None, "sam@example.test"], "role": [None, "agent"]},
        ),
        ("user.updated", admin.id, "user", created.id, {"name": ["Sam", "Samuel"]}),
        ("user.role_changed", admin.id, "user", created.id, {"role": ["agent", "admin"]}),
        ("user.deactivated", admin.id, "user", created.id, {"active": [True, False]}),
        ("user.password_reset", admin.id, "user", created.id, {}),
    ]
    everything = str([(e.changes, e.target_label) for e in all_entries(db_session)])
    assert "secret" not in everything and "argon2" not in everything
    assert all_entries(db_session)[-1].target_label == "Samuel <sam@example.test>"


def test_an_unchanged_field_records_nothing(db_session, admin, factory):
    agent = factory.agent(name="Same")
    users.do_update_user(admin, agent.id, {"name": "Same", "role": Role.AGENT, "active": True})
    assert count(db_session) == 0


def test_a_refused_change_records_nothing(db_session, admin, factory):
    agent = factory.agent()
    with pytest.raises(InvalidInput):
        users.do_update_user(admin, agent.id, {"role": Role.ADMIN, "password": "short"})
    with pytest.raises(InvalidInput):
        teams.do_create_team(admin, name="T", calendar={"timezone": "Nowhere/Land", "hours": {}})
    db_session.commit()  # the services rolled back what they had begun: nothing to commit
    assert count(db_session) == 0
    assert users.access_user_by_id(admin, agent.id).role is Role.AGENT


def test_record_drops_secret_fields_and_names_its_target(db_session, admin):
    entry = audit.record(
        admin,
        "user.password_reset",
        admin,
        {"password": ["old", "new"], "password_hash": ["a", "b"], "note": [None, "hi"]},
    )
    db_session.commit()
    assert entry.changes == {"note": [None, "hi"]}
    assert (entry.target_type, entry.target_id) == ("user", admin.id)
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(admin, "user.exploded", admin, {})


def test_field_and_mailbox_updates_record_only_what_changed_enums_by_value(db_session, admin):
    field = definitions.do_create_field(admin, {"key": "plan", "label": "Plan", "type": "text"})
    definitions.do_update_field(
        admin, field.id, {"label": "Plan", "visibility": "customer_visible", "help_text": "Hi"}
    )
    mailbox, _ = mailboxes.do_create_mailbox(
        admin, {"name": "Support", "address": "support@example.com"}
    )
    mailboxes.do_update_mailbox(admin, mailbox.id, {"name": "Support", "imap_security": "none"})
    mailboxes.do_update_mailbox(admin, mailbox.id, {"imap_security": "none"})  # no change

    updates = [
        (e.action, e.changes) for e in all_entries(db_session) if e.action.endswith(".updated")
    ]
    assert updates == [
        (
            "ticket_field.updated",
            {"visibility": ["staff", "customer_visible"], "help_text": ["", "Hi"]},
        ),
        ("mailbox.updated", {"imap_security": ["ssl", "none"]}),
    ]


def test_team_changes_are_recorded(db_session, admin, factory):
    lead, member = factory.agent(name="Lena Lead"), factory.agent(name="Max Member")
    team = teams.do_create_team(admin, name="Ops", lead_id=lead.id)
    teams.do_add_member(admin, team.id, member.id)
    teams.do_add_member(admin, team.id, member.id)  # already in: nothing new
    hours = {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}}
    teams.do_update_team(admin, team.id, {"max_open_per_agent": 3, "calendar": hours})
    teams.do_remove_member(admin, team.id, member.id)
    got = [(e.action, e.target_id, e.target_label) for e in all_entries(db_session)]
    assert got == [
        ("team.created", team.id, "Ops"),
        ("team.member_added", team.id, "Ops"),
        ("team.updated", team.id, "Ops"),
        ("team.member_removed", team.id, "Ops"),
    ]
    created, added, updated, removed = all_entries(db_session)
    assert created.changes["lead"] == [None, "Lena Lead"]
    assert added.changes == {"member": [None, "Max Member"]}
    assert updated.changes == {"max_open_per_agent": [None, 3], "calendar": [None, hours]}
    assert removed.changes == {"member": ["Max Member", None]}


def test_workflow_admin_changes_are_recorded(db_session, admin):
    workflow = drafts.do_create_workflow(admin, name="support-v2")
    draft = copy.deepcopy(default_definition())
    draft["name"] = "support-v2"
    draft["sla"]["warning_at"] = 0.5
    drafts.do_save_draft(admin, workflow.id, draft)
    publishing.do_publish(admin, workflow.id, note="Warn earlier", make_default=True)
    got = [(e.action, e.target_type, e.target_id) for e in all_entries(db_session)]
    assert got == [
        ("workflow.created", "workflow", workflow.id),
        ("workflow.draft_saved", "workflow", workflow.id),
        ("workflow.published", "workflow", workflow.id),
    ]
    created, saved, published = all_entries(db_session)
    assert created.changes == {"name": [None, "support-v2"]}
    assert saved.changes == {"sections": [None, ["sla"]]}
    assert published.changes == {
        "version": [None, 1],
        "note": [None, "Warn earlier"],
        "made_default": [None, True],
    }


def test_sharing_a_macro_differently_is_recorded(db_session, admin, factory):
    team = factory.team("Desk")
    macro = macros.do_create_macro(admin, title="Hi", body="Hello", team_id=team.id)
    macros.do_update_macro(admin, macro.id, title="Hi!")
    assert count(db_session) == 0  # a new title is not a sharing change
    macros.do_update_macro(admin, macro.id, scope="global", team_id=None)
    [entry] = all_entries(db_session)
    assert (entry.action, entry.target_type, entry.target_id, entry.target_label) == (
        "macro.shared_changed",
        "macro",
        macro.id,
        "Hi!",
    )
    assert entry.changes == {"shared_with": ["team Desk", "everyone"]}


# -- reading the log: policy and service ---------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AGENT, Role.CUSTOMER])
def test_only_admins_read_the_log(factory, role):
    with pytest.raises(Forbidden):
        audit.list_entries(factory.user(role), PageRequest(), audit.AuditFilters())


def make_history(admin: User, factory: Factory) -> dict[str, Any]:
    other_admin = factory.admin(name="Otto Admin")
    agent = factory.agent(name="Agnes")
    team = teams.do_create_team(admin, name="Audit Team")
    teams.do_add_member(other_admin, team.id, agent.id)
    users.do_update_user(admin, agent.id, {"active": False})
    users.do_update_user(other_admin, agent.id, {"active": True})
    return {"other_admin": other_admin, "agent": agent, "team": team}


def test_filters_and_newest_first(db_session, admin, factory):
    made = make_history(admin, factory)

    def actions(**filters: Any) -> list[str]:
        page = audit.list_entries(admin, PageRequest(), audit.AuditFilters(**filters))
        return [e.action for e in page.items]

    assert actions() == [
        "user.reactivated",
        "user.deactivated",
        "team.member_added",
        "team.created",
    ]
    assert actions(actor_id=made["other_admin"].id) == ["user.reactivated", "team.member_added"]
    assert actions(target_type="user", target_id=made["agent"].id) == [
        "user.reactivated",
        "user.deactivated",
    ]
    assert actions(target_type="team") == ["team.member_added", "team.created"]
    assert actions(action="user.deactivated") == ["user.deactivated"]
    with pytest.raises(InvalidInput) as error:
        actions(target_id=made["agent"].id)
    assert set(error.value.errors) == {"target_id"}
    with pytest.raises(InvalidInput) as error:
        actions(action="user.exploded", target_type="planet")
    assert set(error.value.errors) == {"action", "target_type"}


# -- GET /api/audit -----------------------------------------------------------------------------


def test_api_lists_filters_and_pages(client, db_session, admin, factory):
    made = make_history(admin, factory)
    api = ApiClient(client, admin)

    response = api.get("/api/audit")
    assert response.status_code == 200, response.json
    first = response.json["items"][0]
    assert first["action"] == "user.reactivated"
    assert (first["actor_id"], first["actor_name"]) == (made["other_admin"].id, "Otto Admin")
    assert (first["target_type"], first["target_id"]) == ("user", made["agent"].id)
    assert first["target_label"] == f"Agnes <{made['agent'].email}>"
    assert first["changes"] == {"active": [False, True]}
    assert first["created_at"]

    seen, cursor = [], None
    for _ in range(10):
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/audit", query_string=query).json
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [item["id"] for item in response.json["items"]] and len(seen) == 4
    assert seen == sorted(seen, reverse=True)

    filtered = api.get(
        "/api/audit", query_string={"target_type": "team", "target_id": made["team"].id}
    ).json["items"]
    assert [i["action"] for i in filtered] == ["team.member_added", "team.created"]
    by_action = api.get("/api/audit", query_string={"action": "user.deactivated"}).json["items"]
    assert [(i["action"], i["actor_id"]) for i in by_action] == [("user.deactivated", admin.id)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"action": "user.exploded"}, "action"),
        ({"target_type": "planet"}, "target_type"),
        ({"actor_id": "abc"}, "actor_id"),
        ({"limit": 0}, "limit"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_api_bad_filters_are_422_at_the_field(client, admin, query, field):
    body = assert_error(ApiClient(client, admin).get("/api/audit", query_string=query), 422)
    assert field in body["errors"]["query"]


def test_api_target_id_needs_a_type_and_cursor_must_be_real(client, admin):
    api = ApiClient(client, admin)
    body = assert_error(api.get("/api/audit", query_string={"target_id": 3}), 422)
    assert "target_id" in body["errors"]
    body = assert_error(api.get("/api/audit", query_string={"cursor": "nonsense"}), 422)
    assert "cursor" in body["errors"]


@pytest.mark.parametrize("role", [Role.AGENT, Role.CUSTOMER])
def test_api_is_for_admins_only(client, factory, role):
    assert_error(ApiClient(client, factory.user(role)).get("/api/audit"), 403)
    assert_error(client.get("/api/audit"), 401)


# -- the /admin/audit page ----------------------------------------------------------------------


@pytest.fixture
def logged_in(client: FlaskClient, admin: User, fresh_login_limit: None) -> FlaskClient:
    web_login(client, admin)
    return client


def test_page_shows_who_what_which_target_and_the_changes(logged_in, admin, factory):
    made = make_history(admin, factory)
    users.do_update_user(admin, made["agent"].id, {"role": Role.ADMIN})
    page = html.unescape(logged_in.get("/admin/audit/").get_data(as_text=True))
    rows = re.findall(r'<tr id="audit-\d+">(.*?)</tr>', page, re.S)
    assert len(rows) == 6
    assert "Logged in" in rows[-1] and "Ada Admin" in rows[-1]  # the page's own login, first
    newest = rows[0]
    assert "Ada Admin" in newest and "Changed role" in newest and "user.role_changed" in newest
    assert f'href="/admin/users/{made["agent"].id}"' in newest and "Agnes" in newest
    assert "<del>agent</del>" in newest and "<ins>admin</ins>" in newest
    assert f'href="/admin/teams/{made["team"].id}"' in rows[-2]
    assert "<time datetime=" in newest

    drafts.do_create_workflow(admin, name="linked-flow")
    page = html.unescape(logged_in.get("/admin/audit/").get_data(as_text=True))
    newest = re.findall(r'<tr id="audit-\d+">(.*?)</tr>', page, re.S)[0]
    assert "Created workflow" in newest
    assert re.search(r'Workflow: <a href="/admin/workflows/[^"]*">linked-flow</a>', newest)

    macro = macros.do_create_macro(admin, title="Linked macro", body="Hello", scope="global")
    page = html.unescape(logged_in.get("/admin/audit/").get_data(as_text=True))
    newest = re.findall(r'<tr id="audit-\d+">(.*?)</tr>', page, re.S)[0]
    assert f'<a href="/agent/macros/{macro.id}/edit">Linked macro</a>' in newest


def test_page_filters_keep_their_values_and_bad_ones_are_errors(logged_in, admin, factory):
    made = make_history(admin, factory)
    url = f"/admin/audit/?target_type=user&target_id={made['agent'].id}&action=user.deactivated"
    page = html.unescape(logged_in.get(url).get_data(as_text=True))
    assert len(re.findall(r'<tr id="audit-\d+">', page)) == 1
    assert '<option value="user.deactivated" selected>' in page
    assert f'name="target_id" value="{made["agent"].id}"' in page

    response = logged_in.get("/admin/audit/?target_id=7")
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert 'id="a-target-id-error">Choose the target' in page
    response = logged_in.get("/admin/audit/?action=nope&actor_id=x")
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert 'id="a-actor-error">Choose from the list.' in page


def test_page_id_filters_with_other_digits_are_errors_not_a_500(logged_in):
    # "²" and "¹" count as digits for str.isdigit() but int() refuses them.
    response = logged_in.get("/admin/audit/?actor_id=%C2%B2&target_type=user&target_id=%C2%B9")
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert 'id="a-actor-error">Choose from the list.' in page
    assert 'name="target_id" value="\u00b9"' in page


def test_page_pages_through_older_entries(logged_in, admin, factory, db_session):
    for n in range(55):
        audit.record(admin, "team.updated", audit.Target("team", n + 1, f"T{n}"), {})
    db_session.commit()
    first = logged_in.get("/admin/audit/?target_type=team").get_data(as_text=True)
    assert len(re.findall(r'<tr id="audit-\d+">', first)) == 50
    older = re.search(r'href="([^"]+)" rel="next">Older entries', first)
    assert older
    second = logged_in.get(html.unescape(older.group(1))).get_data(as_text=True)
    assert len(re.findall(r'<tr id="audit-\d+">', second)) == 5
    assert "target_type=team" in html.unescape(older.group(1))
