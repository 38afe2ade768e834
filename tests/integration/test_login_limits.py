"""One login budget per account and one per client address, shared by the login page and
``POST /api/auth/token`` (``autocrm.ratelimit``), counted here in the limiter's memory storage.
Redis-backed counting, a Redis outage and a trusted proxy are in
``tests/e2e/test_login_limit_redis.py``."""

from __future__ import annotations

from itertools import count

import pytest
from limits import parse as parse_limit

from tests.factories import PASSWORD, csrf_token

_addresses = count(1)
WRONG_PASSWORD = "guessing"


@pytest.fixture
def allowed(app, fresh_login_limit) -> int:
    return parse_limit(app.config["AUTOCRM_LOGIN_RATE_LIMIT"]).amount


def new_address() -> str:
    return f"198.51.100.{next(_addresses)}"


def api_login(client, email: str, address: str, password: str = WRONG_PASSWORD, **headers):
    return client.post(
        "/api/auth/token",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def page_login(client, email: str, address: str, password: str = WRONG_PASSWORD):
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": address},
    )


def test_the_page_and_the_api_spend_one_budget_per_account(client, factory, allowed):
    email = factory.customer().email
    for attempt in range(allowed):
        door = api_login if attempt % 2 else page_login
        assert door(client, email, new_address()).status_code == 401, attempt

    assert api_login(client, email, new_address(), PASSWORD).status_code == 429
    assert page_login(client, email.upper(), new_address(), PASSWORD).status_code == 429


def test_the_page_and_the_api_spend_one_budget_per_address(client, factory, allowed):
    address = new_address()
    for attempt in range(allowed):
        door = api_login if attempt % 2 else page_login
        assert door(client, f"nobody{attempt}@example.com", address).status_code == 401

    user = factory.customer()
    assert api_login(client, user.email, address, PASSWORD).status_code == 429
    assert page_login(client, user.email, address, PASSWORD).status_code == 429
    assert api_login(client, user.email, new_address(), PASSWORD).status_code == 200


def test_forwarded_for_is_ignored_without_a_trusted_proxy(client, allowed):
    address = new_address()
    for attempt in range(allowed):
        forged = {"X-Forwarded-For": new_address()}
        assert api_login(client, f"x{attempt}@example.com", address, **forged).status_code == 401

    forged = {"X-Forwarded-For": new_address()}
    assert api_login(client, "late@example.com", address, **forged).status_code == 429


def test_a_body_naming_no_account_still_spends_the_address_budget(client, allowed):
    address = new_address()
    for _ in range(allowed):
        response = client.post(
            "/api/auth/token", json={"password": "x"}, environ_base={"REMOTE_ADDR": address}
        )
        assert response.status_code == 422
    response = client.post(
        "/api/auth/token", json={"password": "x"}, environ_base={"REMOTE_ADDR": address}
    )
    assert response.status_code == 429
