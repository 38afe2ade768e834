"""What a hostile or broken client may send: each gets a 4xx naming what is wrong, never a
500 (issue 11, findings 2 and 5). NUL characters and lone surrogates in any text, JSON nested
thousands deep, forged cursors, numbers past 32 bits and oversized bodies."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.requestguard import MAX_JSON_DEPTH
from autocrm.tickets.models import Ticket
from tests.factories import ApiClient, assert_error, csrf_token, web_login

NUL, SURROGATE = "\u0000", "\ud800"
BAD_TEXT = pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])


def raw_json(document: Any) -> str:
    """JSON text as a client may write it: a lone surrogate stays an escape (``\\ud800``)."""
    return json.dumps(document)


@pytest.fixture
def people(factory):
    team = factory.team()
    customer = factory.customer()
    return {
        "admin": factory.admin(),
        "agent": factory.agent(team),
        "customer": customer,
        "team": team,
        "ticket": factory.ticket(customer, team=team),
    }


def bodies(people: dict[str, Any], bad: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, url, field, body) for every kind of text a person types through the API."""
    ticket = people["ticket"]
    return [
        ("post", "/api/tickets", "subject", {"subject": f"a{bad}", "description": "d"}),
        ("post", "/api/tickets", "description", {"subject": "s", "description": f"a{bad}"}),
        ("post", f"/api/tickets/{ticket.id}/messages", "body", {"body": f"hi{bad}"}),
        ("post", "/api/teams", "name", {"name": f"team{bad}"}),
        ("post", "/api/teams", "description", {"name": "t", "description": bad}),
        ("post", "/api/users", "name",
         {"email": "n@example.com", "password": "long-enough-1", "role": "agent", "name": bad}),
        ("post", "/api/kb/categories", "name", {"name": f"cat{bad}"}),
        ("post", "/api/kb/articles", "title", {"title": f"t{bad}", "body": "b"}),
        ("post", "/api/kb/articles", "body", {"title": "t", "body": f"b{bad}"}),
        ("post", "/api/kb/articles", "tags.0", {"title": "t", "body": "b", "tags": [bad]}),
    ]  # fmt: skip


@BAD_TEXT
def test_unstorable_text_in_a_json_field_is_a_422_naming_it(client, people, bad):
    api = ApiClient(client, people["admin"])
    for method, url, field, body in bodies(people, bad):
        response = getattr(api, method)(url, data=raw_json(body), content_type="application/json")
        error = assert_error(response, 422)
        assert list(error["errors"]["json"]) == [field], (url, error)


@BAD_TEXT
def test_anonymous_login_with_unstorable_text_is_a_422(client, bad, fresh_login_limit):
    body = raw_json({"email": f"a{bad}@example.com", "password": "x"})
    response = client.post("/api/auth/token", data=body, content_type="application/json")
    assert list(assert_error(response, 422)["errors"]["json"]) == ["email"]


@BAD_TEXT
def test_unstorable_text_inside_a_workflow_definition_names_its_place(client, people, bad):
    api = ApiClient(client, people["admin"])
    workflow = api.post("/api/workflows", json={"name": "Hostile"}).json
    draft = dict(workflow["draft"])
    draft["states"] = [{**draft["states"][0], "label": f"x{bad}"}, *draft["states"][1:]]
    response = api.put(
        f"/api/workflows/{workflow['id']}/draft",
        data=raw_json({"definition": draft}),
        content_type="application/json",
    )
    error = assert_error(response, 422)
    assert error["errors"] == {
        "json": {
            "definition.states.0.label": [error["errors"]["json"]["definition.states.0.label"][0]]
        }
    }


@pytest.mark.parametrize("url", ["/api/tickets", "/api/users", "/api/kb/articles"])
def test_nul_in_a_query_parameter_is_a_422_naming_it(client, people, url):
    response = ApiClient(client, people["admin"]).get(f"{url}?q=a%00b")
    assert list(assert_error(response, 422)["errors"]["query"]) == ["q"]


@pytest.mark.parametrize("anonymous", [True, False])
def test_json_nested_thousands_deep_is_a_400(client, people, anonymous, fresh_login_limit):
    deep = "[" * 5000 + "]" * 5000
    if anonymous:
        response = client.post("/api/auth/token", data=deep, content_type="application/json")
    else:
        response = ApiClient(client, people["admin"]).post(
            "/api/teams",
            data=f'{{"name": "x", "calendar": {deep}}}',
            content_type="application/json",
        )
    assert_error(response, 400)


def test_json_as_deep_as_allowed_still_parses(client, people):
    nested: Any = "x"  # at depth MAX_JSON_DEPTH: body, calendar, then the lists
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    response = ApiClient(client, people["admin"]).post(
        "/api/teams", json={"name": "Deep", "calendar": {"holidays": nested}}
    )
    assert_error(response, 422)  # a calendar error about the holidays, not about depth
    too_deep = ApiClient(client, people["admin"]).post(
        "/api/teams", json={"name": "Deep", "calendar": {"holidays": [nested]}}
    )
    assert_error(too_deep, 400)


