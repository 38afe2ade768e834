"""Who gets what from every ticket endpoint.

Actors: the requester (customer A), another customer (B), an agent in the ticket's team, an agent
of another team, an agent in no team, and an admin. A ticket the caller may not see answers 404,
exactly like a ticket that does not exist (never 403, which would confirm that it exists); a
refused call changes nothing. A team-less ticket (the triage queue) is visible to every agent.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ApiClient

ACTORS = (
    "requester",
    "other_customer",
    "team_agent",
    "other_team_agent",
    "teamless_agent",
    "admin",
)

# endpoint: (method, path under /api/tickets/<id>, JSON body)
ENDPOINTS = {
    "get": ("get", "", None),
    "patch": ("patch", "", {"priority": "high"}),
    "list_transitions": ("get", "/transitions", None),
    "transition": ("post", "/transitions", {"name": "solve"}),
    "list_messages": ("get", "/messages", None),
    "post_message": ("post", "/messages", {"body": "Hello"}),
    "events": ("get", "/events", None),
    "feedback": ("post", "/feedback", {"rating": 5}),  # on the ticket once solved
}

# Statuses in ACTORS order. The customer's PATCH is 422: customers may change no field.
# Feedback is the requester's alone: staff who see the ticket get 403.
IN_TEAM = {  #       req  other  team  o-team  no-team  admin
    "get":              (200, 404, 200, 404, 404, 200),
    "patch":            (422, 404, 200, 404, 404, 200),
    "list_transitions": (200, 404, 200, 404, 404, 200),
    "transition":       (200, 404, 200, 404, 404, 200),
    "list_messages":    (200, 404, 200, 404, 404, 200),
    "post_message":     (201, 404, 201, 404, 404, 201),
    "events":           (200, 404, 200, 404, 404, 200),
    "feedback":         (201, 404, 403, 404, 404, 403),
}  # fmt: skip
TEAMLESS = {  #      req  other  team  o-team  no-team  admin
    "get":              (200, 404, 200, 200, 200, 200),
    "patch":            (422, 404, 200, 200, 200, 200),
    "list_transitions": (200, 404, 200, 200, 200, 200),
    "transition":       (200, 404, 200, 200, 200, 200),
    "list_messages":    (200, 404, 200, 200, 200, 200),
    "post_message":     (201, 404, 201, 201, 201, 201),
    "events":           (200, 404, 200, 200, 200, 200),
    "feedback":         (201, 404, 403, 403, 403, 403),
}  # fmt: skip
MATRIX = [
    pytest.param(kind, endpoint, actor, statuses[i], id=f"{kind}-{endpoint}-{actor}")
    for kind, table in (("in_team", IN_TEAM), ("teamless", TEAMLESS))
    for endpoint, statuses in table.items()
    for i, actor in enumerate(ACTORS)
]


@pytest.fixture
def world(factory, client):
    """The six actors, a ticket of A in ``team`` and a team-less ticket of A, each with a
    public reply, an internal note, a field change and a status change behind it."""
    team, other_team = factory.team(), factory.team()
    users = {
        "requester": factory.customer(),
        "other_customer": factory.customer(),
        "team_agent": factory.agent(team),
        "other_team_agent": factory.agent(other_team),
        "teamless_agent": factory.agent(),
        "admin": factory.admin(),
    }
    apis = {name: ApiClient(client, user) for name, user in users.items()}
    admin = apis["admin"]
    tickets = {}
    for kind, team_id in (("in_team", team.id), ("teamless", None)):
        created = admin.post(
            "/api/tickets",
            json={
                "subject": f"{kind} ticket",
                "description": "Help",
                "requester_id": users["requester"].id,
                "team_id": team_id,
            },
        )
        assert created.status_code == 201, created.json
        ticket_id = created.json["id"]
        url = f"/api/tickets/{ticket_id}"
        for resp in (
            admin.post(f"{url}/messages", json={"body": "We are on it"}),
            admin.post(f"{url}/messages", json={"body": "Upset customer", "internal": True}),
            admin.patch(url, json={"priority": "urgent", "assignee_id": users["team_agent"].id}),
            admin.post(f"{url}/transitions", json={"name": "start"}),
        ):
            assert resp.status_code in (200, 201), resp.json
        tickets[kind] = ticket_id
    return {"apis": apis, "tickets": tickets}


def call(api: ApiClient, ticket_id: int, endpoint: str) -> Any:
    method, path, body = ENDPOINTS[endpoint]
    kw = {"json": body} if body is not None else {}
    return getattr(api, method)(f"/api/tickets/{ticket_id}{path}", **kw)


def snapshot(admin: ApiClient, ticket_id: int) -> list[Any]:
    """Everything a refused call could have changed, as the admin sees it."""
    return [call(admin, ticket_id, name).json for name in ("get", "list_messages", "events")]


@pytest.mark.parametrize(("kind", "endpoint", "actor", "expected"), MATRIX)
def test_role_matrix(world, kind, endpoint, actor, expected):
    api, admin = world["apis"][actor], world["apis"]["admin"]
    ticket_id = world["tickets"][kind]
    if endpoint == "feedback":
        assert call(admin, ticket_id, "transition").status_code == 200  # solve it first
    before = snapshot(admin, ticket_id)

    resp = call(api, ticket_id, endpoint)

    assert resp.status_code == expected, resp.get_data(as_text=True)
    body = resp.get_json()
    if expected >= 400:
        assert {"code", "status", "message", "errors"} <= set(body)
        assert body["code"] == expected
        assert snapshot(admin, ticket_id) == before, "a refused call changed the ticket"
    if expected == 404:
        unknown = call(api, 999_999, endpoint).get_json()
        assert body == {**unknown, "message": unknown["message"].replace("999999", str(ticket_id))}
    if endpoint == "get" and expected == 200:
        assert body["id"] == ticket_id


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        ("requester", {"in_team", "teamless"}),
        ("other_customer", set()),
        ("team_agent", {"in_team", "teamless"}),
        ("other_team_agent", {"teamless"}),
        ("teamless_agent", {"teamless"}),
        ("admin", {"in_team", "teamless"}),
    ],
)
def test_listing_shows_exactly_the_visible_tickets(world, actor, sees):
    page = world["apis"][actor].get("/api/tickets?limit=200")
    assert page.status_code == 200, page.json
    listed = {t["id"] for t in page.json["items"]}
    assert listed == {world["tickets"][kind] for kind in sees}


def test_filtering_by_someone_elses_requester_id_reveals_nothing(world):
    requester_id = world["apis"]["requester"].user.id
    page = world["apis"]["other_customer"].get(f"/api/tickets?requester_id={requester_id}")
    assert page.status_code == 200
    assert page.json["items"] == []


@pytest.mark.parametrize("kind", ["in_team", "teamless"])
@pytest.mark.parametrize("query", ["", "?after=0", "?limit=1"])
def test_customers_never_receive_internal_notes(world, kind, query):
    url = f"/api/tickets/{world['tickets'][kind]}/messages{query}"
    staff = world["apis"]["admin"].get(url.replace("limit=1", "limit=2")).json["items"]
    customer = world["apis"]["requester"].get(url).json
    assert [m["internal"] for m in staff] == [False, True]
    assert [m["body"] for m in customer["items"]] == ["We are on it"]
    assert customer["has_more"] is False


@pytest.mark.parametrize("kind", ["in_team", "teamless"])
def test_customers_see_only_public_events(world, kind):
    url = f"/api/tickets/{world['tickets'][kind]}/events"
    staff = [e["kind"] for e in world["apis"]["admin"].get(url).json]
    customer = [e["kind"] for e in world["apis"]["requester"].get(url).json]
    assert {"ticket.updated", "ticket.assigned"} <= set(staff)
    assert customer == ["ticket.created", "ticket.transitioned"]
