"""The password-less feedback page: from the link in a real email to a recorded rating."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from autocrm import security
from autocrm.columns import utcnow
from autocrm.events import dispatch as events
from autocrm.notifications import emails
from autocrm.notifications import services as notifications
from autocrm.notifications.models import EmailMessage
from autocrm.security import issue_feedback_token
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Feedback, Ticket
from tests.factories import ApiClient
from tests.integration.test_email_delivery import email_event, smtp_mailer
from tests.smtp_server import SmtpServer

LINK = re.compile(r"https?://\S+/feedback/\S+")


@pytest.fixture
def smtp(app: Flask, db_session: Any) -> Iterator[SmtpServer]:
    with smtp_mailer(app) as server:
        yield server


@pytest.fixture
def customer(factory):
    return factory.customer()


@pytest.fixture
def solved(factory, customer) -> Ticket:
    ticket = factory.ticket(customer, subject="Printer <b>on</b> fire")
    return tickets.do_transition(factory.admin(), ticket.id, "solve")


def link_path(ticket: Ticket) -> str:
    return f"/feedback/{issue_feedback_token(ticket.id, ticket.requester_id)}"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def assert_safe_page(response) -> None:
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in response.get_data(as_text=True)


def test_the_emailed_link_opens_the_form_and_records_one_rating(
    app, client, factory, db_session, smtp, customer, solved
):
    notifications.request_feedback(solved, dedupe_key="solved-event-1")
    db_session.commit()
    # A customer's email waits out the ticket's window; the beat then requests it.
    window = app.config["AUTOCRM_CUSTOMER_EMAIL_WINDOW"]
    assert emails.do_request_due_emails(utcnow() + timedelta(seconds=window)) == 1
    queued = db_session.scalar(
        select(EmailMessage).where(EmailMessage.to_address == customer.email)
    )
    assert events.do_handle_event(email_event(db_session, queued.id).id)

    [message] = smtp.messages
    body = message.get_content()
    match = LINK.search(body)
    assert match, body
    path = urlsplit(match.group(0)).path

    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Printer &lt;b&gt;on&lt;/b&gt; fire" in html  # the subject, escaped
    for value in range(1, 6):
        assert f'<label for="rating-{value}">' in html
        assert f'id="rating-{value}" name="rating" value="{value}"' in html
    assert '<label for="comment">' in html
    assert_safe_page(page)

    token = csrf_of(html)
    done = client.post(path, data={"csrf_token": token, "rating": "4", "comment": "Quick fix!"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "Thank you" in done.get_data(as_text=True)
    assert_safe_page(done)
    feedback = db_session.scalar(select(Feedback).where(Feedback.ticket_id == solved.id))
    assert (feedback.rating, feedback.comment, feedback.author_id) == (4, "Quick fix!", customer.id)
    trail = ApiClient(client, factory.admin()).get(f"/api/tickets/{solved.id}/events").json
    assert "feedback.created" in [e["kind"] for e in trail]

    again = client.post(path, data={"csrf_token": token, "rating": "2", "comment": "Changed"})
    assert again.status_code == 409
    html = again.get_data(as_text=True)
    assert "rated already" in html
    assert re.search(r'value="2"[^>]*checked', html)
    assert ">Changed</textarea>" in html
    assert db_session.scalar(select(Feedback.rating).where(Feedback.ticket_id == solved.id)) == 4


def test_a_ticket_not_solved_yet_keeps_the_input_and_says_why(client, factory, customer):
    ticket = factory.ticket(customer)
    path = link_path(ticket)
    token = csrf_of(client.get(path).get_data(as_text=True))

    response = client.post(path, data={"csrf_token": token, "rating": "5", "comment": "Early"})

    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "once the ticket is solved" in html
    assert re.search(r'value="5"[^>]*checked', html)
    assert ">Early</textarea>" in html


@pytest.mark.parametrize("rating", [None, "0", "6", "x", "-1", "3.5", "²"])
def test_a_missing_or_bad_rating_re_renders_the_form(client, solved, rating):
    path = link_path(solved)
    data = {"csrf_token": csrf_of(client.get(path).get_data(as_text=True)), "comment": "Hmm"}
    if rating is not None:
        data["rating"] = rating

    response = client.post(path, data=data)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "choose a rating from 1 to 5" in html
    assert ">Hmm</textarea>" in html
    assert "checked" not in html


def test_a_too_long_comment_is_refused_with_the_input_kept(client, solved):
    path = link_path(solved)
    token = csrf_of(client.get(path).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, "rating": "3", "comment": "a" * 5001})
    assert response.status_code == 422
    assert re.search(r'value="3"[^>]*checked', response.get_data(as_text=True))


def test_forged_foreign_and_malformed_links_are_404(app, client, factory, solved):
    other = factory.customer()
    forged = URLSafeTimedSerializer("not-our-key", salt="autocrm.feedback-link").dumps(
        {"t": solved.id, "u": solved.requester_id}
    )
    paths = [
        f"/feedback/{forged}",
        "/feedback/garbage",
        f"/feedback/{issue_feedback_token(solved.id, other.id)}",  # not the requester
        f"/feedback/{issue_feedback_token(999_999, solved.requester_id)}",  # no such ticket
    ]
    for path in paths:
        for response in (client.get(path), client.post(path, data={"rating": "5"})):
            assert response.status_code == 404, path
            assert "invalid or has expired" in response.get_data(as_text=True)
            assert_safe_page(response)


def test_an_expired_link_is_404(client, solved, monkeypatch):
    path = link_path(solved)
    monkeypatch.setattr(security, "FEEDBACK_LINK_MAX_AGE", -1)
    assert client.get(path).status_code == 404


def test_the_stylesheet_is_served_from_our_static_files(client):
    response = client.get("/static/feedback.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    response.close()


def test_a_deactivated_requester_link_is_404(client, factory, db_session, customer, solved):
    path = link_path(solved)
    customer.active = False
    db_session.commit()
    assert client.get(path).status_code == 404


def test_a_post_without_a_valid_csrf_token_is_refused(client, factory, db_session, solved):
    path = link_path(solved)
    other_ticket = factory.ticket(factory.customer())
    foreign = csrf_of(client.get(link_path(other_ticket)).get_data(as_text=True))

    for data in (
        {"rating": "5"},
        {"rating": "5", "csrf_token": "x"},
        {"rating": "5", "csrf_token": foreign},
    ):
        response = client.post(path, data=data)
        assert response.status_code == 400
        assert_safe_page(response)
    assert db_session.scalar(select(Feedback).where(Feedback.ticket_id == solved.id)) is None