def forged(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def real_cursor(api: ApiClient, url: str, **params: Any) -> list[Any]:
    response = api.get(url, query_string={"limit": 1, **params})
    assert response.status_code == 200, response.json
    cursor = response.json["next_cursor"]
    assert cursor, "two rows are needed for a next page"
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


@pytest.mark.parametrize("url", ["/api/tickets", "/api/users", "/api/audit"])
@pytest.mark.parametrize("bad_id", [2**31, -(2**31) - 1, 2**63])
def test_a_real_cursor_with_an_id_past_32_bits_is_a_422(client, factory, people, url, bad_id):
    api = ApiClient(client, people["admin"])
    if url == "/api/tickets":
        factory.ticket(people["customer"])
    if url == "/api/audit":
        for name in ("One", "Two"):
            api.post("/api/teams", json={"name": name})
    sort, value, _ = real_cursor(api, url)
    response = api.get(url, query_string={"cursor": forged(sort, value, bad_id)})
    assert assert_error(response, 422)["errors"] == {"cursor": ["Not a cursor from this listing."]}
    if value == _ or isinstance(value, int):  # ordered by id: the value is an id too
        response = api.get(url, query_string={"cursor": forged(sort, bad_id, 1)})
        assert_error(response, 422)


@pytest.mark.parametrize("url", ["/api/tickets", "/api/users", "/api/audit"])
def test_a_cursor_of_thousands_of_brackets_is_a_422(client, people, url):
    cursor = base64.urlsafe_b64encode(b"[" * 3000).decode()
    response = ApiClient(client, people["admin"]).get(url, query_string={"cursor": cursor})
    assert_error(response, 422)


def test_numbers_past_32_bits_are_4xx(client, people, factory):
    assert client.get("/help/articles/2147483648").status_code == 404
    assert client.get("/help/articles/99999999999999999999").status_code == 404
    api = ApiClient(client, people["admin"])
    response = api.post("/api/kb/categories", json={"name": "Big", "position": 2**31})
    assert list(assert_error(response, 422)["errors"]["json"]) == ["position"]
    category = api.post("/api/kb/categories", json={"name": "Small"}).json
    response = api.patch(f"/api/kb/categories/{category['id']}", json={"position": 2**31})
    assert_error(response, 422)
    ticket = people["ticket"]
    response = api.post(
        f"/api/tickets/{ticket.id}/transitions",
        json={"name": "start"},
        headers={"If-Match": '"99999999999"'},
    )
    assert_error(response, 412)


def test_web_forms_drop_nul_characters_and_keep_the_rest(client, people, db_session):
    customer = people["customer"]
    web_login(client, customer)
    response = client.post(
        "/portal/tickets/new",
        data={
            "subject": "Printer\u0000 jam",
            "description": "It\u0000 jams.",
            "csrf_token": csrf_token(client, "/portal/tickets/new"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    ticket = db_session.scalars(
        select(Ticket).where(Ticket.requester_id == customer.id).order_by(Ticket.id.desc())
    ).first()
    assert (ticket.subject, ticket.description) == ("Printer jam", "It jams.")


def test_nul_in_a_page_query_is_dropped(client):
    response = client.get("/help/?q=pass%00word")
    assert response.status_code == 200
    assert "password" in response.get_data(as_text=True)


# -- request size --------------------------------------------------------------------------------

TEN_MB = 10 * 2**20


def test_a_10_mb_anonymous_login_is_refused_unread_with_a_413(client, fresh_login_limit):
    body = '{"email": "' + "a" * TEN_MB + '@example.com", "password": "x"}'
    response = client.post("/api/auth/token", data=body, content_type="application/json")
    error = assert_error(response, 413)
    assert error["status"] == "Request Entity Too Large"


def test_a_10_mb_workflow_name_is_refused(client, people):
    api = ApiClient(client, people["admin"])
    response = api.post("/api/workflows", json={"name": "w" * TEN_MB})
    assert_error(response, 413)
    # Under the size cap, the field's own limit applies.
    response = api.post("/api/workflows", json={"name": "w" * 81})
    assert list(assert_error(response, 422)["errors"]["json"]) == ["name"]


def test_a_10_mb_page_form_gets_a_page_saying_what_to_do(client, people):
    web_login(client, people["customer"])
    token = csrf_token(client, "/portal/tickets/new")
    response = client.post(
        "/portal/tickets/new",
        data={"subject": "Big", "description": "d" * TEN_MB, "csrf_token": token},
    )
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "too much to send" in response.get_data(as_text=True)


def test_the_request_size_cap_is_a_setting(monkeypatch, tmp_path):
    from autocrm.config import Settings

    monkeypatch.setenv("AUTOCRM_MAX_REQUEST_BYTES", "2048")
    monkeypatch.setenv("AUTOCRM_INSTANCE_PATH", str(tmp_path))
    assert Settings().as_flask_config()["MAX_CONTENT_LENGTH"] == 2048
    monkeypatch.delenv("AUTOCRM_MAX_REQUEST_BYTES")
    assert Settings().as_flask_config()["MAX_CONTENT_LENGTH"] == 2**20
