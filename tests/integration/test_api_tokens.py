"""Personal API tokens (issue 11): made once and shown once, stored hashed, scoped, expiring,
revocable, their use recorded; and the security events of logging in land in the audit log."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.people.models import ApiToken, User
from autocrm.tickets.models import Message
from tests.factories import PASSWORD, ApiClient, Factory, assert_error, csrf_token, web_login
from tests.integration.conftest import Sock

TOKENS_URL = "/api/tokens"


def make_token(api: ApiClient, **body: Any) -> dict[str, Any]:
    response = api.post(TOKENS_URL, json={"name": "CI script", "scope": "read", **body})
    assert response.status_code == 201, response.json
    return response.json


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_actions(user: User) -> list[str]:
    return list(
        db.session.scalars(
            select(AdminAuditEntry.action)
            .where(AdminAuditEntry.target_type == "user", AdminAuditEntry.target_id == user.id)
            .order_by(AdminAuditEntry.id)
        )
    )


def bodies_of(ticket_id: int) -> list[str]:
    """The ticket's messages, oldest first."""
    return list(
        db.session.scalars(
            select(Message.body).where(Message.ticket_id == ticket_id).order_by(Message.id)
        )
    )


# -- making, listing, using ----------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_logs_its_user_in(
    client: FlaskClient, factory: Factory
) -> None:
    agent = factory.agent()
    api = ApiClient(client, agent)

    made = make_token(api, name="Zapier", scope="write", expires_in_days=30)

    token = made["token"]
    assert token.startswith("acrm_") and len(token) > 40
    assert made["prefix"] == token[: len(made["prefix"])] and len(made["prefix"]) < 15
    assert made["scope"] == "write" and made["name"] == "Zapier"
    expires = made["expires_at"]
    assert expires is not None
    row = db.session.scalars(select(ApiToken).where(ApiToken.user_id == agent.id)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.token_hash, row.prefix, row.name}
    assert row.last_used_at is None

    me = client.get("/api/users/me", headers=bearer(token))
    assert me.status_code == 200, me.json
    assert me.json["id"] == agent.id

    listed = api.get(TOKENS_URL)
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json] == ["Zapier"]
    assert "token" not in listed.json[0]
    assert listed.json[0]["last_used_at"] is not None
    assert "token.created" in audit_actions(agent)


def test_a_read_token_reads_but_changes_nothing(client: FlaskClient, factory: Factory) -> None:
    customer = factory.customer()
    ticket = factory.ticket(customer)
    token = make_token(ApiClient(client, customer), scope="read")["token"]

    assert client.get(f"/api/tickets/{ticket.id}", headers=bearer(token)).status_code == 200
    refused = client.post(
        f"/api/tickets/{ticket.id}/messages", json={"body": "hello"}, headers=bearer(token)
    )
    body = assert_error(refused, 403)
    assert "scope" in body["errors"]
    assert bodies_of(ticket.id) == []


def test_an_admins_write_token_works_tickets_but_does_not_administer(
    client: FlaskClient, factory: Factory
) -> None:
    admin = factory.admin()
    customer = factory.customer()
    ticket = factory.ticket(customer)
    token = make_token(ApiClient(client, admin), scope="write")["token"]

    reply = client.post(
        f"/api/tickets/{ticket.id}/messages", json={"body": "On it."}, headers=bearer(token)
    )
    assert reply.status_code == 201, reply.json
    assert client.get("/api/users", headers=bearer(token)).status_code == 200  # reading is fine
    new_user = {"email": "new@example.test", "name": "New", "role": "agent", "password": PASSWORD}
    assert_error(client.post("/api/users", json=new_user, headers=bearer(token)), 403)
    assert_error(client.post("/api/teams", json={"name": "Tokens"}, headers=bearer(token)), 403)
    created = client.post("/api/workflows", json={"name": "By token"}, headers=bearer(token))
    assert_error(created, 403)

    admin_token = make_token(ApiClient(client, admin), scope="admin")["token"]
    made = client.post("/api/users", json=new_user, headers=bearer(admin_token))
    assert made.status_code == 201, made.json


def test_only_admins_may_make_admin_tokens_and_bad_input_names_its_field(
    client: FlaskClient, factory: Factory
) -> None:
    api = ApiClient(client, factory.agent())
    # The schema refuses what no one may send (under "json"); the service what this user may not.
    for sent, where in (
        ({"name": "x", "scope": "admin"}, ["scope"]),
        ({"name": "   ", "scope": "read"}, ["name"]),
        ({"name": "x", "scope": "everything"}, ["json", "scope"]),
        ({"name": "", "scope": "read"}, ["json", "name"]),
        ({"name": "x", "scope": "read", "expires_in_days": 0}, ["json", "expires_in_days"]),
        ({"name": "x", "scope": "read", "expires_in_days": 1000}, ["json", "expires_in_days"]),
    ):
        errors = assert_error(api.post(TOKENS_URL, json=sent), 422)["errors"]
        for key in where:
            errors = errors[key]
        assert errors, sent
    assert api.get(TOKENS_URL).json == []


