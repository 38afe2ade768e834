"""The OpenAPI document and the Swagger UI page, served from local files only."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import web
from autocrm.extensions import limiter

SPEC_URL = "/api/openapi.json"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
SWAGGER_DIR = Path(web.__file__).parent / "static" / "vendor" / "swagger-ui"

EXPECTED_OPERATIONS = {
    ("post", "/api/auth/token"),
    ("get", "/api/tokens"),
    ("post", "/api/tokens"),
    ("delete", "/api/tokens/{token_id}"),
    ("get", "/api/tickets"),
    ("get", "/api/tags"),
    ("post", "/api/tickets"),
    ("get", "/api/tickets/{ticket_id}"),
    ("patch", "/api/tickets/{ticket_id}"),
    ("get", "/api/tickets/{ticket_id}/transitions"),
    ("post", "/api/tickets/{ticket_id}/transitions"),
    ("get", "/api/tickets/{ticket_id}/messages"),
    ("post", "/api/tickets/{ticket_id}/messages"),
    ("post", "/api/uploads"),
    ("get", "/api/attachments/usage"),
    ("get", "/api/attachments/{attachment_id}"),
    ("delete", "/api/attachments/{attachment_id}"),
    ("get", "/api/tickets/{ticket_id}/events"),
    ("post", "/api/tickets/{ticket_id}/feedback"),
    ("get", "/api/tickets/{ticket_id}/followers"),
    ("post", "/api/tickets/{ticket_id}/followers"),
    ("delete", "/api/tickets/{ticket_id}/followers/{user_id}"),
    ("get", "/api/tickets/{ticket_id}/mentionable"),
    ("post", "/api/tickets/{ticket_id}/merge"),
    ("get", "/api/macros"),
    ("post", "/api/macros"),
    ("get", "/api/macros/{macro_id}"),
    ("patch", "/api/macros/{macro_id}"),
    ("delete", "/api/macros/{macro_id}"),
    ("post", "/api/tickets/{ticket_id}/macros/{macro_id}/preview"),
    ("post", "/api/tickets/{ticket_id}/macros/{macro_id}/apply"),
    ("get", "/api/tickets/{ticket_id}/links"),
    ("post", "/api/tickets/{ticket_id}/links"),
    ("delete", "/api/tickets/{ticket_id}/links/{linked_id}"),
    ("post", "/api/tickets/bulk"),
    ("get", "/api/users"),
    ("post", "/api/users"),
    ("get", "/api/users/me"),
    ("post", "/api/users/invitations"),
    ("get", "/api/users/{user_id}"),
    ("patch", "/api/users/{user_id}"),
    ("delete", "/api/users/{user_id}/sessions"),
    ("get", "/api/teams"),
    ("post", "/api/teams"),
    ("get", "/api/teams/{team_id}"),
    ("patch", "/api/teams/{team_id}"),
    ("post", "/api/teams/{team_id}/members"),
    ("delete", "/api/teams/{team_id}/members/{user_id}"),
    ("get", "/api/organizations"),
    ("post", "/api/organizations"),
    ("get", "/api/organizations/{organization_id}"),
    ("patch", "/api/organizations/{organization_id}"),
    ("delete", "/api/organizations/{organization_id}"),
    ("post", "/api/organizations/{organization_id}/members"),
    ("delete", "/api/organizations/{organization_id}/members/{user_id}"),
    ("get", "/api/notifications"),
    ("post", "/api/notifications/{notification_id}/read"),
    ("post", "/api/notifications/read-all"),
    ("get", "/api/users/me/notification-preferences"),
    ("put", "/api/users/me/notification-preferences"),
    ("get", "/api/workflows"),
    ("post", "/api/workflows"),
    ("get", "/api/workflows/{workflow_id}"),
    ("get", "/api/workflows/{workflow_id}/versions/{number}"),
    ("get", "/api/workflows/{workflow_id}/versions/{number}/diagram.svg"),
    ("put", "/api/workflows/{workflow_id}/draft"),
    ("get", "/api/workflows/{workflow_id}/draft/diagram.svg"),
    ("post", "/api/workflows/{workflow_id}/draft/validate"),
    ("post", "/api/workflows/{workflow_id}/draft/simulate"),
    ("post", "/api/workflows/{workflow_id}/draft/publish"),
    ("get", "/api/kb/articles"),
    ("post", "/api/kb/articles"),
    ("get", "/api/kb/articles/{article_id}"),
    ("patch", "/api/kb/articles/{article_id}"),
    ("delete", "/api/kb/articles/{article_id}"),
    ("get", "/api/kb/articles/{article_id}/revisions"),
    ("post", "/api/kb/articles/{article_id}/votes"),
    ("post", "/api/kb/suggestions/opened"),
    ("get", "/api/kb/categories"),
    ("post", "/api/kb/categories"),
    ("patch", "/api/kb/categories/{category_id}"),
    ("get", "/api/reports/teams"),
    ("get", "/api/audit"),
    ("get", "/api/mailboxes"),
    ("post", "/api/mailboxes"),
    ("get", "/api/mailboxes/{mailbox_id}"),
    ("patch", "/api/mailboxes/{mailbox_id}"),
    ("delete", "/api/mailboxes/{mailbox_id}"),
    ("post", "/api/mailboxes/{mailbox_id}/test"),
    ("post", "/api/mailboxes/{mailbox_id}/webhook-secret"),
    ("get", "/api/mailboxes/inbound"),
    ("get", "/api/mailboxes/inbound/{inbound_id}"),
    ("get", "/api/mailboxes/inbound/{inbound_id}/raw"),
    ("post", "/api/mailboxes/inbound/{inbound_id}/retry"),
    ("post", "/api/mailboxes/inbound/{inbound_id}/discard"),
    ("post", "/api/inbound/email/{name}"),
    ("get", "/api/webhooks"),
    ("post", "/api/webhooks"),
    ("get", "/api/webhooks/{subscription_id}"),
    ("patch", "/api/webhooks/{subscription_id}"),
    ("delete", "/api/webhooks/{subscription_id}"),
    ("post", "/api/webhooks/{subscription_id}/secret"),
    ("post", "/api/webhooks/{subscription_id}/test"),
    ("get", "/api/webhooks/{subscription_id}/deliveries"),
    ("get", "/api/webhooks/deliveries/{delivery_id}"),
    ("post", "/api/webhooks/deliveries/{delivery_id}/redeliver"),
    ("get", "/api/views"),
    ("post", "/api/views"),
    ("get", "/api/views/{view_id}"),
    ("patch", "/api/views/{view_id}"),
    ("delete", "/api/views/{view_id}"),
    ("get", "/api/views/{view_id}/tickets"),
    ("get", "/api/ticket-fields"),
    ("post", "/api/ticket-fields"),
    ("put", "/api/ticket-fields/order"),
    ("get", "/api/ticket-fields/{field_id}"),
    ("patch", "/api/ticket-fields/{field_id}"),
    ("delete", "/api/ticket-fields/{field_id}"),
    ("get", "/api/request-forms"),
    ("post", "/api/request-forms"),
    ("get", "/api/request-forms/{form_id}"),
    ("patch", "/api/request-forms/{form_id}"),
    ("delete", "/api/request-forms/{form_id}"),
}
# Operations answering with an SVG image rather than JSON.
SVG_OPERATIONS = {
    ("get", "/api/workflows/{workflow_id}/versions/{number}/diagram.svg"),
    ("get", "/api/workflows/{workflow_id}/draft/diagram.svg"),
}
# Operations answering with a file of any type.
FILE_OPERATIONS = {("get", "/api/attachments/{attachment_id}")}
# Operations answering with an email as it arrived (RFC 5322).
EMAIL_OPERATIONS = {("get", "/api/mailboxes/inbound/{inbound_id}/raw")}
# Operations that take files (multipart/form-data) rather than JSON.
MULTIPART_OPERATIONS = {("post", "/api/uploads")}
# Operations that take a raw email (message/rfc822, or a form with it as `email`).
RAW_EMAIL_OPERATIONS = {("post", "/api/inbound/email/{name}")}
# Operations that take no body, or only an optional one.
WITHOUT_REQUIRED_BODY = {
    ("post", "/api/notifications/{notification_id}/read"),
    ("post", "/api/notifications/read-all"),
    ("post", "/api/mailboxes/{mailbox_id}/test"),
    ("post", "/api/mailboxes/{mailbox_id}/webhook-secret"),
    ("post", "/api/mailboxes/inbound/{inbound_id}/retry"),
    ("post", "/api/mailboxes/inbound/{inbound_id}/discard"),
    ("post", "/api/webhooks/{subscription_id}/secret"),
    ("post", "/api/webhooks/{subscription_id}/test"),
    ("post", "/api/webhooks/deliveries/{delivery_id}/redeliver"),
    ("post", "/api/tickets/{ticket_id}/macros/{macro_id}/preview"),
}
# Operations that take a JSON body.
WITH_BODY = (
    {(m, p) for m, p in EXPECTED_OPERATIONS if m in {"post", "patch", "put"}}
    - WITHOUT_REQUIRED_BODY
    - MULTIPART_OPERATIONS
    - RAW_EMAIL_OPERATIONS
)
PUBLIC_OPERATIONS = {("post", "/api/auth/token")}
# Operations anonymous callers may use, which use a bearer token when one is sent.
OPTIONAL_BEARER = [{}, {"bearerAuth": []}]
TOKEN_OPTIONAL_OPERATIONS = {
    ("get", "/api/kb/articles"),
    ("get", "/api/kb/articles/{article_id}"),
    ("get", "/api/kb/categories"),
}


@pytest.fixture
def spec(client) -> dict:
    response = client.get(SPEC_URL)  # no Authorization header: the spec is public
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_json
    return response.json


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def json_schema(content_holder: dict) -> dict | None:
    return content_holder.get("content", {}).get("application/json", {}).get("schema")


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        _, _, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def test_spec_lists_every_endpoint(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]
    assert set(operations(spec)) == EXPECTED_OPERATIONS


def test_operations_with_a_body_document_its_schema(spec):
    for key, op in operations(spec).items():
        if key in WITH_BODY:
            assert "requestBody" in op, key
            schema = json_schema(op["requestBody"])
            assert schema is not None, key
            assert resolve(spec, schema).get("properties"), key
        elif key in MULTIPART_OPERATIONS:
            form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
            assert resolve(spec, form)["properties"]["files"]["items"]["format"] == "binary"
        elif key in RAW_EMAIL_OPERATIONS:
            content = op["requestBody"]["content"]
            assert content["message/rfc822"]["schema"]["format"] == "binary", key
            assert content["multipart/form-data"]["schema"]["properties"]["email"], key
        elif key in WITHOUT_REQUIRED_BODY:
            assert not op.get("requestBody", {}).get("required"), key
        else:
            assert "requestBody" not in op, key


def test_every_operation_documents_its_success_response(spec):
    for key, op in operations(spec).items():
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert len(success) == 1, (key, sorted(op["responses"]))
        ((code, response),) = success.items()
        expected_code = (
            "201"
            if key[0] == "post"
            and key[1]
            in {
                "/api/tickets",
                "/api/tokens",
                "/api/users",
                "/api/users/invitations",
                "/api/teams",
                "/api/teams/{team_id}/members",
                "/api/organizations",
                "/api/mailboxes",
                "/api/tickets/{ticket_id}/messages",
                "/api/tickets/{ticket_id}/feedback",
                "/api/tickets/{ticket_id}/followers",
                "/api/tickets/{ticket_id}/links",
                "/api/workflows",
                "/api/workflows/{workflow_id}/draft/publish",
                "/api/kb/articles",
                "/api/kb/categories",
                "/api/kb/suggestions/opened",
                "/api/uploads",
                "/api/webhooks",
                "/api/macros",
                "/api/views",
                "/api/ticket-fields",
                "/api/request-forms",
            }
            else "202"
            if key == ("post", "/api/inbound/email/{name}")
            else "200"
        )
        assert code == expected_code, key
        if key in SVG_OPERATIONS:
            assert "image/svg+xml" in resolve(spec, response)["content"], key
        elif key in FILE_OPERATIONS:
            assert "application/octet-stream" in resolve(spec, response)["content"], key
        elif key in EMAIL_OPERATIONS:
            assert "message/rfc822" in resolve(spec, response)["content"], key
        else:
            assert json_schema(resolve(spec, response)) is not None, key


def test_error_responses_fall_back_to_the_error_shape(spec):
    for key, op in operations(spec).items():
        default = resolve(spec, op["responses"]["default"])
        schema = resolve(spec, json_schema(default))
        assert {"code", "status", "message", "errors"} <= set(schema["properties"]), key


def test_documented_error_responses_describe_the_error_body(spec):
    missing = []
    for key, op in operations(spec).items():
        for code, response in op["responses"].items():
            if code[0] in "45" and json_schema(resolve(spec, response)) is None:
                missing.append((*key, code))
    assert missing == []


def test_bearer_scheme_is_declared_and_only_the_public_endpoints_are_exempt(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    for key, op in operations(spec).items():
        effective = op.get("security", spec["security"])
        if key in PUBLIC_OPERATIONS:
            assert effective == [], key
        elif key in TOKEN_OPTIONAL_OPERATIONS:
            assert effective == OPTIONAL_BEARER, key
        else:
            assert effective == [{"bearerAuth": []}], key


def test_operations_the_spec_protects_refuse_anonymous_calls(client, spec):
    for (method, path), op in operations(spec).items():
        if {} in op.get("security", spec["security"]) or op.get("security") == []:
            continue  # anonymous callers are welcome
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = getattr(client, method)(url, json={})
        assert response.status_code == 401, (method, path, response.get_data(as_text=True))
        assert response.json["code"] == 401


def test_token_endpoint_needs_no_token(client, spec):
    limiter.reset()
    try:
        response = client.post(
            "/api/auth/token", json={"email": "nobody@example.test", "password": "x"}
        )
    finally:
        limiter.reset()
    # Reaching the credential check (not the bearer check) is what "exempt" means.
    assert response.status_code == 401
    assert response.json["message"] == "Invalid email or password."


# -- Swagger UI -----------------------------------------------------------------------------------


class _AssetCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def docs_asset_urls(client) -> list[str]:
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE), (
        "the docs page must not load anything from another host"
    )
    collector = _AssetCollector()
    collector.feed(html)
    return collector.urls


def test_docs_page_loads_assets_only_from_our_static_files(client):
    urls = docs_asset_urls(client)

    assert any(u.endswith(".js") for u in urls), urls
    assert any(u.endswith(".css") for u in urls), urls
    for url in urls:
        assert url.startswith("/static/"), url


def test_docs_assets_are_served(client):
    if not SWAGGER_DIR.is_dir():
        pytest.fail(f"{SWAGGER_DIR} is missing: run `make venv` to install the Swagger UI assets")

    for url in docs_asset_urls(client):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.content_length or response.get_data(), url
        response.close()


def test_docs_page_never_calls_the_online_validator(client):
    page = client.get("/api/docs").get_data(as_text=True)
    assert '"validatorUrl": null' in page


def test_the_simulation_documents_both_replays_and_the_caveats(spec):
    """API clients read per ticket what the published version and the draft would each do,
    and what the simulation could not model."""
    op = operations(spec)[("post", "/api/workflows/{workflow_id}/draft/simulate")]
    report = resolve(spec, json_schema(resolve(spec, op["responses"]["200"])))
    ticket = resolve(spec, report["properties"]["tickets"]["items"])["properties"]
    assert ticket["caveats"]["type"] == "array"
    assert ticket["caveats"]["items"]["type"] == "string"
    for field in ("transitions", "states", "would_fire_not_fired", "fired_would_not"):
        assert ticket[field]["type"] == "array", field
    sla = resolve(spec, ticket["sla"]["additionalProperties"])["properties"]
    assert {"published", "draft", "published_due_at", "draft_due_at", "actual"} <= set(sla)
    assert sla["actual"].get("deprecated") is True
