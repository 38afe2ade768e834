"""Queue views over the REST API: the built-in views and what they hold, saving views with
each scope, who sees and changes which (another team's view is missing, customers are
refused, only admins make global views), filters validated field by field, and a view's
tickets agreeing with its count and with ``GET /api/tickets`` given the same filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.sla.models import SlaClock
from autocrm.tickets import search
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority
from tests.factories import ApiClient, assert_error


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def ids_of(page: dict[str, Any]) -> set[int]:
    return {t["id"] for t in page["items"]}


@pytest.fixture
def world(factory, db_session) -> dict[str, Any]:
    """Two teams; an agent in "support"; tickets of each kind the built-in views tell apart."""
    support, billing = factory.team("Support"), factory.team("Billing")
    agent = factory.agent(support, name="Ann Agent")
    colleague = factory.agent(support, name="Col League")
    outsider = factory.agent(billing, name="Bill Outsider")
    admin = factory.admin(name="Ada Admin")
    customer = factory.customer(name="Cus Tomer")
    mine = factory.ticket(customer, team=support, assignee_id=agent.id, subject="Mine open")
    mine_solved = factory.ticket(customer, team=support, assignee_id=agent.id, subject="Mine done")
    tickets.do_transition(admin, mine_solved.id, "solve")
    unassigned = factory.ticket(customer, team=support, subject="Nobody's", priority=Priority.HIGH)
    theirs = factory.ticket(
        customer, team=support, assignee_id=colleague.id, subject="Theirs: toner"
    )
    tickets.do_transition(admin, theirs.id, "start")
    tickets.do_transition(admin, theirs.id, "wait_on_customer")
    billing_ticket = factory.ticket(customer, team=billing, subject="Billing's")
    return {
        "support": support,
        "billing": billing,
        "agent": agent,
        "colleague": colleague,
        "outsider": outsider,
        "admin": admin,
        "customer": customer,
        "mine": mine,
        "mine_solved": mine_solved,
        "unassigned": unassigned,
        "theirs": theirs,
        "billing_ticket": billing_ticket,
    }


@pytest.fixture
def agent_api(client, world) -> ApiClient:
    return ApiClient(client, world["agent"])


def view_tickets(api: ApiClient, view_id: str) -> set[int]:
    return ids_of(ok(api.get(f"/api/views/{view_id}/tickets?limit=200")))


def test_builtin_views_hold_what_their_names_say(agent_api, world):
    listing = ok(agent_api.get("/api/views?counts=1"))
    assert listing["default"] == "my_unsolved"
    by_id = {v["id"]: v for v in listing["items"]}
    assert [v["name"] for v in listing["items"]][:7] == [
        "My unsolved",
        "Unassigned in my teams",
        "All unsolved",
        "Pending",
        "SLA at risk",
        "Recently solved",
        "All tickets",
    ]
    assert all(v["builtin"] and not v["editable"] for v in listing["items"][:7])
    expected = {
        "my_unsolved": {world["mine"].id},
        "unassigned_my_teams": {world["unassigned"].id},
        "unsolved": {world["mine"].id, world["unassigned"].id, world["theirs"].id},
        "pending": {world["theirs"].id},
        "recently_solved": {world["mine_solved"].id},
        # An agent sees their teams' tickets (and triage), never billing's.
        "all": {
            world["mine"].id,
            world["mine_solved"].id,
            world["unassigned"].id,
            world["theirs"].id,
        },
    }
    for view_id, ticket_ids in expected.items():
        assert view_tickets(agent_api, view_id) == ticket_ids, view_id
        assert by_id[view_id]["count"] == len(ticket_ids), view_id
    # Without counts=1 nothing is counted.
    assert all(v["count"] is None for v in ok(agent_api.get("/api/views"))["items"])


def test_sla_at_risk_holds_breached_and_due_soon_tickets(agent_api, world, db_session):
    now = utcnow()
    due = {
        world["mine"].id: (now - timedelta(minutes=5), None),  # breached
        world["unassigned"].id: (now + timedelta(hours=3), now - timedelta(minutes=1)),  # warned
        world["theirs"].id: (now + timedelta(hours=5), None),  # on track
    }
    for clock in db_session.scalars(select(SlaClock)):
        if clock.ticket_id in due and clock.stopped_at is None:
            clock.due_at, clock.warn_at = due[clock.ticket_id]
        else:
            clock.stopped_at = now
    db_session.commit()
    assert view_tickets(agent_api, "sla_at_risk") == {world["mine"].id, world["unassigned"].id}
    # The same filter on the list endpoint.
    listed = ok(agent_api.get("/api/tickets?sla=breached&limit=200"))
    assert ids_of(listed) == {world["mine"].id}
    listed = ok(agent_api.get("/api/tickets?sla=on_track&limit=200"))
    assert ids_of(listed) == {world["theirs"].id}


def test_saved_view_round_trip_and_its_tickets_match_the_list_endpoint(agent_api, world):
    created = ok(
        agent_api.post(
            "/api/views",
            json={"name": "  Urgent-ish  ", "filters": {"priority": ["high"], "unassigned": True}},
        ),
        201,
    )
    assert created["name"] == "Urgent-ish"
    assert created["scope"] == "personal" and created["owner_id"] == world["agent"].id
    assert created["filters"] == {"priority": ["high"], "unassigned": True}
    assert created["editable"] is True
    view_id = created["id"]
    assert view_tickets(agent_api, view_id) == {world["unassigned"].id}
    same = ok(agent_api.get("/api/tickets?priority=high&unassigned=true&limit=200"))
    assert ids_of(same) == {world["unassigned"].id}
    changed = ok(
        agent_api.patch(
            f"/api/views/{view_id}", json={"name": "Waiting", "filters": {"category": ["pending"]}}
        )
    )
    assert changed["name"] == "Waiting" and changed["filters"] == {"category": ["pending"]}
    assert view_tickets(agent_api, view_id) == {world["theirs"].id}
    listing = ok(agent_api.get("/api/views?counts=1"))
    assert [v["count"] for v in listing["items"] if v["id"] == view_id] == [1]
    ok(agent_api.delete(f"/api/views/{view_id}"))
    assert_error(agent_api.get(f"/api/views/{view_id}"), 404)
    assert_error(agent_api.delete(f"/api/views/{view_id}"), 404)


def test_team_views_are_seen_by_the_team_only(client, agent_api, world):
    team_view = ok(
        agent_api.post(
            "/api/views",
            json={
                "name": "Support high",
                "scope": "team",
                "team_id": world["support"].id,
                "filters": {"priority": ["high"]},
            },
        ),
        201,
    )
    colleague = ApiClient(client, world["colleague"])
    outsider = ApiClient(client, world["outsider"])
    assert team_view["id"] in {v["id"] for v in ok(colleague.get("/api/views"))["items"]}
    # A colleague may change it; an agent of another team does not even see it.
    ok(colleague.patch(f"/api/views/{team_view['id']}", json={"position": 3}))
    assert team_view["id"] not in {v["id"] for v in ok(outsider.get("/api/views"))["items"]}
    assert_error(outsider.get(f"/api/views/{team_view['id']}"), 404)
    assert_error(outsider.get(f"/api/views/{team_view['id']}/tickets"), 404)
    assert_error(outsider.patch(f"/api/views/{team_view['id']}", json={"name": "Mine"}), 404)
    assert_error(outsider.delete(f"/api/views/{team_view['id']}"), 404)
    # ... nor may they make views for a team they are not in.
    refused = assert_error(
        outsider.post(
            "/api/views", json={"name": "Sneaky", "scope": "team", "team_id": world["support"].id}
        ),
        403,
    )
    assert "team" in refused["message"]


def test_personal_views_are_their_owners_only(client, agent_api, world):
    mine = ok(agent_api.post("/api/views", json={"name": "Just me"}), 201)
    colleague = ApiClient(client, world["colleague"])
    assert_error(colleague.get(f"/api/views/{mine['id']}"), 404)
    assert mine["id"] not in {v["id"] for v in ok(colleague.get("/api/views"))["items"]}
    # An admin neither sees nor changes someone's personal view.
    admin = ApiClient(client, world["admin"])
    assert_error(admin.delete(f"/api/views/{mine['id']}"), 404)


def test_only_admins_make_global_views(client, agent_api, world):
    refused = assert_error(
        agent_api.post("/api/views", json={"name": "All", "scope": "global"}), 403
    )
    assert "administrators" in refused["message"]
    admin = ApiClient(client, world["admin"])
    made = ok(admin.post("/api/views", json={"name": "Urgent", "scope": "global"}), 201)
    # Every agent sees it; none may change it.
    assert made["id"] in {v["id"] for v in ok(agent_api.get("/api/views"))["items"]}
    seen = ok(agent_api.get(f"/api/views/{made['id']}"))
    assert seen["editable"] is False
    assert_error(agent_api.patch(f"/api/views/{made['id']}", json={"name": "Mine now"}), 403)
    assert_error(agent_api.delete(f"/api/views/{made['id']}"), 403)
    # Nor turn their own view into a global one.
    own = ok(agent_api.post("/api/views", json={"name": "Own"}), 201)
    assert_error(agent_api.patch(f"/api/views/{own['id']}", json={"scope": "global"}), 403)


def test_customers_have_no_views(client, world):
    customer = ApiClient(client, world["customer"])
    assert_error(customer.get("/api/views"), 403)
    assert_error(customer.post("/api/views", json={"name": "Mine"}), 403)
    assert_error(customer.get("/api/views/my_unsolved/tickets"), 403)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "filters": {"priority": ["extreme"]}}, "priority"),
        ({"name": "x", "filters": {"category": ["done"]}}, "category"),
        ({"name": "x", "filters": {"sla": "late"}}, "sla"),
        ({"name": "x", "filters": {"colour": "red"}}, "colour"),
        ({"name": "x", "filters": {"tag": "no spaces"}}, "tag"),
        ({"name": "x", "filters": {"team_id": 2**40}}, "team_id"),
    ],
)
def test_bad_filters_are_422_naming_the_field(agent_api, body, field):
    error = assert_error(agent_api.post("/api/views", json=body), 422)
    assert field in str(error["errors"])


def test_bad_view_fields_are_422(agent_api, world):
    assert "name" in str(assert_error(agent_api.post("/api/views", json={"name": "  "}), 422))
    no_team = assert_error(agent_api.post("/api/views", json={"name": "T", "scope": "team"}), 422)
    assert "team_id" in no_team["errors"]
    unknown_team = assert_error(
        agent_api.post("/api/views", json={"name": "T", "scope": "team", "team_id": 999999}), 422
    )
    assert "team_id" in unknown_team["errors"]
    assert_error(agent_api.post("/api/views", json={"name": "T", "sort": "subject"}), 422)
    assert_error(agent_api.get("/api/views/no_such_view"), 404)
    assert_error(agent_api.get("/api/views/99999999999999/tickets"), 404)


def test_a_view_with_a_search_counts_what_it_lists(agent_api, world):
    for q, expected in (
        ("toner", {world["theirs"].id}),  # full text
        (f"#{world['mine'].id}", {world["mine"].id}),  # a ticket number
        ("?!", set()),  # no word: matched as typed
    ):
        made = ok(agent_api.post("/api/views", json={"name": q, "filters": {"q": q}}), 201)
        assert view_tickets(agent_api, made["id"]) == expected, q
        counted = {v["id"]: v["count"] for v in ok(agent_api.get("/api/views?counts=1"))["items"]}
        assert counted[made["id"]] == len(expected), q


def test_a_search_view_stops_counting_above_the_limit_and_says_so(
    agent_api, world, factory, monkeypatch
):
    # A common word matches most tickets; counting them all took seconds at 1M tickets, so a
    # search counts up to search.COUNT_LIMIT (1000; 2 here) and then says "more than that".
    monkeypatch.setattr(search, "COUNT_LIMIT", 2)
    made = ok(
        agent_api.post("/api/views", json={"name": "Printers", "filters": {"q": "printer"}}), 201
    )

    def counts() -> dict[str, tuple[int, bool]]:
        listing = ok(agent_api.get("/api/views?counts=1"))["items"]
        return {v["id"]: (v["count"], v["count_more"]) for v in listing}

    for subject in ("Printer jammed", "Printer offline"):
        factory.ticket(world["customer"], team=world["support"], subject=subject)
    assert counts()[made["id"]] == (2, False)
    factory.ticket(world["customer"], team=world["support"], subject="Printer again")
    assert counts()[made["id"]] == (2, True)
    assert len(view_tickets(agent_api, made["id"])) == 3  # every match is still listed
    assert counts()["all"] == (7, False)  # a view without a search is counted exactly
