"""Custom fields in ticket lists: sort by any field (typed, empty values last, every ticket
listed once across pages), number/date ranges, and bad keys refused naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from autocrm.tickets import services as tickets
from autocrm.webhooks import deliveries
from autocrm.webhooks.models import DeliveryStatus
from tests.factories import ApiClient, assert_error, drain
from tests.integration.test_ticket_fields import define, open_ticket
from tests.integration.test_webhooks import pending, subscribe

SEVERITIES = [{"value": "low"}, {"value": "medium"}, {"value": "high"}]


@pytest.fixture
def agent_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.agent())


@pytest.fixture
def listed(client, factory, agent_api) -> dict[str, int]:
    """Seven tickets with values that sort differently as text and as their type."""
    admin_api = ApiClient(client, factory.admin())
    define(admin_api, "severity", "dropdown", options=SEVERITIES)
    define(admin_api, "seats", "number")
    define(admin_api, "cost", "decimal")
    define(admin_api, "due", "date")
    define(admin_api, "vip", "checkbox")
    define(admin_api, "ref", "text")
    define(admin_api, "notes", "long_text")
    customer = factory.customer()
    values: dict[str, dict[str, Any]] = {
        "a": {"severity": "high", "seats": 9, "cost": "9.5", "due": "2026-01-09", "vip": True},
        "b": {"severity": "low", "seats": 10, "cost": "10.25", "due": "2026-01-10", "ref": "b"},
        "c": {"severity": "medium", "seats": -2, "vip": False, "ref": "a"},
        "d": {},
        "e": {"severity": "low", "seats": 100, "cost": "100", "due": "2025-12-31"},
        "f": {},
        "g": {"severity": "high", "seats": 9, "vip": True, "ref": "c"},
    }
    return {
        name: open_ticket(agent_api, requester_id=customer.id, subject=name, fields=fields)["id"]
        for name, fields in values.items()
    }


def names(api: ApiClient, listed: dict[str, int], query: str, limit: int = 200) -> list[str]:
    """Every ticket of the listing, page after page, by name."""
    by_id = {ticket_id: name for name, ticket_id in listed.items()}
    found: list[str] = []
    cursor = None
    while True:
        params = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(f"/api/tickets?{params}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        found += [by_id[t["id"]] for t in body["items"] if t["id"] in by_id]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        # a dropdown in its options' order; ties newest-first by id when descending
        ("field.severity", "becagdf"),
        ("-field.severity", "gacebfd"),
        ("field.seats", "cagbedf"),  # numbers as numbers: 9 < 10 < 100
        ("-field.seats", "ebgacfd"),
        ("field.cost", "abecdfg"),  # 9.5 < 10.25 < 100
        ("field.due", "eabcdfg"),
        ("-field.vip", "gacfedb"),
        ("field.ref", "cbgadef"),
    ],
)
def test_sorting_by_a_field_is_typed_with_empty_values_last_on_every_page(
    agent_api, listed, sort, expected
):
    want = list(expected.replace(" ", ""))
    assert names(agent_api, listed, f"sort={sort}") == want
    assert names(agent_api, listed, f"sort={sort}", limit=2) == want, "pages agree with one"


def test_ranges_on_number_decimal_and_date_fields(agent_api, listed):
    def found(query: str) -> set[str]:
        return set(names(agent_api, listed, query))

    assert found("field.seats.min=9&field.seats.max=10") == {"a", "b", "g"}
    assert found("field.seats.max=0") == {"c"}
    assert found("field.cost.min=10") == {"b", "e"}
    assert found("field.due.max=2025-12-31") == {"e"}
    assert found("field.due.min=2026-01-01&field.severity=high") == {"a"}


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("sort=field.nope", "sort"),
        ("sort=-field.notes", "sort"),
        ("sort=field.Bad-Key", "sort"),
        ("field.nope=1", "field.nope"),
        ("field.seats.min=lots", "field.seats.min"),
        ("field.severity.min=low", "field.severity.min"),
        ("field.seats.most=3", "field.seats.most"),
        ("field.due.max=yesterday", "field.due.max"),
    ],
)
def test_a_bad_sort_or_range_is_refused_naming_it(agent_api, listed, query, where):
    body = assert_error(agent_api.get(f"/api/tickets?{query}"), 422)
    assert where in str(body["errors"]), body


def test_a_cursor_of_another_field_sort_or_forged_is_refused(agent_api, listed):
    page = agent_api.get("/api/tickets?sort=field.seats&limit=2").get_json()
    cursor = page["next_cursor"]
    assert_error(agent_api.get(f"/api/tickets?sort=field.due&cursor={cursor}"), 422)
    assert_error(
        agent_api.get("/api/tickets?sort=field.seats&cursor=WyJmaWVsZC5zZWF0cyIsIngiLDFd"), 422
    )


# -- saved views ---------------------------------------------------------------------------------


def test_a_view_keeps_field_filters_columns_and_a_field_sort(agent_api, listed):
    body = {
        "name": "Busy severe",
        "filters": {"fields": {"severity": "high", "seats.min": "5"}, "category": ["new"]},
        "sort": "-field.seats",
        "columns": ["severity", "seats", "due"],
    }
    created = agent_api.post("/api/views", json=body)
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert view["filters"]["fields"] == {"severity": "high", "seats.min": "5"}
    assert (view["sort"], view["columns"]) == ("-field.seats", ["severity", "seats", "due"])
    listed_views = {v["id"]: v for v in agent_api.get("/api/views").get_json()["items"]}
    assert listed_views[view["id"]]["columns"] == ["severity", "seats", "due"]
    by_id = {ticket_id: name for name, ticket_id in listed.items()}
    page = agent_api.get(f"/api/views/{view['id']}/tickets").get_json()
    assert [by_id[t["id"]] for t in page["items"]] == ["g", "a"]
    changed = agent_api.patch(f"/api/views/{view['id']}", json={"columns": ["vip"]})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["columns"] == ["vip"]
    assert changed.get_json()["filters"]["fields"] == {"severity": "high", "seats.min": "5"}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"filters": {"fields": {"nope": "1"}}}, "field.nope"),
        ({"filters": {"fields": {"seats": "many"}}}, "field.seats"),
        ({"sort": "field.nope"}, "sort"),
        ({"sort": "field.notes"}, "sort"),
        ({"columns": ["severity", "nope"]}, "columns"),
    ],
)
def test_a_view_with_a_bad_field_is_refused_naming_it(agent_api, listed, body, where):
    found = assert_error(agent_api.post("/api/views", json={"name": "Bad", **body}), 422)
    assert where in str(found["errors"]), found


# -- reports -------------------------------------------------------------------------------------


def test_the_team_report_groups_by_a_dropdown_field(client, factory, db_session):
    admin = factory.admin()
    admin_api = ApiClient(client, admin)
    define(admin_api, "severity", "dropdown", options=SEVERITIES)
    define(admin_api, "seats", "number")
    team, other = factory.team("Support"), factory.team("Other")
    customer = factory.customer()
    for level in ("high", "high", "low", None):
        fields = {"severity": level} if level else {}
        factory.ticket(customer, team=team, fields=fields)
    solved = factory.ticket(customer, team=team, fields={"severity": "high"})
    tickets.do_transition(admin, solved.id, "solve")
    factory.ticket(customer, team=other, fields={"severity": "medium"})
    response = admin_api.get(f"/api/reports/teams?group_by=field.severity&team_id={team.id}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["group_by"] == {"key": "severity", "label": "Severity"}
    groups = {g["label"]: g for g in body["teams"][0]["by_field"]}
    assert list(groups) == ["low", "medium", "high", "No value"]
    assert [groups[k]["created"] for k in groups] == [1, 0, 3, 1]
    assert [groups[k]["backlog_now"] for k in groups] == [1, 0, 2, 1]
    assert [groups[k]["solved"] for k in groups] == [0, 0, 1, 0]
    assert groups["No value"]["value"] is None
    plain = admin_api.get("/api/reports/teams").get_json()
    assert "group_by" not in plain and "by_field" not in plain["teams"][0]
    for bad in ("field.seats", "field.nope", "severity"):
        found = assert_error(admin_api.get(f"/api/reports/teams?group_by={bad}"), 422)
        assert "group_by" in found["errors"], found


# -- webhooks ------------------------------------------------------------------------------------


def test_a_ticket_created_delivery_carries_its_field_values(receiver, client, factory, db_session):
    admin_api = ApiClient(client, factory.admin())
    define(admin_api, "severity", "dropdown", options=SEVERITIES)
    define(admin_api, "seats", "number")
    hook = subscribe(admin_api, receiver.url)
    ticket = factory.ticket(factory.customer(), fields={"severity": "high", "seats": 4})
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    assert deliveries.do_send(delivery.id) is DeliveryStatus.DELIVERED
    [request] = receiver.requests
    assert request.document["type"] == "ticket.created"
    assert request.document["data"]["ticket"]["id"] == ticket.id
    assert request.document["data"]["ticket"]["fields"] == {"severity": "high", "seats": 4}
