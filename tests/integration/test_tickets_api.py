"""The ticket REST API end to end: create, list, change, transitions, conversation, feedback,
bulk; and the error cases, which all answer the one JSON shape ``{code, status, message, errors}``.

Who may see what is covered separately, in ``test_ticket_role_matrix.py``.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from typing import Any

import pytest

from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from tests.factories import ApiClient, assert_error, refusal

ON_POSTGRES = os.environ.get("AUTOCRM_TEST_DATABASE_URL", "").startswith("postgresql")
PRIORITY_RANK = {"low": 1, "normal": 2, "high": 3, "urgent": 4}


# -- helpers -----------------------------------------------------------------------------------


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def new_ticket(api: ApiClient, **fields: Any) -> dict[str, Any]:
    body = {"subject": "Printer on fire", "description": "It is on fire.", **fields}
    return ok(api.post("/api/tickets", json=body), 201)


def fire(api: ApiClient, ticket_id: int, name: str) -> dict[str, Any]:
    return ok(api.post(f"/api/tickets/{ticket_id}/transitions", json={"name": name}))


def listed_ids(api: ApiClient, query: str = "") -> list[int]:
    page = ok(api.get(f"/api/tickets?limit=200&{query}"))
    assert page["next_cursor"] is None
    return [t["id"] for t in page["items"]]


def cursor_of(payload: list[Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def team(factory):
    return factory.team("Support")


@pytest.fixture
def other_team(factory):
    return factory.team("Billing")


@pytest.fixture
def customer(factory):
    return factory.customer()


@pytest.fixture
def agent(factory, team):
    return factory.agent(team)


@pytest.fixture
def as_customer(client, customer):
    return ApiClient(client, customer)


@pytest.fixture
def as_agent(client, agent):
    return ApiClient(client, agent)


@pytest.fixture
def as_admin(client, factory):
    return ApiClient(client, factory.admin())


@pytest.fixture
def ticket(as_customer, as_admin, team):
    """A new ticket of ``customer`` in ``team`` (so ``agent`` works it)."""
    created = new_ticket(as_customer)
    return ok(as_admin.patch(f"/api/tickets/{created['id']}", json={"team_id": team.id}))


# -- create ------------------------------------------------------------------------------------


def test_customer_opens_a_ticket_for_themselves(as_customer, customer):
    resp = as_customer.post(
        "/api/tickets", json={"subject": "  Help  ", "description": "My printer is on fire."}
    )
    created = ok(resp, 201)
    assert created["status"] == "new"
    assert created["priority"] == "normal"
    assert created["requester_id"] == customer.id
    assert created["subject"] == "Help"
    assert (created["team_id"], created["assignee_id"], created["tags"]) == (None, None, [])
    assert resp.headers["ETag"] == f'"{created["version"]}"'
    assert ok(as_customer.get(f"/api/tickets/{created['id']}"))["subject"] == "Help"


def test_customer_may_not_set_staff_fields(as_customer, factory, team, agent):
    other = factory.customer()
    resp = as_customer.post(
        "/api/tickets",
        json={
            "subject": "Help",
            "description": "Please",
            "requester_id": other.id,
            "team_id": team.id,
            "assignee_id": agent.id,
            "tags": ["vip"],
        },
    )
    body = assert_error(resp, 422)
    assert set(body["errors"]) == {"requester_id", "team_id", "assignee_id", "tags"}
    assert listed_ids(as_customer) == []


def test_staff_opens_a_ticket_on_behalf_of_a_customer(as_agent, as_customer, customer, agent, team):
    created = new_ticket(
        as_agent,
        requester_id=customer.id,
        team_id=team.id,
        assignee_id=agent.id,
        priority="high",
        tags=["VIP", "billing", "vip"],
    )
    assert created["requester_id"] == customer.id
    assert (created["team_id"], created["assignee_id"]) == (team.id, agent.id)
    assert created["priority"] == "high"
    assert created["tags"] == ["billing", "vip"]
    assert listed_ids(as_customer) == [created["id"]]


@pytest.mark.parametrize("who", ["customer", "agent_of_another_team"])
def test_staff_create_rejects_an_invalid_assignee(as_admin, factory, team, other_team, who):
    assignee = factory.customer() if who == "customer" else factory.agent(other_team)
    resp = as_admin.post(
        "/api/tickets",
        json={
            "subject": "Help",
            "description": "Please",
            "team_id": team.id,
            "assignee_id": assignee.id,
        },
    )
    assert "assignee_id" in assert_error(resp, 422)["errors"]


def test_staff_create_rejects_an_unknown_team(as_admin):
    resp = as_admin.post(
        "/api/tickets", json={"subject": "Help", "description": "Please", "team_id": 999_999}
    )
    assert "team_id" in assert_error(resp, 422)["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "Please"}, "subject"),
        ({"subject": "Help"}, "description"),
        ({"subject": "", "description": "Please"}, "subject"),
        ({"subject": 5, "description": "Please"}, "subject"),
        ({"subject": "Help", "description": "Please", "priority": "sky-high"}, "priority"),
        ({"subject": "Help", "description": "Please", "priority": 3}, "priority"),
        ({"subject": "Help", "description": "Please", "colour": "red"}, "colour"),
    ],
    ids=[
        "no-subject",
        "no-description",
        "empty-subject",
        "int-subject",
        "bad-priority",
        "int-priority",
        "unknown-field",
    ],
)
def test_create_rejects_invalid_bodies(as_customer, body, field):
    body_ = assert_error(as_customer.post("/api/tickets", json=body), 422)
    assert field in body_["errors"]["json"]


def test_create_rejects_a_blank_subject(as_customer):
    resp = as_customer.post("/api/tickets", json={"subject": "   ", "description": "Please"})
    assert "subject" in assert_error(resp, 422)["errors"]["json"]


@pytest.mark.parametrize("payload", ["{", "[1, 2]", '"just a string"', "null"])
def test_malformed_json_is_a_client_error(as_customer, payload):
    resp = as_customer.post("/api/tickets", data=payload, content_type="application/json")
    assert resp.status_code in (400, 422), resp.get_data(as_text=True)
    assert_error(resp, resp.status_code)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}],
    ids=["no-token", "forged-token", "wrong-scheme"],
)
def test_ticket_endpoints_need_a_valid_token(client, headers):
    for resp in (
        client.get("/api/tickets", headers=headers),
        client.post("/api/tickets", json={"subject": "Help", "description": "x"}, headers=headers),
        client.get("/api/tickets/1", headers=headers),
    ):
        assert_error(resp, 401)


def test_a_deactivated_users_token_stops_working(client, factory, as_admin):
    user = factory.customer()
    api = ApiClient(client, user)
    ok(api.get("/api/tickets"))
    ok(as_admin.patch(f"/api/users/{user.id}", json={"active": False}))
    assert_error(api.get("/api/tickets"), 401)


# -- list --------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(factory, client, as_admin, team, other_team, agent):
    """Four tickets with distinct fields, by name; ``ids`` also names the people and teams."""
    alice, bob = factory.customer(), factory.customer()
    ids = {"alice": alice.id, "bob": bob.id, "agent": agent.id, "team": team.id}
    printer = new_ticket(
        as_admin,
        subject="Printer jammed",
        description="Paper everywhere",
        priority="high",
        requester_id=alice.id,
        team_id=team.id,
        assignee_id=agent.id,
        tags=["hardware"],
    )
    invoice = new_ticket(
        as_admin,
        subject="Invoice 100% wrong",
        description="Charged twice",
        priority="urgent",
        requester_id=bob.id,
        tags=["billing"],
    )
    login = new_ticket(
        as_admin,
        subject="Cannot log in",
        description="The PASSWORD reset mail never comes",
        priority="low",
        requester_id=alice.id,
        team_id=team.id,
    )
    fire(as_admin, login["id"], "solve")
    discount = new_ticket(
        as_admin,
        subject="Discount of 100 percent?",
        description="Is this right",
        requester_id=bob.id,
        team_id=other_team.id,
    )
    fire(as_admin, printer["id"], "start")  # last change: printer is the latest updated
    tickets = {"printer": printer, "invoice": invoice, "login": login, "discount": discount}
    return {name: t["id"] for name, t in tickets.items()}, ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=new&status=open", {"printer", "invoice", "discount"}),
        ("status=solved", {"login"}),
        ("priority=high&priority=urgent", {"printer", "invoice"}),
        ("assignee_id={agent}", {"printer"}),
        ("unassigned=true", {"invoice", "login", "discount"}),
        ("team_id={team}", {"printer", "login"}),
        ("requester_id={alice}", {"printer", "login"}),
        ("tag=billing", {"invoice"}),
        ("tag=BILLING", {"invoice"}),
        ("q=jammed", {"printer"}),
        ("q=password", {"login"}),
        ("q=PAPER", {"printer"}),
        ("q=100", {"invoice", "discount"}),
        ("q=100%25", {"invoice", "discount"}),  # full text: "%" is not a word
        ("q=_", set()),
        ("status=new&requester_id={bob}&unassigned=true", {"invoice", "discount"}),
    ],
)
def test_list_filters(as_admin, catalogue, query, expected):
    tickets, ids = catalogue
    names = {ticket_id: name for name, ticket_id in tickets.items()}
    got = [names[i] for i in listed_ids(as_admin, query.format(**ids))]
    assert set(got) == expected
    assert len(got) == len(expected)


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("tag=no%20spaces!", tickets.TicketFilters(tag="no spaces!")),
        ("tag=-dash-first", tickets.TicketFilters(tag="-dash-first")),
    ],
)
def test_a_bad_filter_gets_the_filter_rule(as_admin, query, filters):
    rule = refusal(tickets.check_filters, filters)
    error = assert_error(as_admin.get(f"/api/tickets?{query}"), 422)
    assert (error["message"], error["errors"]) == (rule.message, rule.errors)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at", ["printer", "invoice", "login", "discount"]),
        ("-created_at", ["discount", "login", "invoice", "printer"]),
        ("updated_at", ["invoice", "login", "discount", "printer"]),
        ("priority", ["login", "discount", "printer", "invoice"]),
        ("-priority", ["invoice", "printer", "discount", "login"]),
    ],
)
def test_list_sorts(as_admin, catalogue, sort, expected):
    tickets, _ = catalogue
    assert listed_ids(as_admin, f"sort={sort}") == [tickets[name] for name in expected]


def test_list_defaults_to_newest_first(as_admin, catalogue):
    tickets, _ = catalogue
    newest_first = ["discount", "login", "invoice", "printer"]
    assert listed_ids(as_admin) == [tickets[name] for name in newest_first]


def _sort_key(sort: str, ticket: dict[str, Any]) -> tuple[Any, int]:
    name = sort.removeprefix("-")
    value = ticket[name]
    value = PRIORITY_RANK[value] if name == "priority" else datetime.fromisoformat(value)
    return value, ticket["id"]


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority"]
)
def test_keyset_pagination_walks_every_ticket_once_in_order(as_admin, catalogue, sort):
    for n in range(3):  # ties on priority, so the id breaks them across page boundaries
        new_ticket(as_admin, subject=f"Extra {n}", priority="normal")
    everything = ok(as_admin.get("/api/tickets?limit=200"))["items"]
    expected = sorted(everything, key=lambda t: _sort_key(sort, t), reverse=sort[0] == "-")

    walked, cursor, pages = [], None, 0
    while True:
        query = f"sort={sort}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = ok(as_admin.get(f"/api/tickets?{query}"))
        assert len(page["items"]) <= 2
        walked += [t["id"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert walked == [t["id"] for t in expected]
    assert len(walked) == len(set(walked)) == 7
    assert pages == 4


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "bm90IGpzb24",  # "not json"
        cursor_of(["-created_at", {"not": "a date"}, 1]),
        cursor_of(["-created_at", None, "one"]),
        cursor_of(["-created_at", 1]),
    ],
    ids=["not-base64", "not-json", "no-dt", "id-not-int", "too-short"],
)
def test_list_rejects_a_garbage_cursor(as_admin, catalogue, cursor):
    resp = as_admin.get(f"/api/tickets?sort=-created_at&cursor={cursor}")
    assert "cursor" in assert_error(resp, 422)["errors"]


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("-created_at", "yesterday"),
        ("-created_at", {"dt": "2024-01-01T00:00:00"}),
        ("priority", "high"),
    ],
    ids=["string-for-date", "naive-date", "string-for-priority"],
)
def test_list_rejects_a_cursor_with_a_wrongly_typed_value(as_admin, catalogue, sort, value):
    resp = as_admin.get(f"/api/tickets?sort={sort}&cursor={cursor_of([sort, value, 1])}")
    assert "cursor" in assert_error(resp, 422)["errors"]


def test_list_rejects_a_cursor_from_another_sort(as_admin, catalogue):
    cursor = ok(as_admin.get("/api/tickets?sort=created_at&limit=1"))["next_cursor"]
    assert cursor
    resp = as_admin.get(f"/api/tickets?sort=-created_at&limit=1&cursor={cursor}")
    assert "cursor" in assert_error(resp, 422)["errors"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=subject", "sort"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("priority=sky-high", "priority"),
        ("assignee_id=me", "assignee_id"),
    ],
)
def test_list_rejects_invalid_arguments(as_admin, query, field):
    assert field in assert_error(as_admin.get(f"/api/tickets?{query}"), 422)["errors"]["query"]


# -- PATCH -------------------------------------------------------------------------------------


def events_of(api: ApiClient, ticket_id: int, kind: str) -> list[dict[str, Any]]:
    return [e for e in ok(api.get(f"/api/tickets/{ticket_id}/events")) if e["kind"] == kind]


def test_staff_changes_fields_and_the_change_is_audited(as_agent, agent, factory, team, ticket):
    colleague = factory.agent(team)
    resp = as_agent.patch(
        f"/api/tickets/{ticket['id']}",
        json={"priority": "urgent", "assignee_id": colleague.id, "tags": ["Outage", "vip"]},
    )
    changed = ok(resp)
    assert changed["priority"] == "urgent"
    assert changed["assignee_id"] == colleague.id
    assert changed["tags"] == ["outage", "vip"]
    assert changed["version"] == ticket["version"] + 1
    assert resp.headers["ETag"] == f'"{changed["version"]}"'
    assert ok(as_agent.get(f"/api/tickets/{ticket['id']}")) == changed
    updated = events_of(as_agent, ticket["id"], "ticket.updated")[-1]
    assert updated["actor_id"] == agent.id
    assert updated["data"]["changes"] == {
        "priority": ["normal", "urgent"],
        "assignee_id": [None, colleague.id],
        "tags": [[], ["outage", "vip"]],
    }
    assert events_of(as_agent, ticket["id"], "ticket.assigned")[0]["data"] == {
        "assignee_id": colleague.id
    }


def test_a_tags_only_change_gets_a_new_version(as_agent, ticket):
    changed = ok(as_agent.patch(f"/api/tickets/{ticket['id']}", json={"tags": ["vip"]}))
    assert changed["tags"] == ["vip"]
    assert changed["version"] == ticket["version"] + 1
    assert changed["updated_at"] > ticket["updated_at"]


def test_a_patch_that_changes_nothing_keeps_the_version(as_agent, ticket):
    before = events_of(as_agent, ticket["id"], "ticket.updated")
    same = ok(as_agent.patch(f"/api/tickets/{ticket['id']}", json={"priority": "normal"}))
    assert same["version"] == ticket["version"]
    assert events_of(as_agent, ticket["id"], "ticket.updated") == before


def test_moving_team_drops_an_assignee_who_is_not_in_the_new_team(
    as_admin, factory, team, other_team, agent, ticket
):
    url = f"/api/tickets/{ticket['id']}"
    ok(as_admin.patch(url, json={"assignee_id": agent.id}))
    moved = ok(as_admin.patch(url, json={"team_id": other_team.id}))
    assert (moved["team_id"], moved["assignee_id"]) == (other_team.id, None)

    both = factory.agent(team, other_team)
    ok(as_admin.patch(url, json={"team_id": team.id, "assignee_id": both.id}))
    kept = ok(as_admin.patch(url, json={"team_id": other_team.id}))
    assert (kept["team_id"], kept["assignee_id"]) == (other_team.id, both.id)


@pytest.mark.parametrize("who", ["customer", "agent_of_another_team"])
def test_patch_rejects_an_invalid_assignee(as_admin, factory, other_team, ticket, who):
    assignee = factory.customer() if who == "customer" else factory.agent(other_team)
    resp = as_admin.patch(f"/api/tickets/{ticket['id']}", json={"assignee_id": assignee.id})
    assert "assignee_id" in assert_error(resp, 422)["errors"]
    assert ok(as_admin.get(f"/api/tickets/{ticket['id']}"))["version"] == ticket["version"]


def test_patch_rejects_an_unknown_team(as_admin, ticket):
    resp = as_admin.patch(f"/api/tickets/{ticket['id']}", json={"team_id": 999_999})
    assert "team_id" in assert_error(resp, 422)["errors"]


def test_stale_version_in_the_body_is_a_conflict(as_agent, ticket):
    url = f"/api/tickets/{ticket['id']}"
    current = ok(as_agent.patch(url, json={"priority": "high", "version": ticket["version"]}))
    resp = as_agent.patch(url, json={"priority": "low", "version": ticket["version"]})
    body = assert_error(resp, 409)
    assert body["current_version"] == current["version"]
    assert "version" in body["errors"]
    assert ok(as_agent.get(url))["priority"] == "high"


def test_if_match_guards_the_change(as_agent, ticket):
    url = f"/api/tickets/{ticket['id']}"
    old = f'"{ticket["version"]}"'
    changed = ok(as_agent.patch(url, json={"priority": "high"}, headers={"If-Match": old}))
    body = assert_error(
        as_agent.patch(url, json={"priority": "low"}, headers={"If-Match": old}), 409
    )
    assert body["current_version"] == changed["version"]
    weak = f'W/"{changed["version"]}"'
    assert ok(as_agent.patch(url, json={"priority": "low"}, headers={"If-Match": weak}))


@pytest.mark.parametrize("header", ['"three"', "*", ""])
def test_a_malformed_if_match_is_precondition_failed(as_agent, ticket, header):
    resp = as_agent.patch(
        f"/api/tickets/{ticket['id']}", json={"priority": "high"}, headers={"If-Match": header}
    )
    assert "If-Match" in assert_error(resp, 412)["errors"]


def test_customer_may_not_change_priority(as_customer, ticket):
    resp = as_customer.patch(f"/api/tickets/{ticket['id']}", json={"priority": "urgent"})
    assert "priority" in assert_error(resp, 422)["errors"]
    assert ok(as_customer.get(f"/api/tickets/{ticket['id']}"))["priority"] == "normal"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": "sky-high"}, "priority"),
        ({"version": "1"}, "version"),
        ({"assignee_id": "me"}, "assignee_id"),
        ({"status": "solved"}, "status"),
    ],
)
def test_patch_rejects_invalid_bodies(as_agent, ticket, body, field):
    resp = as_agent.patch(f"/api/tickets/{ticket['id']}", json=body)
    assert field in assert_error(resp, 422)["errors"]["json"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "", None),
        ("patch", "", {"priority": "high"}),
        ("get", "/transitions", None),
        ("post", "/transitions", {"name": "start"}),
        ("get", "/messages", None),
        ("post", "/messages", {"body": "Hello"}),
        ("get", "/events", None),
        ("post", "/feedback", {"rating": 5}),
    ],
)
def test_unknown_ticket_is_not_found(as_admin, method, path, body):
    kw = {"json": body} if body is not None else {}
    assert_error(getattr(as_admin, method)(f"/api/tickets/999999{path}", **kw), 404)


@pytest.mark.parametrize(
    "ticket_id",
    [
        2**31,
        2**63,
    ],
)
def test_an_out_of_range_ticket_id_is_not_found(as_admin, ticket_id):
    assert_error(as_admin.get(f"/api/tickets/{ticket_id}"), 404)


# -- transitions -------------------------------------------------------------------------------


def transition_names(api: ApiClient, ticket_id: int) -> list[str]:
    return [t["name"] for t in ok(api.get(f"/api/tickets/{ticket_id}/transitions"))]


def test_transitions_listed_are_those_the_caller_may_fire(as_customer, as_agent, ticket):
    assert transition_names(as_customer, ticket["id"]) == ["solve"]
    assert transition_names(as_agent, ticket["id"]) == ["start", "solve"]
    start = ok(as_agent.get(f"/api/tickets/{ticket['id']}/transitions"))[0]
    assert start == {"name": "start", "label": "Start work", "to": "open"}


def test_start_opens_the_ticket(as_agent, ticket):
    resp = as_agent.post(f"/api/tickets/{ticket['id']}/transitions", json={"name": "start"})
    started = ok(resp)
    assert started["status"] == "open"
    assert started["version"] == ticket["version"] + 1
    assert resp.headers["ETag"] == f'"{started["version"]}"'
    [event] = events_of(as_agent, ticket["id"], "ticket.transitioned")
    assert (event["from_state"], event["to_state"]) == ("new", "open")
    assert transition_names(as_agent, ticket["id"]) == ["wait_on_customer", "hold", "solve"]


def test_a_transition_not_allowed_from_this_state_is_a_conflict(as_agent, ticket):
    url = f"/api/tickets/{ticket['id']}/transitions"
    body = assert_error(as_agent.post(url, json={"name": "close"}), 409)
    assert body["allowed_transitions"] == ["start", "solve"]
    assert ok(as_agent.get(f"/api/tickets/{ticket['id']}"))["status"] == "new"


def test_a_transition_not_allowed_for_the_role_is_a_conflict(as_customer, ticket):
    url = f"/api/tickets/{ticket['id']}/transitions"
    body = assert_error(as_customer.post(url, json={"name": "start"}), 409)
    assert body["allowed_transitions"] == ["solve"]


def test_an_unknown_transition_is_invalid(as_agent, ticket):
    url = f"/api/tickets/{ticket['id']}/transitions"
    body = assert_error(as_agent.post(url, json={"name": "explode"}), 422)
    assert "name" in body["errors"]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 3}, {"name": "start", "x": 1}])
def test_transition_rejects_invalid_bodies(as_agent, ticket, body):
    url = f"/api/tickets/{ticket['id']}/transitions"
    assert_error(as_agent.post(url, json=body), 422)


def test_transition_with_a_stale_version_is_a_conflict(as_agent, ticket):
    url = f"/api/tickets/{ticket['id']}"
    ok(as_agent.patch(url, json={"priority": "high"}))
    resp = as_agent.post(f"{url}/transitions", json={"name": "start", "version": ticket["version"]})
    assert assert_error(resp, 409)["current_version"] == ticket["version"] + 1
    assert ok(as_agent.get(url))["status"] == "new"


def test_solve_then_reopen(as_customer, as_agent, ticket):
    solved = fire(as_customer, ticket["id"], "solve")
    assert solved["status"] == "solved"
    assert solved["solved_at"] is not None
    assert transition_names(as_customer, ticket["id"]) == ["reopen"]
    reopened = fire(as_customer, ticket["id"], "reopen")
    assert (reopened["status"], reopened["solved_at"]) == ("open", None)


def test_close_then_reopen(as_agent, ticket):
    fire(as_agent, ticket["id"], "solve")
    closed = fire(as_agent, ticket["id"], "close")
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    reopened = fire(as_agent, ticket["id"], "reopen")
    assert reopened["status"] == "open"
    assert (reopened["solved_at"], reopened["closed_at"]) == (None, None)


# -- messages ----------------------------------------------------------------------------------


def say(api: ApiClient, ticket_id: int, body: str, **kw: Any) -> dict[str, Any]:
    return ok(api.post(f"/api/tickets/{ticket_id}/messages", json={"body": body, **kw}), 201)


def messages(api: ApiClient, ticket_id: int, query: str = "") -> dict[str, Any]:
    return ok(api.get(f"/api/tickets/{ticket_id}/messages?{query}"))


def test_posting_a_message(as_customer, customer, ticket):
    message = say(as_customer, ticket["id"], "Still on fire")
    assert message["ticket_id"] == ticket["id"]
    assert message["author_id"] == customer.id
    assert (message["body"], message["internal"]) == ("Still on fire", False)
    assert messages(as_customer, ticket["id"]) == {"items": [message], "has_more": False}


def test_customer_may_not_write_an_internal_note(as_customer, ticket):
    resp = as_customer.post(
        f"/api/tickets/{ticket['id']}/messages", json={"body": "psst", "internal": True}
    )
    assert "internal" in assert_error(resp, 422)["errors"]
    assert messages(as_customer, ticket["id"])["items"] == []


def test_internal_notes_are_for_staff_only(as_customer, as_agent, ticket):
    public = say(as_agent, ticket["id"], "We are on it")
    note = say(as_agent, ticket["id"], "Customer seems upset", internal=True)
    assert [m["id"] for m in messages(as_agent, ticket["id"])["items"]] == [
        public["id"],
        note["id"],
    ]
    assert [m["id"] for m in messages(as_customer, ticket["id"])["items"]] == [public["id"]]


def test_messages_after_an_id_and_paging(as_customer, ticket):
    first, second, third = (say(as_customer, ticket["id"], f"m{n}") for n in range(3))
    after_first = messages(as_customer, ticket["id"], f"after={first['id']}")
    assert [m["id"] for m in after_first["items"]] == [second["id"], third["id"]]
    page = messages(as_customer, ticket["id"], "limit=2")
    assert [m["id"] for m in page["items"]] == [first["id"], second["id"]]
    assert page["has_more"] is True
    rest = messages(as_customer, ticket["id"], f"limit=2&after={second['id']}")
    assert ([m["id"] for m in rest["items"]], rest["has_more"]) == ([third["id"]], False)


@pytest.mark.parametrize("query", ["after=x", "limit=0", "limit=201"])
def test_message_list_rejects_invalid_arguments(as_customer, ticket, query):
    assert_error(as_customer.get(f"/api/tickets/{ticket['id']}/messages?{query}"), 422)


def test_first_public_staff_reply_sets_first_responded_at(as_customer, as_agent, ticket):
    url = f"/api/tickets/{ticket['id']}"
    say(as_customer, ticket["id"], "Anyone?")
    say(as_agent, ticket["id"], "Looking into it", internal=True)
    assert ok(as_agent.get(url))["first_responded_at"] is None
    say(as_agent, ticket["id"], "Hello, we are on it")
    first = ok(as_agent.get(url))["first_responded_at"]
    assert first is not None
    say(as_agent, ticket["id"], "Fixed yet?")
    assert ok(as_agent.get(url))["first_responded_at"] == first


def test_a_closed_ticket_takes_no_messages(as_customer, as_agent, ticket):
    fire(as_agent, ticket["id"], "solve")
    fire(as_agent, ticket["id"], "close")
    resp = as_customer.post(f"/api/tickets/{ticket['id']}/messages", json={"body": "Hi"})
    assert_error(resp, 409)
    assert messages(as_agent, ticket["id"])["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": ""}, "body"),
        ({}, "body"),
        ({"body": 5}, "body"),
        ({"body": "x", "internal": "maybe"}, "internal"),
        ({"body": "x", "cc": "a@b.c"}, "cc"),
    ],
)
def test_message_rejects_invalid_bodies(as_agent, ticket, body, field):
    resp = as_agent.post(f"/api/tickets/{ticket['id']}/messages", json=body)
    assert field in assert_error(resp, 422)["errors"]["json"]


def test_a_blank_message_gets_the_message_rule(as_agent, ticket):
    rule = refusal(conversation.check_message, " \n\t")
    resp = as_agent.post(f"/api/tickets/{ticket['id']}/messages", json={"body": " \n\t"})
    error = assert_error(resp, 422)
    assert (error["message"], error["errors"]) == (rule.message, {"body": ["Must not be blank."]})
    assert messages(as_agent, ticket["id"])["items"] == []


def test_the_documented_message_length_is_the_rules(client, as_agent, ticket):
    longest = "x" * conversation.MAX_MESSAGE_LENGTH
    url = f"/api/tickets/{ticket['id']}/messages"
    ok(as_agent.post(url, json={"body": longest}), 201)
    too_long = assert_error(as_agent.post(url, json={"body": longest + "x"}), 422)
    assert set(too_long["errors"]["json"]) == {"body"}
    spec = client.get("/api/openapi.json").get_json()
    body = spec["components"]["schemas"]["MessageCreate"]["properties"]["body"]
    assert body["maxLength"] == conversation.MAX_MESSAGE_LENGTH


# -- feedback ----------------------------------------------------------------------------------


def rate(api: ApiClient, ticket_id: int, rating: Any, **kw: Any) -> Any:
    return api.post(f"/api/tickets/{ticket_id}/feedback", json={"rating": rating, **kw})


@pytest.fixture
def solved(as_customer, ticket):
    return fire(as_customer, ticket["id"], "solve")


def test_requester_rates_a_solved_ticket_once(as_customer, as_agent, solved):
    feedback = ok(rate(as_customer, solved["id"], 5, comment="Quick!"), 201)
    assert (feedback["ticket_id"], feedback["rating"], feedback["comment"]) == (
        solved["id"],
        5,
        "Quick!",
    )
    assert_error(rate(as_customer, solved["id"], 1), 409)
    [event] = events_of(as_agent, solved["id"], "feedback.created")
    assert event["data"] == {"rating": 5}


def test_a_closed_ticket_can_be_rated(as_customer, as_agent, solved):
    fire(as_agent, solved["id"], "close")
    assert ok(rate(as_customer, solved["id"], 4), 201)["rating"] == 4


def test_an_unsolved_ticket_cannot_be_rated(as_customer, as_agent, ticket):
    fire(as_agent, ticket["id"], "start")
    assert_error(rate(as_customer, ticket["id"], 5), 409)


def test_only_the_requester_rates(client, factory, as_agent, as_admin, solved):
    assert_error(rate(as_agent, solved["id"], 5), 403)
    assert_error(rate(as_admin, solved["id"], 5), 403)
    assert_error(rate(ApiClient(client, factory.customer()), solved["id"], 5), 404)


@pytest.mark.parametrize("rating", [0, 6, "5", 4.5, None])
def test_rating_must_be_an_integer_from_1_to_5(as_customer, solved, rating):
    assert "rating" in assert_error(rate(as_customer, solved["id"], rating), 422)["errors"]["json"]


# -- bulk --------------------------------------------------------------------------------------


@pytest.fixture
def bulk_tickets(as_admin, team, other_team, customer):
    """Two tickets of ``team`` (one already open) and one of ``other_team`` (hidden from agent)."""

    def make(team_id: int) -> dict[str, Any]:
        return new_ticket(as_admin, requester_id=customer.id, team_id=team_id)

    fresh, started, hidden = make(team.id), make(team.id), make(other_team.id)
    started = fire(as_admin, started["id"], "start")
    return fresh, started, hidden


def bulk(api: ApiClient, **body: Any) -> Any:
    return api.post("/api/tickets/bulk", json=body)


def results_by_id(response: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["ticket_id"]: r for r in response["results"]}


def test_bulk_assign_succeeds_per_ticket(as_agent, as_admin, agent, bulk_tickets):
    fresh, started, hidden = bulk_tickets
    ids = [fresh["id"], hidden["id"], started["id"]]
    response = ok(bulk(as_agent, ticket_ids=ids, action="assign", assignee_id=agent.id))
    assert (response["succeeded"], response["failed"]) == (2, 1)
    results = results_by_id(response)
    assert [r["ticket_id"] for r in response["results"]] == ids
    assert (results[hidden["id"]]["ok"], results[hidden["id"]]["status"]) == (False, 404)
    for done in (fresh, started):
        assert (results[done["id"]]["ok"], results[done["id"]]["status"]) == (True, 200)
        assert results[done["id"]]["ticket"]["assignee_id"] == agent.id
        assert ok(as_admin.get(f"/api/tickets/{done['id']}"))["assignee_id"] == agent.id
    assert ok(as_admin.get(f"/api/tickets/{hidden['id']}")) == hidden


def test_bulk_transition_leaves_failed_tickets_untouched(as_agent, as_admin, bulk_tickets):
    fresh, started, hidden = bulk_tickets
    ids = [fresh["id"], started["id"], hidden["id"]]
    response = ok(bulk(as_agent, ticket_ids=ids, action="transition", transition="start"))
    assert (response["succeeded"], response["failed"]) == (1, 2)
    results = results_by_id(response)
    assert [(results[i]["ok"], results[i]["status"]) for i in ids] == [
        (True, 200),
        (False, 409),
        (False, 404),
    ]
    assert ok(as_admin.get(f"/api/tickets/{fresh['id']}"))["status"] == "open"
    assert ok(as_admin.get(f"/api/tickets/{started['id']}")) == started
    assert ok(as_admin.get(f"/api/tickets/{hidden['id']}")) == hidden
    assert len(events_of(as_admin, started["id"], "ticket.transitioned")) == 1


def test_bulk_set_priority(as_agent, as_admin, bulk_tickets):
    fresh, started, _ = bulk_tickets
    ids = [fresh["id"], started["id"], fresh["id"]]
    response = ok(bulk(as_agent, ticket_ids=ids, action="set_priority", priority="urgent"))
    assert (response["succeeded"], response["failed"]) == (2, 0)
    for t in (fresh, started):
        now = ok(as_admin.get(f"/api/tickets/{t['id']}"))
        assert (now["priority"], now["version"]) == ("urgent", t["version"] + 1)


def test_bulk_assign_of_an_invalid_assignee_fails_each_ticket(as_agent, factory, bulk_tickets):
    fresh, started, _ = bulk_tickets
    response = ok(
        bulk(
            as_agent,
            ticket_ids=[fresh["id"], started["id"]],
            action="assign",
            assignee_id=factory.customer().id,
        )
    )
    assert (response["succeeded"], response["failed"]) == (0, 2)
    assert {r["status"] for r in response["results"]} == {422}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ticket_ids": [1], "action": "assign"}, "assignee_id"),
        ({"ticket_ids": [1], "action": "set_priority"}, "priority"),
        ({"ticket_ids": [1], "action": "transition"}, "transition"),
        ({"ticket_ids": [1], "action": "delete"}, "action"),
        ({"ticket_ids": [], "action": "set_priority", "priority": "low"}, "ticket_ids"),
        ({"action": "set_priority", "priority": "low"}, "ticket_ids"),
        ({"ticket_ids": ["1"], "action": "set_priority", "priority": "low"}, "ticket_ids"),
    ],
)
def test_bulk_rejects_invalid_requests(as_agent, body, field):
    assert field in assert_error(bulk(as_agent, **body), 422)["errors"]["json"]
