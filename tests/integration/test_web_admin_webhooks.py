"""The admin console's Webhooks pages, through the Flask test client with a real login and a
real HTTP receiver (tests/webhook_receiver.py): subscribe with the secret shown once, bad input
kept and named at its field, pause, a test event and its log entry, redelivery; agents are kept
out."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from autocrm.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from tests.factories import csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Tests log in; the login rate limit must not carry over."""


@pytest.fixture
def token(client, factory) -> str:
    web_login(client, factory.admin())
    return csrf_token(client, "/admin/webhooks")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_admin_subscribes_sees_the_secret_once_pauses_and_tests(
    client, token, receiver, db_session
):
    form = {
        "csrf_token": token,
        "url": receiver.url,
        "description": "Billing system",
        "event_kinds": ["ticket.created", "message.created"],
        "active": "on",
    }
    created = client.post("/admin/webhooks", data=form)

    assert created.status_code == 201
    page = text(created)
    hook = db_session.scalar(select(WebhookSubscription))
    assert "Signing secret, shown this once" in page and "whsec_" in page
    assert (hook.url, hook.event_kinds, hook.active) == (
        receiver.url,
        ["ticket.created", "message.created"],
        True,
    )
    again = text(client.get(f"/admin/webhooks/{hook.id}"))
    assert "whsec_" not in again and "Nothing sent yet." in again
    listing = text(client.get("/admin/webhooks"))
    assert 'aria-current="page">Webhooks</a>' in listing
    assert "Ticket created, Message added" in listing

    paused = client.post(
        f"/admin/webhooks/{hook.id}", data={**form, "active": "", "csrf_token": token}
    )
    assert paused.status_code == 302
    assert "Paused by an administrator." in text(client.get(f"/admin/webhooks/{hook.id}"))

    tested = client.post(f"/admin/webhooks/{hook.id}/test", data={"csrf_token": token})
    assert tested.status_code == 302
    delivery_page = text(client.get(tested.location))
    assert "Test event delivered: HTTP 200." in delivery_page
    assert '"type": "webhook.test"' in delivery_page
    assert [d["type"] for d in receiver.documents()] == ["webhook.test"]
    log = text(client.get(f"/admin/webhooks/{hook.id}"))
    assert "webhook.test" in log and "HTTP 200" in log


def test_a_refused_url_and_no_events_are_named_and_the_input_kept(client, token, db_session):
    refused = client.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "http://10.0.0.7/hook", "description": "Keep me"},
    )

    assert refused.status_code == 422
    page = text(refused)
    assert 'id="w-url-error"' in page and 'id="w-kinds-error"' in page
    assert 'value="http://10.0.0.7/hook"' in page and 'value="Keep me"' in page
    assert db_session.scalar(select(WebhookSubscription)) is None


def test_redeliver_from_the_delivery_page(client, token, receiver, db_session):
    form = {"csrf_token": token, "url": receiver.url, "event_kinds": ["ticket.created"]}
    client.post("/admin/webhooks", data={**form, "active": "on"})
    hook = db_session.scalar(select(WebhookSubscription))
    tested = client.post(f"/admin/webhooks/{hook.id}/test", data={"csrf_token": token})
    delivery = db_session.scalar(select(WebhookDelivery))

    redelivered = client.post(
        f"/admin/webhooks/deliveries/{delivery.id}/redeliver", data={"csrf_token": token}
    )

    assert redelivered.location == tested.location
    assert "Queued to be sent again." in text(client.get(redelivered.location))
    db_session.refresh(delivery)
    assert delivery.status is DeliveryStatus.PENDING and delivery.attempts == 0


def test_agents_cannot_open_the_webhook_pages(client, factory):
    web_login(client, factory.agent())

    assert client.get("/admin/webhooks").status_code == 404  # the console is not shown to them
    assert client.get("/admin/webhooks/1").status_code == 404
