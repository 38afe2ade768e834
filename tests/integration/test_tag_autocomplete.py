"""Tag autocomplete: the tags in use on tickets the person may see, most used first, by prefix;
through ``GET /api/tags`` and the workspace's tags field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ApiClient, assert_error, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """The page test logs in; the login rate limit must not carry over between tests."""


@pytest.fixture
def desk(factory: Any) -> dict[str, Any]:
    support, billing = factory.team("Support"), factory.team("Billing")
    customer = factory.customer()
    factory.ticket(customer, team=support, tags=["printer", "vip"])
    factory.ticket(customer, team=support, tags=["printer", "paper_jam"])
    factory.ticket(customer, team=billing, tags=["private-billing", "printer"])
    return {
        "support": support,
        "agent": factory.agent(support),
        "admin": factory.admin(),
        "customer": customer,
        "ticket": factory.ticket(customer, team=support),
    }


def tags(client: Any, user: Any, query: str = "") -> list[Any]:
    response = ApiClient(client, user).get(f"/api/tags{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(item["tag"], item["tickets"]) for item in response.get_json()]


def test_tags_in_use_most_used_first_and_only_from_visible_tickets(client, desk):
    assert tags(client, desk["agent"]) == [("printer", 2), ("paper_jam", 1), ("vip", 1)]
    assert ("private-billing", 1) in tags(client, desk["admin"])  # admins see every team
    assert tags(client, desk["agent"], "?q=P") == [("printer", 2), ("paper_jam", 1)]
    assert tags(client, desk["agent"], "?q=pa") == [("paper_jam", 1)]
    assert tags(client, desk["agent"], "?q=paper_") == [("paper_jam", 1)]  # _ is no wildcard
    assert tags(client, desk["agent"], "?q=pri") == [("printer", 2)]  # not Billing's tag
    assert tags(client, desk["agent"], "?q=p&limit=1") == [("printer", 2)]


def test_bad_prefix_is_422_naming_q(client, desk):
    response = ApiClient(client, desk["agent"]).get("/api/tags?q=%25x")
    assert "q" in assert_error(response, 422)["errors"]


def test_openapi_documents_the_tags_operation(client):
    spec = client.get("/api/openapi.json").get_json()
    parameters = {p["name"] for p in spec["paths"]["/api/tags"]["get"]["parameters"]}
    assert {"q", "limit"} <= parameters


def test_workspace_tags_field_offers_tags_in_use(client, desk):
    web_login(client, desk["agent"])
    page = client.get(f"/agent/tickets/{desk['ticket'].id}").get_data(as_text=True)
    assert 'list="ws-tag-suggestions"' in page
    assert '<option value="printer"></option>' in page
    assert "private-billing" not in page
    found = client.get("/agent/tags.json?q=v", headers={"Accept": "application/json"})
    assert found.get_json()["items"] == [{"tag": "vip", "tickets": 1}]
