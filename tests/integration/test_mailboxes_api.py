"""Admins connect mailboxes through ``/api/mailboxes`` and handle failed mail; a provider
delivers mail through ``/api/inbound/email/<mailbox>`` with the mailbox's secret; the admin
console's pages do the same from a browser's forms."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.mail.models import InboundEmail, Mailbox
from autocrm.tickets.models import Ticket
from tests.factories import ApiClient, assert_error, csrf_token, web_login
from tests.mail_messages import build_message

SUPPORT = "help@acme.test"


@pytest.fixture
def admin_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.admin())


@pytest.fixture
def created(admin_api, factory) -> dict[str, Any]:
    team = factory.team()
    response = admin_api.post(
        "/api/mailboxes",
        json={
            "name": "help",
            "address": SUPPORT,
            "team_id": team.id,
            "imap_host": "imap.acme.test",
            "imap_username": "help",
            "imap_password": "imap secret 1",
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return {**body["mailbox"], "webhook_secret": body["webhook_secret"]}


def test_an_admin_connects_a_mailbox_and_its_secrets_stay_secret(created, admin_api, db_session):
    assert created["webhook_secret"]
    assert created["imap_port"] == 993 and created["imap_security"] == "ssl"
    assert created["imap_password_set"] is True
    assert "imap_password" not in created

    listed = admin_api.get("/api/mailboxes").get_json()["items"]
    assert [m["name"] for m in listed] == ["help"]
    assert "webhook_secret" not in listed[0]
    row = db_session.get(Mailbox, created["id"])
    assert "imap secret 1" not in (row.imap_password_encrypted or "")
    assert created["webhook_secret"] not in (row.webhook_secret_hash or "")
    audit = db_session.scalars(
        select(AdminAuditEntry).where(AdminAuditEntry.action == "mailbox.created")
    ).all()
    assert len(audit) == 1 and "imap secret 1" not in str(audit[0].changes)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "has space", "address": "a@acme.test"}, "name"),
        ({"name": "ok", "address": "not an address"}, "address"),
        ({"name": "ok", "address": "a@acme.test", "team_id": 99999}, "team_id"),
        ({"name": "ok", "address": "a@acme.test", "imap_security": "tls9"}, "imap_security"),
        ({"name": "ok", "address": "a@acme.test", "imap_port": 70000}, "imap_port"),
        ({"address": "a@acme.test"}, "name"),
    ],
)
def test_bad_mailbox_fields_are_refused_by_name(admin_api, body, field):
    body = assert_error(admin_api.post("/api/mailboxes", json=body), 422)
    assert field in str(body["errors"])


def test_a_second_mailbox_with_the_same_address_is_refused(created, admin_api):
    body = assert_error(
        admin_api.post("/api/mailboxes", json={"name": "other", "address": SUPPORT}), 422
    )
    assert "address" in body["errors"]


def test_agents_and_customers_cannot_see_mailboxes(client, factory, created):
    for person in (factory.agent(), factory.customer()):
        assert_error(ApiClient(client, person).get("/api/mailboxes"), 403)


def test_changing_a_mailbox_keeps_the_password_unless_one_is_sent(created, admin_api, db_session):
    before = db_session.get(Mailbox, created["id"]).imap_password_encrypted
    response = admin_api.patch(f"/api/mailboxes/{created['id']}", json={"imap_folder": "Support"})
    assert response.status_code == 200 and response.get_json()["imap_folder"] == "Support"
    assert db_session.get(Mailbox, created["id"]).imap_password_encrypted == before


def test_testing_a_mailbox_without_imap_says_so(admin_api):
    made = admin_api.post("/api/mailboxes", json={"name": "piped", "address": "p@acme.test"})
    mailbox_id = made.get_json()["mailbox"]["id"]
    body = assert_error(admin_api.post(f"/api/mailboxes/{mailbox_id}/test"), 422)
    assert "imap_host" in body["errors"]


# -- the provider's webhook ---------------------------------------------------------------------


def deliver(client, name: str, raw: bytes, secret: str | None, **kw: Any):
    headers = {"Content-Type": "message/rfc822"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return client.post(f"/api/inbound/email/{name}", data=raw, headers=headers, **kw)


def test_the_webhook_takes_mail_with_the_mailboxs_secret_only(client, created, db_session):
    raw = build_message("dana@example.org", SUPPORT, "By webhook", "Hello.", message_id="wh@x")

    assert_error(deliver(client, "help", raw, None), 401)
    assert_error(deliver(client, "help", raw, "wrong"), 401)
    assert_error(deliver(client, "nobody", raw, created["webhook_secret"]), 401)
    accepted = deliver(client, "help", raw, created["webhook_secret"])

    assert accepted.status_code == 202
    assert accepted.get_json()["status"] == "processed"
    ticket = db_session.get(Ticket, accepted.get_json()["ticket_id"])
    assert ticket.subject == "By webhook" and ticket.channel == "email"
    again = deliver(client, "help", raw, created["webhook_secret"])
    assert again.get_json()["id"] == accepted.get_json()["id"]


def test_the_webhook_takes_basic_auth_and_a_form_field(client, created, db_session):
    raw = build_message("dana@example.org", SUPPORT, "As a form", "Hello.")
    basic = base64.b64encode(f"mail:{created['webhook_secret']}".encode()).decode()

    response = client.post(
        "/api/inbound/email/help",
        data={"email": (io.BytesIO(raw), "message.eml")},
        headers={"Authorization": f"Basic {basic}"},
        content_type="multipart/form-data",
    )

    assert response.status_code == 202, response.get_json()
    assert db_session.get(Ticket, response.get_json()["ticket_id"]).subject == "As a form"


def test_an_empty_webhook_body_names_what_is_missing(client, created):
    body = assert_error(deliver(client, "help", b"", created["webhook_secret"]), 422)
    assert "body" in body["errors"]


# -- failed mail ---------------------------------------------------------------------------------


def test_admins_list_download_and_discard_failed_mail(client, created, admin_api, db_session):
    junk = b"garbage that is no email"
    failed = deliver(client, "help", junk, created["webhook_secret"]).get_json()
    assert failed["status"] == "failed"

    listed = admin_api.get("/api/mailboxes/inbound").get_json()["items"]
    assert [e["id"] for e in listed] == [failed["id"]]
    raw = admin_api.get(f"/api/mailboxes/inbound/{failed['id']}/raw")
    assert raw.status_code == 200 and raw.data == junk
    assert raw.headers["X-Content-Type-Options"] == "nosniff"

    discarded = admin_api.post(f"/api/mailboxes/inbound/{failed['id']}/discard")
    assert discarded.status_code == 200 and discarded.get_json()["status"] == "discarded"
    assert admin_api.get("/api/mailboxes/inbound").get_json()["items"] == []
    body = assert_error(admin_api.post(f"/api/mailboxes/inbound/{failed['id']}/retry"), 422)
    assert "status" in body["errors"]
    assert db_session.get(InboundEmail, failed["id"]) is not None


# -- the admin console ----------------------------------------------------------------------------


def test_the_console_connects_a_mailbox_and_shows_the_secret_once(client, factory, db_session):
    admin = factory.admin()
    web_login(client, admin)
    token = csrf_token(client, "/admin/mailboxes")
    form = {"csrf_token": token, "name": "sales", "address": "sales@acme.test", "active": "on"}

    page = client.post("/admin/mailboxes", data=form)

    assert page.status_code == 201
    html = page.get_data(as_text=True)
    assert "Webhook secret, shown this once" in html
    assert "flask --app wsgi mail-in --mailbox sales" in html
    assert "/api/inbound/email/sales" in html
    assert "Webhook secret" not in client.get("/admin/mailboxes").get_data(as_text=True)


def test_the_console_keeps_what_was_typed_and_marks_the_wrong_field(client, factory):
    web_login(client, factory.admin())
    token = csrf_token(client, "/admin/mailboxes")
    form = {"csrf_token": token, "name": "sales", "address": "nope", "imap_host": "imap.x.test"}

    page = client.post("/admin/mailboxes", data=form)

    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'id="m-address" name="address" value="nope" aria-invalid="true"' in html
    assert 'value="imap.x.test"' in html


def test_the_console_lists_received_mail_by_status(client, factory, created):
    web_login(client, factory.admin())
    junk = b"not an email"
    deliver(client, "help", junk, created["webhook_secret"])

    failed = client.get("/admin/mailboxes/mail")
    everything = client.get("/admin/mailboxes/mail?status=all")
    processed = client.get("/admin/mailboxes/mail?status=processed")

    assert failed.status_code == everything.status_code == processed.status_code == 200
    assert "no From address" in failed.get_data(as_text=True)
    assert "no From address" not in processed.get_data(as_text=True)
    assert client.get("/admin/mailboxes/mail?status=bogus").status_code == 404
