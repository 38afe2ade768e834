"""Email delivery through a real SMTP server (aiosmtpd on 127.0.0.1): one email per
EmailMessage however often its event is handled, failures retried by the outbox sweep,
permanent refusals not retried forever, and email preferences respected."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from autocrm import create_app
from autocrm.columns import utcnow
from autocrm.events import dispatch as events
from autocrm.events import outbox
from autocrm.events.emit import emit
from autocrm.events.kinds import EmailRequested
from autocrm.events.models import OutboxEvent
from autocrm.mail import mailer as mail
from autocrm.notifications import delivery as email_delivery
from autocrm.notifications import preferences as notification_settings
from autocrm.notifications import services as notifications
from autocrm.notifications.models import EmailMessage, Notification
from tests.integration.test_outbox import queued_event_ids
from tests.processes import free_port
from tests.smtp_server import SmtpServer

SENDER = "AutoCRM <support@autocrm.test>"


@contextmanager
def smtp_mailer(app: Flask) -> Iterator[SmtpServer]:
    """A running SMTP server, and the app's mailer pointed at it (restored afterwards)."""
    server = SmtpServer()
    server.start()
    original = app.extensions["mailer"]
    app.extensions["mailer"] = mail.SmtpMailer("127.0.0.1", server.port, sender=SENDER, timeout=5)
    try:
        yield server
    finally:
        app.extensions["mailer"] = original
        server.stop()


@pytest.fixture
def smtp(app: Flask, db_session: Any) -> Iterator[SmtpServer]:
    with smtp_mailer(app) as server:
        yield server


def email_event(db_session: Any, email_id: int) -> OutboxEvent:
    rows = db_session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "email.requested"))
    [row] = [r for r in rows if r.payload.get("email_id") == email_id]
    return row


def queue(db_session: Any, user: Any, kind: str = "assigned", key: str = "evt-1") -> EmailMessage:
    """Notify ``user`` as a committed service call would; returns the queued email."""
    notifications.notify(
        user, kind, title="Hello there", body="Line one.\nLine two.", dedupe_key=key
    )
    db_session.commit()
    return db_session.scalar(
        select(EmailMessage).where(EmailMessage.dedupe_key == f"{key}:{user.id}:{kind}")
    )


def test_an_email_event_handled_twice_sends_exactly_one_email(factory, db_session, smtp):
    customer = factory.customer()
    queued = queue(db_session, customer)
    event = email_event(db_session, queued.id)

    assert events.do_handle_event(event.id) is True
    assert events.do_handle_event(event.id) is False  # redelivered

    assert len(smtp.messages) == 1
    [message] = smtp.messages
    assert message["To"] == customer.email
    assert message["From"] == SENDER
    assert message["Subject"] == "Hello there"
    assert message["Message-ID"] == f"<{email_delivery.message_id_for(queued)}@autocrm.test>"
    assert message.get_content().replace("\r\n", "\n").strip() == "Line one.\nLine two."
    db_session.refresh(queued)
    assert queued.sent_at is not None
    assert queued.attempts == 1
    assert queued.last_error is None


def test_a_sent_email_is_never_sent_again_whichever_event_asks(factory, db_session, smtp):
    queued = queue(db_session, factory.customer())
    assert events.do_handle_event(email_event(db_session, queued.id).id)
    # Another event naming the same email (not just the same event redelivered).
    again = EmailRequested(email_id=queued.id)
    emit(again)
    db_session.commit()
    assert events.do_handle_event(again.id) is True
    assert len(smtp.messages) == 1


