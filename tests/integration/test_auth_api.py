"""POST /api/auth/token and the bearer check every protected endpoint applies."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from limits import parse as parse_limit

from autocrm.security import password_fingerprint
from tests.factories import PASSWORD, ApiClient, assert_error

TOKEN_URL = "/api/auth/token"
ME_URL = "/api/users/me"
BAD_CREDENTIALS = "Invalid email or password."


def login(client, email: str, password: str = PASSWORD):
    return client.post(TOKEN_URL, json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- issuing tokens -------------------------------------------------------------------------------


def test_token_for_valid_credentials_authenticates_later_requests(
    app, client, factory, fresh_login_limit
):
    agent = factory.agent(name="Alex Agent")
    agent_id, email = agent.id, agent.email

    response = login(client, email)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["AUTOCRM_TOKEN_TTL"]
    assert isinstance(body["access_token"], str) and body["access_token"]
    me = client.get(ME_URL, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.json
    assert me.json["id"] == agent_id
    assert me.json["email"] == email
    assert me.json["role"] == "agent"
    assert "password" not in me.json and "password_hash" not in me.json


def test_email_is_case_insensitive_and_trimmed(client, factory, fresh_login_limit):
    user = factory.customer(email="Casey.Customer@Example.test")
    user_id = user.id

    for spelling in (
        "casey.customer@example.test",
        "CASEY.CUSTOMER@EXAMPLE.TEST",
        "  Casey.Customer@example.TEST ",
    ):
        response = login(client, spelling)
        assert response.status_code == 200, (spelling, response.json)
        me = client.get(ME_URL, headers=bearer(response.json["access_token"]))
        assert me.json["id"] == user_id


def test_wrong_password_and_unknown_email_get_the_same_401(client, factory, fresh_login_limit):
    user = factory.customer()

    wrong_password = assert_error(login(client, user.email, "not the password"), 401)
    unknown_email = assert_error(login(client, "nobody@example.test"), 401)

    assert wrong_password["message"] == unknown_email["message"] == BAD_CREDENTIALS
    assert "access_token" not in wrong_password and "access_token" not in unknown_email


def test_password_is_case_sensitive(client, factory, fresh_login_limit):
    user = factory.customer()

    assert_error(login(client, user.email, PASSWORD.upper()), 401)


def test_deactivated_user_cannot_log_in_and_their_token_stops_working(
    client, factory, fresh_login_limit
):
    admin_api = ApiClient(client, factory.admin())
    user = factory.agent()
    user_id, email = user.id, user.email
    token = login(client, email).json["access_token"]
    assert client.get(ME_URL, headers=bearer(token)).status_code == 200

    deactivated = admin_api.patch(f"/api/users/{user_id}", json={"active": False})
    assert deactivated.status_code == 200, deactivated.json

    assert_error(login(client, email), 401)
    assert_error(client.get(ME_URL, headers=bearer(token)), 401)
    assert_error(client.get("/api/tickets", headers=bearer(token)), 401)
    # A wrong password for a deactivated account says no more than for any other account.
    assert assert_error(login(client, email, "wrong password"), 401)["message"] == BAD_CREDENTIALS


def test_reactivated_user_can_log_in_again(client, factory, fresh_login_limit):
    admin_api = ApiClient(client, factory.admin())
    user = factory.agent(active=False)
    user_id, email = user.id, user.email
    assert_error(login(client, email), 401)

    assert admin_api.patch(f"/api/users/{user_id}", json={"active": True}).status_code == 200

    assert login(client, email).status_code == 200


def test_password_change_invalidates_earlier_tokens(client, factory, fresh_login_limit):
    admin_api = ApiClient(client, factory.admin())
    user = factory.customer()
    user_id, email = user.id, user.email
    old_token = login(client, email).json["access_token"]

    changed = admin_api.patch(f"/api/users/{user_id}", json={"password": "a brand new secret"})
    assert changed.status_code == 200, changed.json

    assert_error(client.get(ME_URL, headers=bearer(old_token)), 401)
    assert_error(login(client, email), 401)
    new_login = login(client, email, "a brand new secret")
    assert new_login.status_code == 200
    assert client.get(ME_URL, headers=bearer(new_login.json["access_token"])).status_code == 200


def test_other_profile_changes_keep_tokens_valid(client, factory, fresh_login_limit):
    admin_api = ApiClient(client, factory.admin())
    user = factory.agent()
    user_id, email = user.id, user.email
    token = login(client, email).json["access_token"]

    assert admin_api.patch(f"/api/users/{user_id}", json={"name": "Renamed"}).status_code == 200

    me = client.get(ME_URL, headers=bearer(token))
    assert me.status_code == 200
    assert me.json["name"] == "Renamed"


# -- rejecting bad tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer eyJ1aWQiOjF9.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    ],
    ids=["none", "empty", "scheme-only", "blank-token", "basic", "garbage", "forged-shape"],
)
def test_missing_or_malformed_token_is_401(client, headers):
    for url in (ME_URL, "/api/tickets", "/api/teams"):
        assert_error(client.get(url, headers=headers), 401)


def test_token_signed_with_another_key_is_401(app, client, factory):
    user = factory.admin()
    forged = URLSafeTimedSerializer("some other secret", salt="autocrm.api-token").dumps(
        {"uid": user.id, "pw": password_fingerprint(user.password_hash)}
    )

    assert_error(client.get(ME_URL, headers=bearer(forged)), 401)


def _token_issued_seconds_ago(app, user, seconds: int) -> str:
    """A token signed as the app signs, but with an issue time ``seconds`` in the past."""

    class IssuedThen(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds

    serializer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="autocrm.api-token", signer=IssuedThen
    )
    return serializer.dumps({"uid": user.id, "pw": password_fingerprint(user.password_hash)})


def test_token_older_than_its_lifetime_is_401(app, client, factory):
    ttl = app.config["AUTOCRM_TOKEN_TTL"]
    assert ttl > 60, "the test needs a lifetime longer than its one-minute margin"
    user = factory.customer()
    recent = _token_issued_seconds_ago(app, user, ttl - 60)
    expired = _token_issued_seconds_ago(app, user, ttl + 60)

    # Same key, same claims: only the age differs, so this tells the expiry check works.
    assert client.get(ME_URL, headers=bearer(recent)).status_code == 200
    body = assert_error(client.get(ME_URL, headers=bearer(expired)), 401)
    assert "expired" in body["message"].lower()


def test_token_expires_after_configured_lifetime(app, client, factory):
    user = factory.customer()
    token = ApiClient(client, user).headers["Authorization"].removeprefix("Bearer ")
    assert client.get(ME_URL, headers=bearer(token)).status_code == 200

    saved = app.config["AUTOCRM_TOKEN_TTL"]
    app.config["AUTOCRM_TOKEN_TTL"] = -1
    try:
        response = client.get(ME_URL, headers=bearer(token))
    finally:
        app.config["AUTOCRM_TOKEN_TTL"] = saved
    assert_error(response, 401)


# -- request validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "email"),
        ({"email": "someone@example.test"}, "password"),
        ({"email": "", "password": PASSWORD}, "email"),
        ({"email": "someone@example.test", "password": PASSWORD, "role": "admin"}, "role"),
        ({"email": 42, "password": PASSWORD}, "email"),
    ],
)
def test_bad_token_request_body_is_422_naming_the_field(client, fresh_login_limit, body, field):
    response = assert_error(client.post(TOKEN_URL, json=body), 422)

    assert field in response["errors"]["json"]


def test_token_request_without_json_is_422(client, fresh_login_limit):
    assert_error(client.post(TOKEN_URL, data="email=a&password=b"), 422)


# -- rate limiting --------------------------------------------------------------------------------


def test_login_attempts_beyond_the_limit_get_429(app, client, factory, fresh_login_limit):
    user = factory.customer()
    allowed = parse_limit(app.config["AUTOCRM_LOGIN_RATE_LIMIT"]).amount

    for attempt in range(allowed):
        response = login(client, user.email, "guessing")
        assert response.status_code == 401, (attempt, response.json)

    blocked = assert_error(login(client, user.email, "guessing"), 429)
    assert blocked["status"] == "Too Many Requests"
    # Once blocked, even the right password waits: that is what stops guessing.
    assert_error(login(client, user.email), 429)


def test_rate_limit_does_not_apply_to_other_endpoints(app, client, factory, fresh_login_limit):
    user = factory.customer()
    api = ApiClient(client, user)
    allowed = parse_limit(app.config["AUTOCRM_LOGIN_RATE_LIMIT"]).amount

    for _ in range(allowed + 1):
        assert api.get(ME_URL).status_code == 200
    assert login(client, user.email).status_code == 200
