"""Outgoing webhooks against a real HTTP receiver on a local port (tests/webhook_receiver.py):
signed deliveries that verify with the secret shown once, retries with backoff after a 500,
order per ticket, pausing after repeated failure, redelivery from the log, the team and
internal-note filters, and no deliveries to private addresses unless allow-listed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.events import relay
from autocrm.notifications.models import EmailMessage
from autocrm.people.models import Role, User
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority
from autocrm.webhooks import deliveries
from autocrm.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from celeryconfig import WEBHOOKS_QUEUE
from tests.conftest import key_prefix
from tests.factories import ApiClient, assert_error, drain
from tests.integration.test_automation import use_workflow

TICKET_KINDS = ["ticket.created", "ticket.updated", "message.created"]


@pytest.fixture
def admin_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.admin())


def subscribe(admin_api: ApiClient, url: str, **fields: Any) -> dict[str, Any]:
    response = admin_api.post(
        "/api/webhooks", json={"url": url, "event_kinds": TICKET_KINDS, **fields}
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return {**body["webhook"], "secret": body["secret"]}


def pending(db_session: Any, subscription_id: int) -> list[WebhookDelivery]:
    return list(
        db_session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .order_by(WebhookDelivery.id)
        )
    )


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (the README's example)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


def test_a_delivery_is_signed_with_the_secret_shown_once_and_logged(
    receiver, admin_api, factory, db_session
):
    hook = subscribe(admin_api, receiver.url)
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in admin_api.get(f"/api/webhooks/{hook['id']}").get_json()
    row = db_session.get(WebhookSubscription, hook["id"])
    assert hook["secret"] not in row.secret_encrypted
    ticket = factory.ticket(factory.customer())
    drain(db_session)

    [delivery] = pending(db_session, hook["id"])
    assert deliveries.do_send(delivery.id) is DeliveryStatus.DELIVERED

    [request] = receiver.requests
    assert verify(hook["secret"], request.headers["X-AutoCRM-Signature"], request.body)
    assert not verify("whsec_wrong", request.headers["X-AutoCRM-Signature"], request.body)
    assert request.headers["X-AutoCRM-Event"] == "ticket.created"
    assert request.headers["X-AutoCRM-Delivery"] == str(delivery.id)
    document = request.document
    assert document["type"] == "ticket.created" and document["schema_version"] == 1
    assert document["id"] == delivery.event_id and document["created_at"]
    api_ticket = admin_api.get(f"/api/tickets/{ticket.id}").get_json()
    assert document["data"]["ticket"]["id"] == ticket.id
    assert document["data"]["ticket"]["subject"] == api_ticket["subject"]
    assert document["data"]["ticket"]["status_label"] == api_ticket["status_label"]

    log = admin_api.get(f"/api/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert [(d["status"], d["last_status_code"], d["last_response_body"]) for d in log] == [
        ("delivered", 200, "thanks")
    ]
    assert log[0]["last_response_ms"] is not None
    actions = db_session.scalars(
        select(AdminAuditEntry.action).where(AdminAuditEntry.target_type == "webhook")
    ).all()
    assert "webhook.created" in actions
    rotated = admin_api.post(f"/api/webhooks/{hook['id']}/secret").get_json()["secret"]
    assert rotated != hook["secret"]


def test_an_update_is_audited_with_what_changed_and_pausing_says_who(
    receiver, admin_api, db_session
):
    hook = subscribe(admin_api, receiver.url, description="Old")
    url = f"/api/webhooks/{hook['id']}"

    same = {"url": receiver.url, "event_kinds": TICKET_KINDS}
    paused = admin_api.patch(url, json={**same, "description": "New", "active": False})
    assert admin_api.patch(url, json=same).status_code == 200  # nothing changed: no entry

    assert paused.status_code == 200, paused.get_json()
    assert paused.get_json()["paused_reason"] == "Paused by an administrator."
    entries = db_session.scalars(
        select(AdminAuditEntry)
        .where(
            AdminAuditEntry.target_type == "webhook", AdminAuditEntry.action != "webhook.created"
        )
        .order_by(AdminAuditEntry.id)
    ).all()
    assert [(e.action, e.changes) for e in entries] == [
        ("webhook.updated", {"description": ["Old", "New"], "active": [True, False]})
    ]


def test_a_500_is_retried_with_backoff_by_the_sweep(receiver, admin_api, factory, db_session):
    hook = subscribe(admin_api, receiver.url)
    receiver.statuses = [500]
    receiver.answer_body = b"x" * 5000
    factory.ticket(factory.customer())
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    start = utcnow()

    assert deliveries.do_send(delivery.id, now=start) is DeliveryStatus.PENDING
    db_session.refresh(delivery)
    assert delivery.attempts == 1 and delivery.last_status_code == 500
    assert len(delivery.last_response_body) == 1024  # the first KB only
    wait = delivery.next_attempt_at - start
    assert timedelta(seconds=22) <= wait <= timedelta(seconds=38)  # 30 s +/- jitter

    assert deliveries.do_send_due(now=start + timedelta(seconds=10)) == []
    assert deliveries.do_send_due(now=start + timedelta(seconds=40)) == [delivery.id]
    assert deliveries.do_send(delivery.id, now=start + timedelta(seconds=40)) is (
        DeliveryStatus.DELIVERED
    )
    assert [d["id"] for d in receiver.documents()] == [delivery.event_id] * 2
    db_session.refresh(delivery)
    assert delivery.attempts == 2 and delivery.next_attempt_at is None
    # The next failure waits about twice as long.
    assert deliveries.nominal_delay(2) == timedelta(minutes=1)
    assert deliveries.retries_exhausted(40) and not deliveries.retries_exhausted(10)


def queued_delivery_ids(broker: Any) -> list[int]:
    """Delivery ids of the send tasks waiting in the test broker's webhooks queue, once this
    process's relay has sent what was handed to it before the call."""
    assert relay.flush()
    ids = []
    for raw in broker.lrange(key_prefix() + WEBHOOKS_QUEUE, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == deliveries.SEND_TASK:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            ids.append(args[0])
    return ids


def test_the_sweep_hands_due_deliveries_to_the_broker_during_the_relays_back_off(
    receiver, admin_api, factory, db_session, broker, monkeypatch
):
    """After a failed publish the relay leaves after-commit hand-offs to the sweeps for a
    while; the sweep's own hand-off is still tried (and its success ends the back-off), or a
    broker back within the back-off would cost each delivery a lease."""
    hook = subscribe(admin_api, receiver.url)
    assert relay.flush()
    broker.delete(key_prefix() + WEBHOOKS_QUEUE)  # what earlier tests left (no worker here)
    factory.ticket(factory.customer())
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    assert queued_delivery_ids(broker) == [delivery.id]  # after commit, by the relay
    broker.delete(key_prefix() + WEBHOOKS_QUEUE)

    monkeypatch.setattr(relay, "_backoff_until", time.monotonic() + 60)  # a publish just failed
    deliveries._send_tasks([delivery.id])  # an after-commit hand-off: left to the sweep
    lease_over = utcnow() + deliveries.LEASE + timedelta(seconds=1)
    assert deliveries.do_send_due(now=lease_over) == [delivery.id]
    assert queued_delivery_ids(broker) == [delivery.id]  # the sweep's, once
    assert relay._backoff_until == 0.0


def test_a_tickets_deliveries_go_in_order(receiver, admin_api, factory, db_session):
    hook = subscribe(admin_api, receiver.url)
    receiver.statuses = [500]
    admin = factory.admin()
    ticket = factory.ticket(factory.customer())
    drain(db_session)
    tickets.do_update_ticket(admin, ticket.id, {"priority": Priority.HIGH})
    drain(db_session)
    created, updated = pending(db_session, hook["id"])
    assert (created.event_kind, updated.event_kind) == ("ticket.created", "ticket.updated")

    start = utcnow()
    assert deliveries.do_send(created.id, now=start) is DeliveryStatus.PENDING
    assert deliveries.do_send(updated.id, now=start) is None  # waits behind the older one
    later = start + timedelta(minutes=5)
    assert deliveries.do_send_due(now=later) == [created.id]
    assert deliveries.do_send(created.id, now=later) is DeliveryStatus.DELIVERED
    assert deliveries.do_send(updated.id, now=later) is DeliveryStatus.DELIVERED
    assert [d["type"] for d in receiver.documents()] == [
        "ticket.created",
        "ticket.created",
        "ticket.updated",
    ]


def test_a_subscription_that_keeps_failing_is_paused_until_resumed(
    receiver, admin_api, factory, db_session
):
    hook = subscribe(admin_api, receiver.url)
    receiver.statuses = [503] * deliveries.PAUSE_AFTER
    factory.ticket(factory.customer())
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    moment = utcnow()
    for _ in range(deliveries.PAUSE_AFTER):
        assert deliveries.do_send(delivery.id, now=moment) is DeliveryStatus.PENDING
        moment += timedelta(hours=1)

    shown = admin_api.get(f"/api/webhooks/{hook['id']}").get_json()
    assert shown["active"] is False
    assert "HTTP 503" in shown["paused_reason"]
    told = db_session.scalars(
        select(EmailMessage).where(EmailMessage.subject == f"Webhook paused: {receiver.url}")
    ).all()
    admins = db_session.scalars(select(User.email).where(User.role == Role.ADMIN)).all()
    assert sorted(e.to_address for e in told) == sorted(admins)  # each admin, once
    assert admin_api.user.email in admins
    body = told[0].body
    assert f"/admin/webhooks/{hook['id']}" in body and "HTTP 503" in body
    assert (
        db_session.scalar(select(func.count()).where(AdminAuditEntry.action == "webhook.paused"))
        == 1
    )
    assert deliveries.do_send(delivery.id, now=moment) is None
    assert deliveries.do_send_due(now=moment + timedelta(days=1)) == []
    factory.ticket(factory.customer())
    drain(db_session)
    assert len(pending(db_session, hook["id"])) == 1  # nothing recorded while paused

    resumed = admin_api.patch(f"/api/webhooks/{hook['id']}", json={"active": True}).get_json()
    assert resumed["active"] is True and resumed["consecutive_failures"] == 0
    assert deliveries.do_send(delivery.id, now=moment) is DeliveryStatus.DELIVERED


def test_an_admin_redelivers_from_the_log_and_sends_a_test_event(
    receiver, admin_api, factory, db_session
):
    hook = subscribe(admin_api, receiver.url)
    factory.ticket(factory.customer())
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    deliveries.do_send(delivery.id)

    response = admin_api.post(f"/api/webhooks/deliveries/{delivery.id}/redeliver")
    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    again = admin_api.post(f"/api/webhooks/deliveries/{delivery.id}/redeliver")
    assert assert_error(again, 422)["errors"]["status"]
    assert deliveries.do_send(delivery.id) is DeliveryStatus.DELIVERED
    first, second = receiver.documents()
    assert first == second

    tested = admin_api.post(f"/api/webhooks/{hook['id']}/test").get_json()
    assert tested["status"] == "delivered" and tested["last_status_code"] == 200
    assert receiver.requests[-1].headers["X-AutoCRM-Event"] == "webhook.test"
    assert receiver.documents()[-1]["data"]["ticket"] is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://203.0.113.7/hook",  # not https
        "ftp://files.example/hook",
    ],
)
def test_a_private_or_plain_http_url_is_refused_at_save(admin_api, db_session, url):
    response = admin_api.post("/api/webhooks", json={"url": url, "event_kinds": TICKET_KINDS})
    assert assert_error(response, 422)["errors"]["url"]
    assert db_session.scalar(select(func.count(WebhookSubscription.id))) == 0