def test_a_failed_send_leaves_the_event_for_the_sweep_and_a_later_retry_sends_it(
    factory, db_session, smtp, broker
):
    customer = factory.customer()
    queued = queue(db_session, customer)
    event = email_event(db_session, queued.id)
    smtp.stop()

    with pytest.raises(email_delivery.DeliveryFailed):
        events.do_handle_event(event.id)
    db_session.rollback()  # what the worker's session does with the failed task

    db_session.refresh(event)
    db_session.refresh(queued)
    assert event.processed_at is None, "the event must stay pending for a retry"
    assert queued.sent_at is None
    assert queued.attempts == 1, "the attempt is recorded although the handler failed"
    assert "ConnectionRefusedError" in queued.last_error

    # The sweep re-publishes it once it is old enough; a worker then handles it again.
    db_session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == event.id)
        .values(created_at=utcnow() - timedelta(minutes=5))
    )
    db_session.commit()
    assert outbox.relay_pending() >= 1
    assert event.id in queued_event_ids(broker)

    smtp.start()
    assert events.do_handle_event(event.id) is True
    assert [m["To"] for m in smtp.messages] == [customer.email]
    assert smtp.messages[0]["Message-ID"].startswith(
        f"<{email_delivery.message_id_for(queued)}@"
    ), "the same Message-ID on every attempt"
    db_session.refresh(queued)
    assert queued.sent_at is not None
    assert queued.attempts == 2
    assert events.do_handle_event(event.id) is False
    assert len(smtp.messages) == 1


def test_a_refused_recipient_is_not_retried(factory, db_session, smtp):
    customer = factory.customer()
    queued = queue(db_session, customer)
    smtp.sink.refused.add(customer.email)

    assert events.do_handle_event(email_event(db_session, queued.id).id) is True

    db_session.refresh(queued)
    assert queued.sent_at is None
    assert queued.attempts == 1
    assert "550" in queued.last_error
    assert smtp.messages == []


def test_retrying_stops_after_max_attempts(factory, db_session, smtp):
    queued = queue(db_session, factory.customer())
    queued.attempts = email_delivery.MAX_ATTEMPTS - 1
    db_session.commit()
    smtp.stop()

    event = email_event(db_session, queued.id)
    assert events.do_handle_event(event.id) is True, "given up: the event is done"
    db_session.refresh(queued)
    assert queued.attempts == email_delivery.MAX_ATTEMPTS
    assert queued.sent_at is None
    assert queued.last_error


def test_email_switched_off_for_a_kind_notifies_in_app_only(factory, db_session, smtp):
    customer = factory.customer()
    notification_settings.do_set_email_preferences(customer, {"assigned": False})

    assert queue(db_session, customer, "assigned", key="off") is None
    assert db_session.scalar(
        select(Notification).where(Notification.dedupe_key == f"off:{customer.id}:assigned")
    )
    # Other kinds still email.
    assert queue(db_session, customer, "status_changed", key="on") is not None


def test_the_mailer_is_the_console_one_unless_an_smtp_host_is_set(app, caplog):
    console = create_app({**app.config, "AUTOCRM_SMTP_HOST": None})
    smtp = create_app(
        {**app.config, "AUTOCRM_SMTP_HOST": "127.0.0.1", "AUTOCRM_SMTP_PORT": 1}
    )  # nothing listens on port 1: creating the app must not connect
    try:
        assert isinstance(console.extensions["mailer"], mail.ConsoleMailer)
        assert isinstance(smtp.extensions["mailer"], mail.SmtpMailer)
        assert smtp.extensions["mailer"].port == 1
    finally:
        console.extensions["celery"].close()
        smtp.extensions["celery"].close()
    with caplog.at_level(logging.INFO, logger="autocrm.mail"):
        mail.ConsoleMailer(SENDER).send("a@example.test", "Hi", "Body text", message_id="m1")
    assert "a@example.test" in caplog.text
    assert "Body text" in caplog.text
    assert "<m1@autocrm.test>" in caplog.text


def test_an_email_that_cannot_be_encoded_is_a_permanent_failure():
    mailer = mail.SmtpMailer("127.0.0.1", free_port(), sender=SENDER)
    with pytest.raises(mail.PermanentFailure):
        mailer.send("a@example.test", "Bad\nheader", "x", message_id="m2")