def test_a_token_stops_working_when_it_expires_is_revoked_or_its_user_is_deactivated(
    client: FlaskClient, factory: Factory
) -> None:
    agent = factory.agent()
    api = ApiClient(client, agent)
    expiring = make_token(api, expires_in_days=1)["token"]
    revoked = make_token(api)
    never = make_token(api, expires_in_days=None)
    assert never["expires_at"] is None

    with time_machine.travel(utcnow() + timedelta(days=1, seconds=5), tick=False):
        assert_error(client.get("/api/users/me", headers=bearer(expiring)), 401)
        assert client.get("/api/users/me", headers=bearer(never["token"])).status_code == 200

    assert api.delete(f"{TOKENS_URL}/{revoked['id']}").json == {
        "id": revoked["id"],
        "revoked": True,
    }
    assert_error(client.get("/api/users/me", headers=bearer(revoked["token"])), 401)
    assert_error(api.delete(f"{TOKENS_URL}/{revoked['id']}"), 404)
    assert "token.revoked" in audit_actions(agent)

    agent.active = False
    db.session.commit()
    assert_error(client.get("/api/users/me", headers=bearer(never["token"])), 401)


def test_a_token_cannot_make_or_revoke_tokens_nor_touch_anothers(
    client: FlaskClient, factory: Factory
) -> None:
    alice, bob = factory.agent(), factory.agent()
    alices = make_token(ApiClient(client, alice), scope="write")
    token = alices["token"]

    assert_error(
        client.post(TOKENS_URL, json={"name": "more", "scope": "read"}, headers=bearer(token)), 403
    )
    assert_error(client.get(TOKENS_URL, headers=bearer(token)), 403)
    assert_error(ApiClient(client, bob).delete(f"{TOKENS_URL}/{alices['id']}"), 404)
    assert client.get("/api/users/me", headers=bearer(token)).status_code == 200


def test_a_read_tokens_socket_follows_but_cannot_post_and_a_revoked_one_is_cut_off(
    client: FlaskClient, factory: Factory, connect: Any
) -> None:
    customer = factory.customer()
    ticket_id = factory.ticket(customer).id
    api = ApiClient(client, customer)
    reader = make_token(api, scope="read")
    writer = make_token(api, scope="write")

    sock: Sock = connect(customer, auth={"token": reader["token"]})
    assert sock.emit("join_ticket", {"ticket_id": ticket_id})["ok"]
    refused = sock.emit("send_message", {"ticket_id": ticket_id, "body": "by a read token"})
    assert not refused["ok"] and "read" in refused["error"]

    writing = connect(customer, auth={"token": writer["token"]})
    assert writing.emit("send_message", {"ticket_id": ticket_id, "body": "by a write token"})["ok"]
    assert api.delete(f"{TOKENS_URL}/{writer['id']}").status_code == 200
    after = writing.emit("send_message", {"ticket_id": ticket_id, "body": "after revoking"})
    assert not after["ok"]
    assert bodies_of(ticket_id) == ["by a write token"]


# -- the web page --------------------------------------------------------------------------------


def test_the_security_page_makes_a_token_shows_it_once_and_revokes_it(
    client: FlaskClient, factory: Factory
) -> None:
    agent = factory.agent()
    web_login(client, agent)
    token = csrf_token(client, "/sessions")

    bad = client.post("/tokens", data={"name": "", "scope": "admin", "csrf_token": token})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert 'id="name-error"' in page and 'id="scope-error"' in page

    made = client.post(
        "/tokens",
        data={"name": "Reporting", "scope": "read", "expires_in_days": "30", "csrf_token": token},
    )
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    row = db.session.scalars(select(ApiToken).where(ApiToken.user_id == agent.id)).one()
    shown = made.get_data(as_text=True)
    value = shown.split('id="new-token-value" value="', 1)[1].split('"', 1)[0]
    assert hashlib.sha256(value.encode()).hexdigest() == row.token_hash
    assert client.get("/api/users/me", headers=bearer(value)).status_code == 200

    again = client.get("/sessions").get_data(as_text=True)
    assert "Reporting" in again and value not in again

    revoked = client.post(f"/tokens/{row.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    assert_error(client.get("/api/users/me", headers=bearer(value)), 401)


# -- logins in the audit log ---------------------------------------------------------------------


def test_logins_and_refused_logins_are_audited(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    agent = factory.agent()

    refused = client.post("/api/auth/token", json={"email": agent.email, "password": "wrong"})
    assert_error(refused, 401)
    ok = client.post("/api/auth/token", json={"email": agent.email, "password": PASSWORD})
    assert ok.status_code == 200
    web_login(client, agent)
    unknown = "nobody@example.test"
    client.post("/api/auth/token", json={"email": unknown, "password": "x"})

    entries = db.session.scalars(
        select(AdminAuditEntry)
        .where(AdminAuditEntry.action.in_(["user.logged_in", "user.login_failed"]))
        .order_by(AdminAuditEntry.id)
    ).all()
    mine = [(e.action, e.changes["via"][1]) for e in entries if e.target_id == agent.id]
    assert mine == [
        ("user.login_failed", "api"),
        ("user.logged_in", "api"),
        ("user.logged_in", "web"),
    ]
    strangers = [e for e in entries if e.target_id is None]
    assert [(e.action, e.target_label) for e in strangers] == [("user.login_failed", unknown)]
