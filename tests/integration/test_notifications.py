"""What people are told about a ticket, through the real worker path (outbox events handled by
``do_handle_event``) and a real SMTP server: one notification and at most one email per person
per change, status emails in the workflow's labels with a body and a link, a customer's changes
within the window as one email, never the actor, never twice for a redelivered event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from autocrm.columns import utcnow
from autocrm.events import dispatch as events
from autocrm.events.models import OutboxEvent
from autocrm.notifications import emails
from autocrm.notifications import services as notifications
from autocrm.notifications.models import EmailMessage, Notification
from autocrm.people.models import AssignmentPolicy, User
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests.factories import drain
from tests.integration.test_email_delivery import smtp_mailer
from tests.smtp_server import SmtpServer

WINDOW_S = 120
BASE_URL = "https://help.example.test"


@pytest.fixture
def smtp(app: Flask, db_session: Any) -> Iterator[SmtpServer]:
    with smtp_mailer(app) as server:
        yield server


@pytest.fixture(autouse=True)
def settings(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "AUTOCRM_CUSTOMER_EMAIL_WINDOW", WINDOW_S)
    monkeypatch.setitem(app.config, "AUTOCRM_BASE_URL", BASE_URL)


def notes_of(session: Any, user: User) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def emails_to(session: Any, user: User) -> list[EmailMessage]:
    return list(
        session.scalars(
            select(EmailMessage)
            .where(EmailMessage.to_address == user.email)
            .order_by(EmailMessage.id)
        )
    )


def mail_to(smtp: SmtpServer, user: User) -> list[Any]:
    return [m for m in smtp.messages if m["To"] == user.email]


def text(message: Any) -> str:
    return message.get_content().replace("\r\n", "\n")


def windows_end(session: Any, after: float = WINDOW_S) -> None:
    """The beat, ``after`` seconds from now; then the worker handles what it requested."""
    emails.do_request_due_emails(utcnow() + timedelta(seconds=after))
    drain(session)


@pytest.fixture
def desk(factory) -> dict[str, Any]:
    """A team that assigns round-robin, one agent in it, and a customer."""
    team = factory.team()
    team.assignment_policy = AssignmentPolicy.ROUND_ROBIN
    factory.session.commit()
    return {"team": team, "agent": factory.agent(team), "customer": factory.customer()}


# -- one per person per change -----------------------------------------------------------------


def test_a_new_ticket_auto_assigned_tells_its_assignee_once_in_one_email(
    factory, db_session, smtp, desk
):
    agent = desk["agent"]
    ticket = factory.ticket(desk["customer"], team=desk["team"])

    drain(db_session)

    assert db_session.get(Ticket, ticket.id).assignee_id == agent.id
    [note] = notes_of(db_session, agent)
    assert note.kind == "assigned"
    assert note.title == f"New ticket [#{ticket.id}] Printer on fire, assigned to you"
    assert "It is on fire." in note.body
    assert len(emails_to(db_session, agent)) == 1
    [message] = mail_to(smtp, agent)
    assert message["Subject"] == note.title
    assert f"{BASE_URL}/agent/tickets/{ticket.id}" in text(message)
    assert "It is on fire." in text(message)


def test_staff_emails_are_not_delayed_by_the_customer_window(factory, db_session, smtp, desk):
    ticket = factory.ticket(desk["customer"], team=desk["team"])
    drain(db_session)
    conversation.do_add_message(desk["customer"], ticket.id, "Any news?")
    drain(db_session)

    assert [m["Subject"] for m in mail_to(smtp, desk["agent"])] == [
        f"New ticket [#{ticket.id}] Printer on fire, assigned to you",
        f"New reply on [#{ticket.id}] Printer on fire",
    ]
    assert "Any news?" in text(mail_to(smtp, desk["agent"])[1])


def test_a_reply_and_the_status_it_caused_are_one_notification(factory, db_session, desk):
    customer, agent = desk["customer"], desk["agent"]
    ticket = factory.ticket(customer, by=customer)
    drain(db_session)

    conversation.do_add_message(agent, ticket.id, "We are on it.")
    drain(db_session)  # the rule start_on_first_agent_reply opens it, in the same change

    assert db_session.get(Ticket, ticket.id).status == "open"
    [note] = notes_of(db_session, customer)
    assert set(note.parts) == {"public_reply", "status_changed"}
    assert note.title == f"[#{ticket.id}] Printer on fire is now Open"
    assert note.body.count("We are on it.") == 1, note.body
    assert "Your ticket is now Open (it was New)." in note.body


def test_two_escalations_of_one_change_are_one_notification_saying_both(
    factory, db_session, smtp, desk
):
    agent = desk["agent"]
    ticket = factory.ticket(desk["customer"])
    for key, message in (("warn", "SLA deadline approaching."), ("breach", "SLA breached.")):
        notifications.notify(
            agent, "escalation", ticket=ticket, dedupe_key=key, title=message, body=message
        )
    db_session.commit()  # one transaction: one change
    drain(db_session)

    [note] = notes_of(db_session, agent)
    assert note.body == "SLA deadline approaching.\n\nSLA breached."
    [message] = mail_to(smtp, agent)
    assert "SLA deadline approaching.\n\nSLA breached." in text(message), "the unsent email too"


# -- the customer's window ---------------------------------------------------------------------


def test_a_customer_ticket_answered_and_solved_within_the_window_is_one_email(
    factory, db_session, smtp, desk
):
    customer, agent = desk["customer"], desk["agent"]
    ticket = factory.ticket(customer, by=customer, subject="Cannot log in")
    drain(db_session)

    conversation.do_add_message(agent, ticket.id, "Please try resetting your password.")
    drain(db_session)
    tickets.do_transition(agent, ticket.id, "wait_on_customer")
    drain(db_session)
    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)

    assert len(notes_of(db_session, customer)) == 3, "one in-app notification per change"
    assert mail_to(smtp, customer) == [], "nothing before the window ends"
    [waiting] = emails_to(db_session, customer)
    assert waiting.send_after is not None

    windows_end(db_session)

    [message] = mail_to(smtp, customer)
    body = text(message)
    assert message["Subject"] == f"Updates on [#{ticket.id}] Cannot log in"
    assert "There are 3 updates on your ticket" in body
    for label in ("is now Open", "is now Waiting on customer", "is now Solved"):
        assert label in body, body
    assert "pending" not in body.lower() and "wait_on_customer" not in body, "internal names"
    assert body.count("Please try resetting your password.") == 1, body
    assert f"{BASE_URL}/portal/tickets/{ticket.id}" in body
    assert f"{BASE_URL}/feedback/" in body, "the feedback request came with the solving"
    windows_end(db_session, WINDOW_S * 2)
    assert len(mail_to(smtp, customer)) == 1, "requested once"


def test_a_status_email_always_has_a_body_and_a_link(factory, db_session, smtp, desk):
    customer, agent = desk["customer"], desk["agent"]
    ticket = factory.ticket(customer, by=customer)
    drain(db_session)

    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)
    windows_end(db_session)

    [message] = mail_to(smtp, customer)
    body = text(message)
    assert "Your ticket is now Solved (it was New)." in body
    assert f"{BASE_URL}/portal/tickets/{ticket.id}" in body


def test_a_change_after_the_window_gets_a_new_email(factory, db_session, smtp, desk):
    customer, agent = desk["customer"], desk["agent"]
    ticket = factory.ticket(customer, by=customer)
    drain(db_session)
    conversation.do_add_message(agent, ticket.id, "First answer.")
    drain(db_session)
    windows_end(db_session)
    assert len(mail_to(smtp, customer)) == 1

    conversation.do_add_message(agent, ticket.id, "Second answer.")
    drain(db_session)
    assert len(mail_to(smtp, customer)) == 1, "the new change waits for its own window"
    windows_end(db_session)

    first, second = mail_to(smtp, customer)
    assert "First answer." in text(first) and "Second answer." not in text(first)
    assert "Second answer." in text(second) and "First answer." not in text(second)
    assert len(emails_to(db_session, customer)) == 2


def test_the_beat_requests_only_emails_whose_window_has_ended(factory, db_session, smtp, desk):
    customer, agent = desk["customer"], desk["agent"]
    ticket = factory.ticket(customer, by=customer)
    drain(db_session)
    conversation.do_add_message(agent, ticket.id, "An answer.")
    drain(db_session)

    assert emails.do_request_due_emails(utcnow() + timedelta(seconds=WINDOW_S - 5)) == 0
    assert emails.do_request_due_emails(utcnow() + timedelta(seconds=WINDOW_S + 1)) == 1
    assert emails.do_request_due_emails(utcnow() + timedelta(seconds=WINDOW_S + 1)) == 0


# -- never the actor, never twice --------------------------------------------------------------


def test_the_actor_is_never_notified(factory, db_session, smtp, desk):
    customer, agent = desk["customer"], desk["agent"]
    ticket = factory.ticket(customer, by=customer)
    drain(db_session)

    tickets.do_update_ticket(agent, ticket.id, {"assignee_id": agent.id})
    drain(db_session)
    conversation.do_add_message(agent, ticket.id, "Mine now.")
    drain(db_session)
    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)
    tickets.do_transition(customer, ticket.id, "reopen")
    drain(db_session)
    conversation.do_add_message(customer, ticket.id, "Still broken.")
    drain(db_session)

    # The agent: nothing for assigning themselves, replying or solving; told of the reply.
    assert [n.kind for n in notes_of(db_session, agent)] == ["customer_reply"]
    # The customer: the reply (with the opening it caused), the solving (with the feedback
    # request); nothing for their own reopening and reply.
    assert [n.kind for n in notes_of(db_session, customer)] == [
        "status_changed",
        "feedback_request",
    ]
    assert all("Still broken." not in n.body for n in notes_of(db_session, customer))


def test_a_redelivered_event_notifies_nobody_twice(factory, db_session, smtp, desk):
    agent = desk["agent"]
    ticket = factory.ticket(desk["customer"], team=desk["team"])
    drain(db_session)
    handled = list(
        db_session.scalars(select(OutboxEvent.id).where(OutboxEvent.ticket_id == ticket.id))
    )
    assert events.do_handle_event(handled[0]) is False, "a redelivery is a no-op"

    # Even a lost "processed" mark (every event handled again) tells nobody anything twice.
    db_session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_(handled)).values(processed_at=None)
    )
    db_session.commit()
    drain(db_session)

    [note] = notes_of(db_session, agent)
    assert note.title == f"New ticket [#{ticket.id}] Printer on fire, assigned to you"
    assert len(emails_to(db_session, agent)) == 1
    assert len(mail_to(smtp, agent)) == 1
