"""/api/users and /api/teams: who may see and manage people and teams, and what that changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from autocrm.people.models import AssignmentPolicy, Role
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket, TicketEvent
from tests.factories import ApiClient, assert_error, drain


def collect_pages(api: ApiClient, url: str, **params) -> list[dict]:
    """Every item of a keyset-paginated listing, following ``next_cursor``."""
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get(url, query_string=query)
        assert response.status_code == 200, response.json
        items.extend(response.json["items"])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


# -- /api/users/me and /api/users/{id} ------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_me_returns_the_caller(client, factory, role):
    team = factory.team()
    user = factory.user(role, teams_=[team] if role.is_staff else [], name="Pat Person")
    expected = {
        "id": user.id,
        "email": user.email,
        "name": "Pat Person",
        "role": role.value,
        "active": True,
        "team_ids": [team.id] if role.is_staff else [],
    }

    response = ApiClient(client, user).get("/api/users/me")

    assert response.status_code == 200, response.json
    assert {k: response.json[k] for k in expected} == expected
    assert response.json["created_at"]
    assert not {"password", "password_hash"} & set(response.json)


def test_customer_sees_only_themselves(client, factory):
    customer, other, agent = factory.customer(), factory.customer(), factory.agent()
    api = ApiClient(client, customer)

    assert api.get(f"/api/users/{customer.id}").json["id"] == customer.id
    assert_error(api.get(f"/api/users/{other.id}"), 404)
    assert_error(api.get(f"/api/users/{agent.id}"), 404)
    # An unknown id answers exactly like a hidden one: ids can't be probed.
    hidden = api.get(f"/api/users/{other.id}").json
    missing = api.get("/api/users/999999").json
    assert (hidden["code"], hidden["errors"]) == (missing["code"], missing["errors"])


@pytest.mark.parametrize("role", [Role.AGENT, Role.ADMIN])
def test_staff_see_any_user(client, factory, role):
    staff = factory.user(role)
    customer = factory.customer(name="Casey")
    api = ApiClient(client, staff)

    response = api.get(f"/api/users/{customer.id}")

    assert response.status_code == 200
    assert (response.json["id"], response.json["name"], response.json["role"]) == (
        customer.id,
        "Casey",
        "customer",
    )
    assert_error(api.get("/api/users/999999"), 404)


# -- creating users -------------------------------------------------------------------------------


def test_admin_creates_a_user_who_can_then_log_in(client, factory):
    api = ApiClient(client, factory.admin())

    created = api.post(
        "/api/users",
        json={
            "email": "New.Agent@Example.test",
            "password": "long enough pw",
            "role": "agent",
            "name": "Nia New",
        },
    )

    assert created.status_code == 201, created.json
    body = created.json
    assert body["email"] == "new.agent@example.test"
    assert (body["name"], body["role"], body["active"], body["team_ids"]) == (
        "Nia New",
        "agent",
        True,
        [],
    )
    assert "password" not in body
    assert api.get(f"/api/users/{body['id']}").json["email"] == "new.agent@example.test"
    token = client.post(
        "/api/auth/token", json={"email": "new.agent@example.test", "password": "long enough pw"}
    )
    assert token.status_code == 200


def test_created_user_name_defaults_to_email_local_part(client, factory):
    api = ApiClient(client, factory.admin())

    created = api.post(
        "/api/users",
        json={"email": "sam@example.test", "password": "long enough pw", "role": "customer"},
    )

    assert created.status_code == 201
    assert created.json["name"] == "sam"


def test_duplicate_email_is_422_on_email_whatever_its_case(client, factory):
    existing = factory.customer(email="taken@example.test")
    api = ApiClient(client, factory.admin())

    response = api.post(
        "/api/users",
        json={"email": "TAKEN@example.test", "password": "long enough pw", "role": "agent"},
    )

    body = assert_error(response, 422)
    assert "email" in body["errors"]
    assert api.get(f"/api/users/{existing.id}").json["role"] == "customer"


def test_short_password_is_422_on_password(client, factory):
    api = ApiClient(client, factory.admin())

    body = assert_error(
        api.post(
            "/api/users",
            json={"email": "short@example.test", "password": "1234567", "role": "agent"},
        ),
        422,
    )

    assert "password" in body["errors"]
    listed = api.get("/api/users", query_string={"q": "short@example.test"}).json["items"]
    assert listed == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@example.test", "password": "long enough pw", "role": "superuser"}, "role"),
        ({"email": "not-an-email", "password": "long enough pw", "role": "agent"}, "email"),
        ({"password": "long enough pw", "role": "agent"}, "email"),
        ({"email": "x@example.test", "role": "agent"}, "password"),
        ({"email": "x@example.test", "password": "long enough pw"}, "role"),
        (
            {
                "email": "x@example.test",
                "password": "long enough pw",
                "role": "agent",
                "active": False,
            },
            "active",
        ),
        (
            {"email": "x@example.test", "password": "long enough pw", "role": "agent", "name": ""},
            "name",
        ),
    ],
)
def test_invalid_user_body_is_422_naming_the_field(client, factory, body, field):
    api = ApiClient(client, factory.admin())

    response = assert_error(api.post("/api/users", json=body), 422)

    assert field in response["errors"]["json"]


# -- admin-only management ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT])
def test_non_admins_cannot_manage_users(client, factory, role):
    target = factory.customer(name="Untouched")
    api = ApiClient(client, factory.user(role))

    assert_error(
        api.post(
            "/api/users",
            json={"email": "x@example.test", "password": "long enough pw", "role": "admin"},
        ),
        403,
    )
    assert_error(api.get("/api/users"), 403)
    assert_error(api.patch(f"/api/users/{target.id}", json={"name": "Changed"}), 403)
    assert_error(api.patch(f"/api/users/{target.id}", json={"role": "admin"}), 403)
    assert ApiClient(client, factory.admin()).get(f"/api/users/{target.id}").json["name"] == (
        "Untouched"
    )


def test_non_admin_cannot_promote_themselves(client, factory):
    agent = factory.agent()
    api = ApiClient(client, agent)

    assert_error(api.patch(f"/api/users/{agent.id}", json={"role": "admin"}), 403)
    assert api.get("/api/users/me").json["role"] == "agent"


# -- listing users --------------------------------------------------------------------------------


def test_list_users_filters_by_role(client, factory):
    admin = factory.admin()
    agents = {factory.agent().id for _ in range(2)}
    customers = {factory.customer().id for _ in range(3)}
    api = ApiClient(client, admin)

    listed_agents = collect_pages(api, "/api/users", role="agent")
    listed_customers = collect_pages(api, "/api/users", role="customer")

    assert {u["id"] for u in listed_agents} == agents
    assert {u["role"] for u in listed_agents} == {"agent"}
    assert {u["id"] for u in listed_customers} == customers
    assert_error(api.get("/api/users", query_string={"role": "boss"}), 422)


def test_list_users_filters_by_status_and_team(client, factory):
    admin = factory.admin()
    team, other = factory.team(), factory.team()
    member, leaver = factory.agent(team), factory.agent(team, other)
    outsider = factory.agent(other)
    api = ApiClient(client, admin)
    assert api.patch(f"/api/users/{leaver.id}", json={"active": False}).status_code == 200

    def listed(**query):
        return {u["id"] for u in collect_pages(api, "/api/users", **query)}

    assert listed(team_id=team.id) == {member.id, leaver.id}
    assert listed(team_id=other.id, active="true") == {outsider.id}
    assert listed(active="false") == {leaver.id}
    error = assert_error(api.get("/api/users", query_string={"active": "maybe"}), 422)
    assert "active" in str(error["errors"])
    assert_error(api.get("/api/users", query_string={"team_id": "x"}), 422)


def test_list_users_searches_email_and_name_case_insensitively(client, factory):
    api = ApiClient(client, factory.admin())
    by_name = factory.customer(name="Zora Quill")
    by_email = factory.customer(email="zora.q@example.test", name="Someone")
    factory.customer(name="Other Person")
    literal = factory.customer(email="under_score@example.test")
    factory.customer(email="underXscore@example.test")

    found = {u["id"] for u in collect_pages(api, "/api/users", q="ZORA")}
    assert found == {by_name.id, by_email.id}
    # LIKE wildcards in the query are matched literally.
    assert {u["id"] for u in collect_pages(api, "/api/users", q="under_")} == {literal.id}
    assert collect_pages(api, "/api/users", q="%") == []


def test_list_users_pages_through_everyone_once_in_id_order(client, factory):
    admin = factory.admin()
    ids = [admin.id] + [factory.customer().id for _ in range(6)]
    api = ApiClient(client, admin)

    first = api.get("/api/users", query_string={"limit": 3})
    assert first.status_code == 200
    assert len(first.json["items"]) == 3
    assert first.json["next_cursor"]
    listed = [u["id"] for u in collect_pages(api, "/api/users", limit=3)]

    assert listed == sorted(ids)
    assert_error(api.get("/api/users", query_string={"cursor": "bogus"}), 422)
    assert_error(api.get("/api/users", query_string={"limit": 0}), 422)


# -- updating users -------------------------------------------------------------------------------


def test_admin_changes_role_name_and_active(client, factory):
    api = ApiClient(client, factory.admin())
    user = factory.customer()

    response = api.patch(
        f"/api/users/{user.id}", json={"role": "agent", "name": "Promoted", "active": False}
    )

    assert response.status_code == 200, response.json
    assert (response.json["role"], response.json["name"], response.json["active"]) == (
        "agent",
        "Promoted",
        False,
    )
    again = api.get(f"/api/users/{user.id}").json
    assert (again["role"], again["name"], again["active"]) == ("agent", "Promoted", False)


def test_admin_changes_email_normalized_and_unique(client, factory):
    api = ApiClient(client, factory.admin())
    user = factory.customer()
    other = factory.customer(email="other@example.test")

    changed = api.patch(f"/api/users/{user.id}", json={"email": "New.Address@Example.test"})
    assert changed.status_code == 200
    assert changed.json["email"] == "new.address@example.test"

    clash = assert_error(
        api.patch(f"/api/users/{user.id}", json={"email": "OTHER@example.test"}), 422
    )
    assert "email" in clash["errors"]
    assert api.get(f"/api/users/{other.id}").json["email"] == "other@example.test"
    assert api.get(f"/api/users/{user.id}").json["email"] == "new.address@example.test"


def test_patch_rejects_short_password_and_unknown_fields(client, factory):
    api = ApiClient(client, factory.admin())
    user = factory.customer()

    assert (
        "password"
        in assert_error(api.patch(f"/api/users/{user.id}", json={"password": "short"}), 422)[
            "errors"
        ]
    )
    assert (
        "team_ids"
        in assert_error(api.patch(f"/api/users/{user.id}", json={"team_ids": [1]}), 422)["errors"][
            "json"
        ]
    )
    assert_error(api.patch("/api/users/999999", json={"name": "Ghost"}), 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"active": False}, "active"),
        ({"role": "agent"}, "role"),
        ({"role": "customer"}, "role"),
        ({"role": "agent", "name": "Still Me"}, "role"),
    ],
)
def test_admin_cannot_deactivate_or_demote_themselves(client, factory, change, field):
    admin = factory.admin(name="Ada")
    api = ApiClient(client, admin)

    body = assert_error(api.patch(f"/api/users/{admin.id}", json=change), 422)

    assert field in body["errors"]
    me = api.get("/api/users/me")
    assert me.status_code == 200
    assert (me.json["role"], me.json["active"], me.json["name"]) == ("admin", True, "Ada")


def test_admin_may_edit_their_own_name(client, factory):
    admin = factory.admin()
    api = ApiClient(client, admin)

    response = api.patch(f"/api/users/{admin.id}", json={"name": "Ada L.", "role": "admin"})

    assert response.status_code == 200
    assert response.json["name"] == "Ada L."


def test_admin_can_deactivate_and_demote_another_admin(client, factory):
    api = ApiClient(client, factory.admin())
    other = factory.admin()

    response = api.patch(f"/api/users/{other.id}", json={"role": "agent", "active": False})

    assert response.status_code == 200
    assert (response.json["role"], response.json["active"]) == ("agent", False)


def test_demoting_staff_to_customer_removes_them_from_teams(client, factory):
    lead = factory.agent()
    team = factory.team(lead=lead)
    api = ApiClient(client, factory.admin())

    response = api.patch(f"/api/users/{lead.id}", json={"role": "customer"})

    if response.status_code == 422:  # refusing the demotion is also a consistent answer
        assert api.get(f"/api/users/{lead.id}").json["role"] == "agent"
        return
    assert response.status_code == 200
    assert response.json["team_ids"] == []
    team_now = api.get(f"/api/teams/{team.id}").json
    assert lead.id not in team_now["member_ids"]
    assert team_now["lead_id"] is None


# -- teams ----------------------------------------------------------------------------------------


def test_admin_creates_a_team_with_a_lead_who_becomes_a_member(client, factory):
    lead = factory.agent()
    api = ApiClient(client, factory.admin())

    created = api.post(
        "/api/teams", json={"name": "Support", "description": "Help", "lead_id": lead.id}
    )

    assert created.status_code == 201, created.json
    body = created.json
    assert (body["name"], body["description"], body["lead_id"]) == ("Support", "Help", lead.id)
    assert body["member_ids"] == [lead.id]
    assert api.get(f"/api/teams/{body['id']}").json["member_ids"] == [lead.id]
    assert api.get(f"/api/users/{lead.id}").json["team_ids"] == [body["id"]]


def test_team_without_lead_starts_empty(client, factory):
    api = ApiClient(client, factory.admin())

    created = api.post("/api/teams", json={"name": "Billing"})

    assert created.status_code == 201
    assert (created.json["lead_id"], created.json["member_ids"], created.json["description"]) == (
        None,
        [],
        "",
    )


def test_duplicate_team_name_is_422_on_name(client, factory):
    factory.team("Support")
    other = factory.team("Billing")
    api = ApiClient(client, factory.admin())

    assert "name" in assert_error(api.post("/api/teams", json={"name": "Support"}), 422)["errors"]
    renamed = assert_error(api.patch(f"/api/teams/{other.id}", json={"name": "Support"}), 422)
    assert "name" in renamed["errors"]
    assert api.get(f"/api/teams/{other.id}").json["name"] == "Billing"
    # Keeping one's own name is not a clash.
    assert api.patch(f"/api/teams/{other.id}", json={"name": "Billing"}).status_code == 200


@pytest.mark.parametrize("kind", ["customer", "inactive agent", "unknown"])
def test_team_lead_must_be_an_active_staff_member(client, factory, kind):
    candidate_id = {
        "customer": lambda: factory.customer().id,
        "inactive agent": lambda: factory.agent(active=False).id,
        "unknown": lambda: 999999,
    }[kind]()
    team = factory.team("Existing")
    api = ApiClient(client, factory.admin())

    created = assert_error(
        api.post("/api/teams", json={"name": "New", "lead_id": candidate_id}), 422
    )
    patched = assert_error(api.patch(f"/api/teams/{team.id}", json={"lead_id": candidate_id}), 422)

    assert "lead_id" in created["errors"] and "lead_id" in patched["errors"]
    names = [t["name"] for t in api.get("/api/teams").json["items"]]
    assert names == ["Existing"]
    assert api.get(f"/api/teams/{team.id}").json["lead_id"] is None


def test_patch_team_fields_and_new_lead_joins(client, factory):
    team = factory.team("Support")
    agent = factory.agent()
    api = ApiClient(client, factory.admin())

    response = api.patch(
        f"/api/teams/{team.id}",
        json={"name": "Product Support", "description": "Bugs", "lead_id": agent.id},
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert (body["name"], body["description"], body["lead_id"], body["member_ids"]) == (
        "Product Support",
        "Bugs",
        agent.id,
        [agent.id],
    )
    cleared = api.patch(f"/api/teams/{team.id}", json={"lead_id": None})
    assert cleared.status_code == 200
    assert (cleared.json["lead_id"], cleared.json["member_ids"]) == (None, [agent.id])


def test_staff_list_and_read_teams(client, factory):
    first, second = factory.team("Alpha"), factory.team("Beta")
    agent = factory.agent()  # not a member of either: listing is for all staff
    api = ApiClient(client, agent)

    listed = collect_pages(api, "/api/teams", limit=1)

    assert [t["id"] for t in listed] == [first.id, second.id]
    assert api.get(f"/api/teams/{second.id}").json["name"] == "Beta"
    assert_error(api.get("/api/teams/999999"), 404)


def test_customers_cannot_see_teams(client, factory):
    team = factory.team()
    api = ApiClient(client, factory.customer())

    assert_error(api.get("/api/teams"), 403)
    hidden = assert_error(api.get(f"/api/teams/{team.id}"), 404)
    missing = assert_error(api.get("/api/teams/999999"), 404)
    assert hidden["errors"] == missing["errors"]


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT])
def test_non_admins_cannot_manage_teams(client, factory, role):
    team = factory.team("Support")
    member = factory.agent(team)
    outsider = factory.agent()
    api = ApiClient(client, factory.user(role))
    admin_api = ApiClient(client, factory.admin())
    before = admin_api.get(f"/api/teams/{team.id}").json

    assert_error(api.post("/api/teams", json={"name": "Rogue"}), 403)
    assert_error(api.patch(f"/api/teams/{team.id}", json={"name": "Renamed"}), 403)
    assert_error(api.post(f"/api/teams/{team.id}/members", json={"user_id": outsider.id}), 403)
    assert_error(api.delete(f"/api/teams/{team.id}/members/{member.id}"), 403)

    assert admin_api.get(f"/api/teams/{team.id}").json == before
    assert before["member_ids"] == [member.id]
    assert [t["name"] for t in admin_api.get("/api/teams").json["items"]] == ["Support"]


# -- team members ---------------------------------------------------------------------------------


def test_add_staff_members(client, factory):
    team = factory.team()
    agent, other_admin = factory.agent(), factory.admin()
    api = ApiClient(client, factory.admin())

    added = api.post(f"/api/teams/{team.id}/members", json={"user_id": agent.id})
    assert added.status_code == 201, added.json
    assert added.json["member_ids"] == [agent.id]
    both = api.post(f"/api/teams/{team.id}/members", json={"user_id": other_admin.id})
    assert both.json["member_ids"] == sorted([agent.id, other_admin.id])
    # Adding someone twice is harmless.
    again = api.post(f"/api/teams/{team.id}/members", json={"user_id": agent.id})
    assert again.status_code == 201
    assert again.json["member_ids"] == sorted([agent.id, other_admin.id])
    assert api.get(f"/api/users/{agent.id}").json["team_ids"] == [team.id]


@pytest.mark.parametrize("kind", ["customer", "unknown"])
def test_only_existing_staff_can_be_members(client, factory, kind):
    team = factory.team()
    user_id = factory.customer().id if kind == "customer" else 999999
    api = ApiClient(client, factory.admin())

    body = assert_error(api.post(f"/api/teams/{team.id}/members", json={"user_id": user_id}), 422)

    assert "user_id" in body["errors"]
    assert api.get(f"/api/teams/{team.id}").json["member_ids"] == []


def test_member_request_validation(client, factory):
    team = factory.team()
    agent = factory.agent()
    api = ApiClient(client, factory.admin())

    assert (
        "user_id"
        in assert_error(api.post(f"/api/teams/{team.id}/members", json={}), 422)["errors"]["json"]
    )
    assert (
        "user_id"
        in assert_error(
            api.post(f"/api/teams/{team.id}/members", json={"user_id": str(agent.id)}), 422
        )["errors"]["json"]
    )
    assert_error(api.post("/api/teams/999999/members", json={"user_id": agent.id}), 404)


def test_remove_member(client, factory):
    team = factory.team()
    agent, keeper = factory.agent(team), factory.agent(team)
    api = ApiClient(client, factory.admin())

    removed = api.delete(f"/api/teams/{team.id}/members/{agent.id}")

    assert removed.status_code == 200, removed.json
    assert removed.json["member_ids"] == [keeper.id]
    assert api.get(f"/api/users/{agent.id}").json["team_ids"] == []
    assert_error(api.delete(f"/api/teams/{team.id}/members/{agent.id}"), 404)
    assert_error(api.delete(f"/api/teams/{team.id}/members/999999"), 404)
    assert_error(api.delete(f"/api/teams/999999/members/{keeper.id}"), 404)


def test_removing_the_lead_clears_lead_id(client, factory):
    lead = factory.agent()
    team = factory.team(lead=lead)
    api = ApiClient(client, factory.admin())

    removed = api.delete(f"/api/teams/{team.id}/members/{lead.id}")

    assert removed.status_code == 200
    assert (removed.json["lead_id"], removed.json["member_ids"]) == (None, [])
    assert api.get(f"/api/teams/{team.id}").json["lead_id"] is None


def test_team_membership_decides_which_tickets_an_agent_sees(client, factory):
    admin = factory.admin()
    team, other_team = factory.team(), factory.team()
    customer = factory.customer()
    agent = factory.agent(other_team)
    team_ticket = factory.ticket(customer, by=admin, team=team, subject="Team ticket").id
    triage_ticket = factory.ticket(customer, by=admin, subject="Untriaged").id
    other_ticket = factory.ticket(customer, by=admin, team=other_team, subject="Other").id
    team_id, agent_id = team.id, agent.id
    admin_api, agent_api = ApiClient(client, admin), ApiClient(client, agent)

    def visible() -> set[int]:
        return {t["id"] for t in collect_pages(agent_api, "/api/tickets")}

    assert visible() == {triage_ticket, other_ticket}
    assert_error(agent_api.get(f"/api/tickets/{team_ticket}"), 404)

    assert (
        admin_api.post(f"/api/teams/{team_id}/members", json={"user_id": agent_id}).status_code
        == 201
    )
    assert visible() == {team_ticket, triage_ticket, other_ticket}
    assert agent_api.get(f"/api/tickets/{team_ticket}").status_code == 200

    assert admin_api.delete(f"/api/teams/{team_id}/members/{agent_id}").status_code == 200
    assert visible() == {triage_ticket, other_ticket}
    assert_error(agent_api.get(f"/api/tickets/{team_ticket}"), 404)


# -- an agent leaving: their open tickets go back to the team queue ------------------------------


def _round_robin_team(factory, db_session):
    team = factory.team()
    team.assignment_policy = AssignmentPolicy.ROUND_ROBIN
    db_session.commit()
    return team


@pytest.mark.parametrize("change", [{"active": False}, {"role": "customer"}])
def test_an_agent_deactivated_or_made_a_customer_releases_their_open_tickets(
    client, factory, db_session, change
):
    team = _round_robin_team(factory, db_session)
    leaving, staying = factory.agent(team), factory.agent(team)
    customer = factory.customer()
    open_ticket = factory.ticket(customer, team=team, assignee_id=leaving.id)
    solved = factory.ticket(customer, team=team, assignee_id=leaving.id)
    tickets.do_transition(leaving, solved.id, "solve")
    admin = factory.admin()
    drain(db_session)

    response = ApiClient(client, admin).patch(f"/api/users/{leaving.id}", json=change)
    assert response.status_code == 200
    drain(db_session)  # the worker: the team's round robin picks who is left

    db_session.expire_all()
    assert db_session.get(Ticket, open_ticket.id).assignee_id == staying.id
    assert db_session.get(Ticket, solved.id).assignee_id == leaving.id  # done work keeps them
    released = db_session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == open_ticket.id, TicketEvent.kind == "ticket.updated"
        )
    ).all()
    assert {"actor_id": admin.id, "changes": {"assignee_id": [leaving.id, None]}} in [
        {"actor_id": e.actor_id, "changes": e.data["changes"]} for e in released
    ]


def test_removing_a_member_releases_their_tickets_of_that_team_only(client, factory, db_session):
    team, other_team = factory.team(), factory.team()  # manual assignment: nobody picks them
    agent = factory.agent(team, other_team)
    customer = factory.customer()
    here = factory.ticket(customer, team=team, assignee_id=agent.id)
    there = factory.ticket(customer, team=other_team, assignee_id=agent.id)

    response = ApiClient(client, factory.admin()).delete(f"/api/teams/{team.id}/members/{agent.id}")

    assert response.status_code == 200
    db_session.expire_all()
    assert db_session.get(Ticket, here.id).assignee_id is None  # back in the team queue
    assert db_session.get(Ticket, there.id).assignee_id == agent.id