def test_a_destination_no_longer_allowed_is_refused_at_delivery_after_resolution(
    receiver, app, admin_api, factory, db_session, monkeypatch
):
    monkeypatch.setitem(app.config, "AUTOCRM_WEBHOOK_ALLOWED_HOSTS", "localhost")
    hook = subscribe(admin_api, f"https://localhost:{receiver.port}/hook")
    factory.ticket(factory.customer())
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    monkeypatch.setitem(app.config, "AUTOCRM_WEBHOOK_ALLOWED_HOSTS", "")

    assert deliveries.do_send(delivery.id) is DeliveryStatus.PENDING
    db_session.refresh(delivery)
    assert delivery.last_error.startswith("Refused: localhost resolves to")
    assert delivery.last_status_code is None
    assert receiver.requests == []


def test_the_team_filter_and_internal_notes(receiver, admin_api, factory, db_session):
    billing, support = factory.team(), factory.team()
    for_billing = subscribe(admin_api, receiver.url, team_id=billing.id)
    with_notes = subscribe(admin_api, receiver.url, include_internal=True)
    agent = factory.agent(billing, support)
    customer = factory.customer()

    factory.ticket(customer, team=support)
    drain(db_session)
    assert pending(db_session, for_billing["id"]) == []
    ticket = factory.ticket(customer, team=billing)
    drain(db_session)
    sent = pending(db_session, for_billing["id"])
    assert {d.ticket_id for d in sent} == {ticket.id}
    assert sent[0].event_kind == "ticket.created"
    for delivery in sent:
        deliveries.do_send(delivery.id)

    conversation.do_add_message(agent, ticket.id, "Refund approved, do not tell yet", internal=True)
    drain(db_session)
    assert pending(db_session, for_billing["id"]) == []
    notes = [d for d in pending(db_session, with_notes["id"]) if d.ticket_id == ticket.id]
    assert notes[-1].event_kind == "message.created"
    assert notes[-1].payload["data"]["message"]["internal"] is True

    conversation.do_add_message(agent, ticket.id, "Your refund is on its way.")
    drain(db_session)
    [reply] = pending(db_session, for_billing["id"])
    assert reply.payload["data"]["message"]["body"] == "Your refund is on its way."


