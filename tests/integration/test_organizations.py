"""Organizations: admins manage them over /api/organizations; customers of their domains join
them when created; a manager sees every ticket of the organization's customers, a plain member
only their own, and no one sees another organization's."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.people import intake, organizations, users
from autocrm.people.models import Role, User
from autocrm.tickets import followers, merging
from tests.factories import ApiClient, assert_error, web_login

# -- managing organizations --------------------------------------------------------------------


def test_admin_creates_reads_changes_and_deletes_an_organization(client, factory, db_session):
    admin = ApiClient(client, factory.admin())

    created = admin.post(
        "/api/organizations",
        json={"name": "Acme", "domains": ["Acme.COM", "@acme.io"], "notes": "Key account"},
    )
    assert created.status_code == 201, created.json
    org_id = created.json["id"]
    assert (created.json["domains"], created.json["auto_join"]) == (["acme.com", "acme.io"], True)

    changed = admin.patch(
        f"/api/organizations/{org_id}", json={"domains": ["acme.com"], "auto_join": False}
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["domains"], changed.json["auto_join"]) == (["acme.com"], False)
    listed = admin.get("/api/organizations").json["items"]
    assert [o["name"] for o in listed] == ["Acme"]

    assert admin.delete(f"/api/organizations/{org_id}").json == {"id": org_id, "deleted": True}
    assert_error(admin.get(f"/api/organizations/{org_id}"), 404)
    actions = db_session.scalars(
        select(AdminAuditEntry.action).where(AdminAuditEntry.target_type == "organization")
    ).all()
    assert actions == ["organization.created", "organization.updated", "organization.deleted"]


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT])
def test_only_admins_manage_organizations(client, factory, role):
    org = organizations.do_create_organization(factory.admin(), name="Acme")
    api = ApiClient(client, factory.user(role))

    assert_error(api.post("/api/organizations", json={"name": "Mine"}), 403)
    assert_error(api.patch(f"/api/organizations/{org.id}", json={"name": "Mine"}), 403)
    assert_error(api.delete(f"/api/organizations/{org.id}"), 403)
    if role is Role.AGENT:  # staff read them: the workspace and queue name them
        assert api.get(f"/api/organizations/{org.id}").json["name"] == "Acme"
    else:
        assert_error(api.get(f"/api/organizations/{org.id}"), 404)
        assert_error(api.get("/api/organizations"), 403)


def test_a_domain_belongs_to_one_organization_only(client, factory):
    admin = ApiClient(client, factory.admin())
    assert (
        admin.post("/api/organizations", json={"name": "A", "domains": ["a.com"]}).status_code
        == 201
    )
    other = admin.post("/api/organizations", json={"name": "B", "domains": ["b.com"]}).json

    body = assert_error(
        admin.post("/api/organizations", json={"name": "C", "domains": ["A.com"]}), 422
    )
    assert "a.com (A)" in body["errors"]["domains"][0]
    body = assert_error(
        admin.patch(f"/api/organizations/{other['id']}", json={"domains": ["b.com", "a.com"]}), 422
    )
    assert list(body["errors"]) == ["domains"]
    assert admin.get(f"/api/organizations/{other['id']}").json["domains"] == ["b.com"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "A"}, "name"),  # taken
        ({"name": "New", "domains": ["not a domain"]}, "domains"),
        ({"name": "New", "domains": ["x@y.com"]}, "domains"),
        ({"name": "New", "notes": "x" * 5001}, "notes"),
        ({"name": "New", "colour": "red"}, "colour"),
    ],
)
def test_bad_organization_input_names_the_field(client, factory, body, field):
    admin = ApiClient(client, factory.admin())
    assert admin.post("/api/organizations", json={"name": "A"}).status_code == 201

    errors = assert_error(admin.post("/api/organizations", json=body), 422)["errors"]
    assert field in errors.get("json", errors)


def test_admin_adds_moves_and_removes_customers(client, factory):
    admin_user = factory.admin()
    admin = ApiClient(client, admin_user)
    a = organizations.do_create_organization(admin_user, name="A")
    b = organizations.do_create_organization(admin_user, name="B")
    customer, agent = factory.customer(name="Casey"), factory.agent()

    added = admin.post(
        f"/api/organizations/{a.id}/members", json={"user_id": customer.id, "manager": True}
    )
    assert added.status_code == 200, added.json
    assert added.json["members"] == [
        {"id": customer.id, "name": "Casey", "email": customer.email, "manager": True}
    ]
    me = ApiClient(client, customer).get("/api/users/me").json
    assert (me["organization"], me["organization_manager"]) == ({"id": a.id, "name": "A"}, True)

    moved = admin.post(f"/api/organizations/{b.id}/members", json={"user_id": customer.id})
    assert [m["manager"] for m in moved.json["members"]] == [False]
    assert admin.get(f"/api/organizations/{a.id}").json["members"] == []
    assert_error(admin.delete(f"/api/organizations/{a.id}/members/{customer.id}"), 404)
    assert admin.delete(f"/api/organizations/{b.id}/members/{customer.id}").json["members"] == []
    assert admin.get(f"/api/users/{customer.id}").json["organization"] is None

    refused = admin.post(f"/api/organizations/{a.id}/members", json={"user_id": agent.id})
    assert "user_id" in assert_error(refused, 422)["errors"]
    assert (
        "user_id"
        in assert_error(
            admin.post(f"/api/organizations/{a.id}/members", json={"user_id": 999_999}), 422
        )["errors"]
    )


def test_deleting_an_organization_keeps_its_customers(client, factory, db_session):
    admin = factory.admin()
    org = organizations.do_create_organization(admin, name="Gone", domains=["gone.test"])
    customer = factory.customer(email="pat@gone.test")
    organizations.do_add_member(admin, org.id, customer.id, manager=True)

    organizations.do_delete_organization(admin, org.id)

    db_session.refresh(customer)
    assert customer.active
    assert (customer.organization_id, customer.organization_manager) == (None, False)


# -- joining by domain -------------------------------------------------------------------------


def test_new_customers_of_a_domain_join_its_auto_join_organization(app, factory):
    admin = factory.admin()
    org = organizations.do_create_organization(admin, name="Acme", domains=["acme.test"])
    organizations.do_create_organization(
        admin, name="Manual", domains=["manual.test"], auto_join=False
    )

    by_admin = users.do_create_user(
        admin, email="a@ACME.test", password="long enough", role=Role.CUSTOMER
    )
    by_request = intake.find_or_create_customer("b@acme.test", "B", "web form")
    intake.do_sign_up("C", "c@acme.test", "long enough pass")
    manual = intake.find_or_create_customer("d@manual.test", "D", "web form")
    staff = users.do_create_user(
        admin, email="e@acme.test", password="long enough", role=Role.AGENT
    )

    signed_up = factory.session.scalar(select(User).where(User.email == "c@acme.test"))
    assert {u.organization_id for u in (by_admin, by_request, signed_up)} == {org.id}
    assert not any(u.organization_manager for u in (by_admin, by_request, signed_up))
    assert manual.organization_id is None
    assert staff.organization_id is None


# -- who sees which tickets --------------------------------------------------------------------


@pytest.fixture
def orgs(factory, client):
    """Organization A: a manager, a plain member and their tickets; organization B: one
    customer and a ticket."""
    admin = factory.admin()
    a = organizations.do_create_organization(admin, name="A")
    b = organizations.do_create_organization(admin, name="B")
    people = {
        "manager": factory.customer(name="Manager"),
        "member": factory.customer(name="Member"),
        "b_manager": factory.customer(name="B manager"),
    }
    organizations.do_add_member(admin, a.id, people["manager"].id, manager=True)
    organizations.do_add_member(admin, a.id, people["member"].id)
    organizations.do_add_member(admin, b.id, people["b_manager"].id, manager=True)
    tickets = {
        name: factory.ticket(user, subject=f"{name} ticket").id for name, user in people.items()
    }
    return people, tickets


def visible(client, user) -> set[int]:
    return {t["id"] for t in ApiClient(client, user).get("/api/tickets").json["items"]}


def test_a_manager_sees_the_organizations_tickets_and_no_others(client, orgs):
    people, tickets = orgs
    manager = ApiClient(client, people["manager"])

    assert visible(client, people["manager"]) == {tickets["manager"], tickets["member"]}
    assert manager.get(f"/api/tickets/{tickets['member']}").json["id"] == tickets["member"]
    # ... and acts on it as on their own
    reply = manager.post(f"/api/tickets/{tickets['member']}/messages", json={"body": "Any news?"})
    assert reply.status_code == 201, reply.json
    assert_error(manager.get(f"/api/tickets/{tickets['b_manager']}"), 404)


def test_a_plain_member_sees_only_their_own(client, orgs):
    people, tickets = orgs
    member = ApiClient(client, people["member"])

    assert visible(client, people["member"]) == {tickets["member"]}
    assert_error(member.get(f"/api/tickets/{tickets['manager']}"), 404)
    assert visible(client, people["b_manager"]) == {tickets["b_manager"]}


def test_a_manager_who_leaves_loses_the_view(client, factory, orgs):
    people, tickets = orgs
    org_id = people["manager"].organization_id
    organizations.do_remove_member(factory.admin(), org_id, people["manager"].id)

    assert visible(client, people["manager"]) == {tickets["manager"]}


def test_a_customer_sees_own_followed_and_organization_tickets_and_nothing_else(
    client, factory, orgs
):
    """Every way a customer sees a ticket at once (the policy's OR of requester, follower and
    organization manager), through the list, a search and each ticket: a merged ticket only
    to its requester, its followers moved to the ticket it was merged into."""
    people, tickets = orgs
    admin = factory.admin()
    outsider = factory.customer(name="Outsider")
    made = {
        name: factory.ticket(user, subject=f"{name} ticket").id
        for name, user in (
            ("followed", outsider),
            ("unrelated", outsider),
            ("followed_merged", outsider),
            ("member_merged", people["member"]),
            ("b_followed", people["b_manager"]),
        )
    }
    for name in ("followed", "followed_merged"):
        followers.do_add_follower(admin, made[name], user_id=people["manager"].id)
    followers.do_add_follower(admin, made["b_followed"], user_id=people["member"].id)
    merging.do_merge(admin, made["followed_merged"], made["unrelated"])
    merging.do_merge(admin, made["member_merged"], tickets["member"])
    expected = {
        "manager": {tickets["manager"], tickets["member"], made["followed"], made["unrelated"]},
        "member": {tickets["member"], made["member_merged"], made["b_followed"]},
        "b_manager": {tickets["b_manager"], made["b_followed"]},
    }
    everything = set(tickets.values()) | set(made.values())
    for name, sees in expected.items():
        api = ApiClient(client, people[name])
        assert visible(client, people[name]) == sees, name
        found = api.get("/api/tickets", query_string={"q": "ticket", "limit": 200}).json["items"]
        assert {t["id"] for t in found} == sees, name
        for ticket_id in everything:
            status = api.get(f"/api/tickets/{ticket_id}").status_code
            assert status == (200 if ticket_id in sees else 404), (name, ticket_id)


def test_portal_shows_a_manager_colleagues_tickets_with_the_requester(client, orgs):
    people, tickets = orgs
    web_login(client, people["manager"])

    dashboard = client.get("/portal/").get_data(as_text=True)
    assert "Tickets of A" in dashboard
    assert "member ticket" in dashboard and "from Member" in dashboard
    assert "from Manager" not in dashboard  # their own tickets need no name
    assert "b_manager ticket" not in dashboard
    assert client.get(f"/portal/tickets/{tickets['member']}").status_code == 200
    assert client.get(f"/portal/tickets/{tickets['b_manager']}").status_code == 404


def test_portal_hides_colleagues_tickets_from_a_plain_member(client, orgs):
    people, tickets = orgs
    web_login(client, people["member"])

    assert "manager ticket" not in client.get("/portal/").get_data(as_text=True)
    assert client.get(f"/portal/tickets/{tickets['manager']}").status_code == 404


def test_staff_filter_the_ticket_list_by_organization(client, factory, orgs):
    people, tickets = orgs
    admin = ApiClient(client, factory.admin())
    org_id = people["manager"].organization_id

    listed = admin.get("/api/tickets", query_string={"organization_id": org_id}).json["items"]

    assert {t["id"] for t in listed} == {tickets["manager"], tickets["member"]}
    bad = admin.get("/api/tickets", query_string={"organization_id": "x"})
    assert "organization_id" in assert_error(bad, 422)["errors"]["query"]


def test_a_customer_made_staff_leaves_their_organization(client, factory, orgs):
    people, _ = orgs
    manager = people["manager"]
    admin = ApiClient(client, factory.admin())

    changed = admin.patch(f"/api/users/{manager.id}", json={"role": "agent"})

    assert changed.status_code == 200, changed.json
    assert (changed.json["organization"], changed.json["organization_manager"]) == (None, False)
