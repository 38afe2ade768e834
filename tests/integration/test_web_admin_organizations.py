"""The admin console's Organizations pages, through the Flask test client with a real login."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from autocrm.people.models import Organization
from tests.factories import csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Tests log in; the login rate limit must not carry over."""


@pytest.fixture
def token(client, factory) -> str:
    web_login(client, factory.admin())
    return csrf_token(client, "/admin/organizations")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_admin_creates_edits_and_fills_an_organization(client, token, factory, db_session):
    customer = factory.customer(name="Casey", email="casey@elsewhere.test")
    form = {"csrf_token": token, "name": "Acme", "domains": "acme.test, acme.io", "auto_join": "on"}

    created = client.post("/admin/organizations", data=form)
    assert created.status_code == 302
    org = db_session.scalar(select(Organization).where(Organization.name == "Acme"))
    assert (org.domains, org.auto_join) == (["acme.io", "acme.test"], True)
    listing = text(client.get("/admin/organizations"))
    assert 'aria-current="page">Organizations</a>' in listing
    assert "Acme" in listing and "acme.io, acme.test" in listing

    edited = client.post(
        f"/admin/organizations/{org.id}",
        data={"csrf_token": token, "name": "Acme Ltd", "domains": "acme.test", "notes": "VIP"},
    )
    assert edited.status_code == 302
    db_session.refresh(org)
    assert (org.name, org.domains, org.auto_join, org.notes) == (
        "Acme Ltd",
        ["acme.test"],
        False,
        "VIP",
    )

    added = client.post(
        f"/admin/organizations/{org.id}/members",
        data={"csrf_token": token, "email": "CASEY@elsewhere.test", "manager": "1"},
    )
    assert added.status_code == 302
    db_session.refresh(customer)
    assert (customer.organization_id, customer.organization_manager) == (org.id, True)
    page = text(client.get(f"/admin/organizations/{org.id}"))
    assert "Casey" in page and "manager" in page and "Unmake manager" in page

    client.post(
        f"/admin/organizations/{org.id}/members/{customer.id}/manager",
        data={"csrf_token": token, "manager": "0"},
    )
    db_session.refresh(customer)
    assert customer.organization_manager is False
    client.post(
        f"/admin/organizations/{org.id}/members/{customer.id}/remove", data={"csrf_token": token}
    )
    db_session.refresh(customer)
    assert customer.organization_id is None

    assert (
        client.post(f"/admin/organizations/{org.id}/delete", data={"csrf_token": token}).status_code
        == 302
    )
    assert client.get(f"/admin/organizations/{org.id}").status_code == 404


def test_bad_input_is_kept_with_the_error_at_its_field(client, token, factory):
    assert (
        client.post(
            "/admin/organizations",
            data={"csrf_token": token, "name": "Taken", "domains": "taken.test"},
        ).status_code
        == 302
    )

    refused = client.post(
        "/admin/organizations",
        data={"csrf_token": token, "name": "Second", "domains": "TAKEN.test, not_a_domain"},
    )

    assert refused.status_code == 422
    page = text(refused)
    assert 'id="o-domains-error"' in page and "not_a_domain" in page
    assert 'value="Second"' in page

    org_id = int(
        client.get("/admin/organizations")
        .get_data(as_text=True)
        .split("/admin/organizations/")[1]
        .split('"')[0]
    )
    unknown = client.post(
        f"/admin/organizations/{org_id}/members",
        data={"csrf_token": token, "email": "nobody@x.test"},
    )
    assert unknown.status_code == 422
    assert 'id="o-add-error"' in text(unknown) and 'value="nobody@x.test"' in text(unknown)


@pytest.mark.parametrize("role", ["agent", "customer"])
def test_only_admins_reach_the_pages(client, factory, role):
    web_login(client, factory.user(role))

    assert client.get("/admin/organizations").status_code in (302, 404)