def test_only_admins_manage_webhooks_and_the_event_document_is_in_the_spec(
    client, factory, admin_api
):
    agent_api = ApiClient(client, factory.agent())
    assert_error(agent_api.get("/api/webhooks"), 403)
    bad = admin_api.post("/api/webhooks", json={"url": "https://x", "event_kinds": ["nope"]})
    assert "event_kinds" in assert_error(bad, 422)["errors"]["json"]
    spec = client.get("/api/openapi.json").get_json()
    assert "WebhookEvent" in spec["components"]["schemas"]
    assert "/api/webhooks/{subscription_id}/deliveries" in spec["paths"]


def test_a_rules_call_webhook_action_sends_the_ticket_to_the_named_endpoint(
    receiver, admin_api, factory, db_session
):
    hook = subscribe(admin_api, receiver.url, event_kinds=["sla.breached"])  # not ticket.created

    def urgent_to_webhook(definition):
        definition["rules"].append(
            {
                "name": "urgent_to_pager",
                "event": "ticket.created",
                "if": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}],
                "then": [{"action": "call_webhook", "webhook_id": hook["id"]}],
            }
        )

    use_workflow(db_session, urgent_to_webhook)
    factory.ticket(factory.customer(), subject="Normal one")
    urgent = factory.ticket(factory.customer(), subject="Site down", priority=Priority.URGENT)
    drain(db_session)
    [delivery] = pending(db_session, hook["id"])
    drain(db_session)  # a redelivered event records nothing twice
    assert len(pending(db_session, hook["id"])) == 1

    assert deliveries.do_send(delivery.id) is DeliveryStatus.DELIVERED
    [document] = receiver.documents()
    assert document["type"] == "workflow.rule"
    assert document["data"]["ticket"]["id"] == urgent.id
    assert document["data"]["event"]["rule"] == "urgent_to_pager"
