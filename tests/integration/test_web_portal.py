"""The customer portal pages: the dashboard, opening a ticket, a ticket's conversation and
feedback, profile settings and the password change (and its service function)."""

from __future__ import annotations

import re

import pytest

from autocrm.errors import InvalidInput
from autocrm.notifications import preferences as notification_settings
from autocrm.people import users
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests.factories import PASSWORD, csrf_token, refusal, web_login

NEW_PASSWORD = "a brand new passphrase"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def log_in(client, user, password: str = PASSWORD) -> str:
    """Log in through the login form; returns a CSRF token for later posts."""
    web_login(client, user, password)
    return csrf_token(client, "/portal/profile")


@pytest.fixture
def customer(factory):
    return factory.customer(name="Casey")


@pytest.fixture
def csrf(client, customer, fresh_login_limit) -> str:
    return log_in(client, customer)


@pytest.fixture
def ticket(factory, customer) -> Ticket:
    return factory.ticket(customer, subject="Printer on fire")


def solved_ticket(factory, customer) -> Ticket:
    item = factory.ticket(customer, subject="Fixed thing")
    return tickets.do_transition(factory.admin(), item.id, "solve")


def html_of(response) -> str:
    return response.get_data(as_text=True)


# -- dashboard ---------------------------------------------------------------------------------


def test_dashboard_lists_only_own_tickets_by_section(client, factory, customer, csrf):
    mine = factory.ticket(customer, subject="My open question")
    done = solved_ticket(factory, customer)
    factory.ticket(factory.customer(), subject="Somebody else's secret")

    page = client.get("/portal/")
    assert page.status_code == 200
    html = html_of(page)
    assert "My open question" in html and "Fixed thing" in html
    assert "Somebody else" not in html
    open_part, closed_part = html.split('id="closed-heading"')
    assert f'data-ticket-id="{mine.id}"' in open_part
    assert f'data-ticket-id="{done.id}"' in closed_part
    assert "status status-new" in open_part and "status status-solved" in closed_part


def test_dashboard_without_tickets_offers_a_new_ticket(client, csrf):
    html = html_of(client.get("/portal/"))
    assert "No tickets yet" in html
    assert 'href="/portal/tickets/new"' in html


def test_pages_need_a_login(client, db_session):
    response = client.get("/portal/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# -- opening a ticket --------------------------------------------------------------------------


def test_creating_a_ticket_redirects_to_its_page(client, customer, csrf, db_session):
    response = client.post(
        "/portal/tickets/new",
        data={
            "csrf_token": csrf,
            "subject": "Cannot log in",
            "description": "It says **no**.",
            "priority": "high",
        },
    )
    assert response.status_code == 302
    ticket_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    created = tickets.access_ticket_by_id(customer, ticket_id)
    assert created.subject == "Cannot log in" and created.priority.label == "high"
    assert created.channel == "web"
    page = html_of(client.get(response.headers["Location"]))
    assert "Cannot log in" in page and "<strong>no</strong>" in page


@pytest.mark.parametrize(
    ("subject", "message"),
    [("   ", "Please give your ticket a subject."), ("x" * 201, "200 characters or fewer")],
)
def test_a_bad_subject_keeps_the_input_with_an_error(client, csrf, subject, message):
    response = client.post(
        "/portal/tickets/new",
        data={
            "csrf_token": csrf,
            "subject": subject,
            "description": "Typed & kept <text>",
            "priority": "low",
        },
    )
    assert response.status_code == 422
    html = html_of(response)
    assert message in html
    assert 'id="subject-error"' in html and 'aria-invalid="true"' in html
    assert "Typed &amp; kept &lt;text&gt;</textarea>" in html
    assert '<option value="low" selected>' in html


def test_a_post_without_csrf_token_is_refused(client, csrf, customer):
    response = client.post(
        "/portal/tickets/new", data={"subject": "Hi", "description": "x", "priority": "low"}
    )
    assert response.status_code == 400
    assert "Hi" not in html_of(client.get("/portal/"))


# -- a ticket's page ---------------------------------------------------------------------------


def test_the_ticket_page_never_shows_internal_notes(client, factory, customer, csrf, ticket):
    agent = factory.admin()
    conversation.do_add_message(agent, ticket.id, "Public answer for you")
    conversation.do_add_message(agent, ticket.id, "INTERNAL: customer is grumpy", internal=True)

    html = html_of(client.get(f"/portal/tickets/{ticket.id}"))
    assert "Public answer for you" in html
    assert "grumpy" not in html
    data = client.get(f"/portal/tickets/{ticket.id}/messages.json").get_json()
    assert [m["body"] for m in data["items"]] == ["Public answer for you"]


def test_messages_json_gives_sanitized_html_after_an_id(client, factory, customer, csrf, ticket):
    first = conversation.do_add_message(customer, ticket.id, "first")
    conversation.do_add_message(customer, ticket.id, "<img src=x onerror=alert(1)>")

    response = client.get(f"/portal/tickets/{ticket.id}/messages.json?after={first.id}")
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert item["author_id"] == customer.id and item["author_name"] == "Casey"
    assert (item["author_role"], item["internal"], item["attachments"]) == ("customer", False, [])
    assert "<img" not in item["body_html"] and "onerror" not in item["body_html"].split("&lt;")[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in item["body_html"]
    for after in ("x", "²"):
        response = client.get(f"/portal/tickets/{ticket.id}/messages.json?after={after}")
        assert response.status_code == 400


def test_the_reply_form_posts_a_message_and_keeps_a_blank_one(client, customer, csrf, ticket):
    response = client.post(
        f"/portal/tickets/{ticket.id}/messages", data={"csrf_token": csrf, "body": "Any news?"}
    )
    assert response.status_code == 302
    messages, _ = conversation.list_messages(customer, ticket.id)
    assert [m.body for m in messages] == ["Any news?"]

    blank = client.post(
        f"/portal/tickets/{ticket.id}/messages", data={"csrf_token": csrf, "body": "  "}
    )
    assert blank.status_code == 422
    assert "Please write a message first." in html_of(blank)


@pytest.mark.parametrize("body", [" \n\t", "x" * (conversation.MAX_MESSAGE_LENGTH + 1)])
def test_a_bad_reply_gets_the_message_rule(client, customer, csrf, ticket, body):
    rule = refusal(conversation.check_message, body)
    page = client.post(
        f"/portal/tickets/{ticket.id}/messages", data={"csrf_token": csrf, "body": body}
    )
    assert page.status_code == 422
    assert rule.message in html_of(page)
    script = client.post(
        f"/portal/tickets/{ticket.id}/messages", json={"body": body}, headers={"X-CSRFToken": csrf}
    )
    assert script.status_code == 422
    assert script.get_json() == {"ok": False, "error": rule.message, "errors": rule.errors}
    assert set(rule.errors) == {"body"}
    assert conversation.list_messages(customer, ticket.id)[0] == []


def test_a_reply_to_a_closed_ticket_keeps_the_text(client, factory, customer, csrf):
    done = solved_ticket(factory, customer)
    tickets.do_transition(factory.admin(), done.id, "close")
    response = client.post(
        f"/portal/tickets/{done.id}/messages",
        data={"csrf_token": csrf, "body": "One more thing"},
    )
    assert response.status_code == 422
    html = html_of(response)
    assert "reopen it to reply" in html
    assert "One more thing</textarea>" in html  # not sent, but kept to copy
    json_reply = client.post(
        f"/portal/tickets/{done.id}/messages",
        json={"body": "One more thing"},
        headers={"X-CSRFToken": csrf},
    )
    assert json_reply.status_code == 422
    assert "reopen it" in json_reply.get_json()["error"]


def test_the_json_reply_fallback_answers_like_the_socket(client, csrf, ticket):
    response = client.post(
        f"/portal/tickets/{ticket.id}/messages",
        json={"body": "via http"},
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["ok"] is True and body["message"]["body_html"] == "<p>via http</p>\n"


def test_status_timeline_and_the_solve_and_reopen_buttons(client, customer, csrf, ticket):
    html = html_of(client.get(f"/portal/tickets/{ticket.id}"))
    assert "Ticket opened" in html and ">Mark as solved</button>" in html
    assert ">Reopen</button>" not in html
    assert 'id="feedback" hidden' in html  # shown by the page script once the ticket is solved

    response = client.post(
        f"/portal/tickets/{ticket.id}/transition",
        data={"csrf_token": csrf, "name": "solve", "version": ticket.version},
    )
    assert response.status_code == 302
    html = html_of(client.get(f"/portal/tickets/{ticket.id}"))
    assert "Status set to Solved" in html and "by you" in html
    assert ">Reopen</button>" in html and "How did we do?" in html
    assert 'id="feedback" hidden' not in html

    stale = client.post(
        f"/portal/tickets/{ticket.id}/transition",
        data={"csrf_token": csrf, "name": "reopen", "version": 1},
    )
    assert stale.status_code == 302
    assert "changed in the meantime" in html_of(client.get(f"/portal/tickets/{ticket.id}"))


def test_feedback_on_a_solved_ticket_is_recorded_once(client, factory, customer, csrf):
    done = solved_ticket(factory, customer)
    url = f"/portal/tickets/{done.id}/feedback"

    missing = client.post(url, data={"csrf_token": csrf, "comment": "kept comment"})
    assert missing.status_code == 422
    assert "Please choose a rating" in html_of(missing)
    assert "kept comment</textarea>" in html_of(missing)

    response = client.post(url, data={"csrf_token": csrf, "rating": "4", "comment": "Quick!"})
    assert response.status_code == 302
    html = html_of(client.get(f"/portal/tickets/{done.id}"))
    assert "You rated this ticket <strong>4 out of 5</strong>" in html
    assert "How did we do?" not in html

    again = client.post(url, data={"csrf_token": csrf, "rating": "1"})
    assert again.status_code == 409
    assert "rated already" in html_of(again)


def test_feedback_is_not_offered_before_the_ticket_is_solved(client, csrf, ticket):
    assert 'id="feedback" hidden' in html_of(client.get(f"/portal/tickets/{ticket.id}"))
    response = client.post(
        f"/portal/tickets/{ticket.id}/feedback", data={"csrf_token": csrf, "rating": "5"}
    )
    assert response.status_code == 409
    assert "once the ticket is solved" in html_of(response)


def test_another_customers_ticket_is_the_404_page(client, factory, csrf):
    other = factory.ticket(factory.customer(), subject="Not yours")
    for url in (
        f"/portal/tickets/{other.id}",
        f"/portal/tickets/{other.id}/messages.json",
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "Not yours" not in html_of(response)
    posted = client.post(
        f"/portal/tickets/{other.id}/feedback", data={"csrf_token": csrf, "rating": "5"}
    )
    assert posted.status_code == 404


# -- profile -----------------------------------------------------------------------------------


def test_notification_settings_save(client, customer, csrf):
    html = html_of(client.get("/portal/profile"))
    assert customer.email in html and 'id="email-public_reply"' in html

    response = client.post(
        "/portal/profile/notifications",
        data={"csrf_token": csrf, "email": ["status_changed"]},
    )
    assert response.status_code == 302
    prefs = notification_settings.email_preferences(customer)
    assert prefs["public_reply"] is False and prefs["feedback_request"] is False
    assert prefs["status_changed"] is True
    assert prefs["sla_breach"] is True  # a kind the form does not show keeps its setting
    html = html_of(client.get("/portal/profile"))
    assert 'value="status_changed" checked' in html
    assert 'value="public_reply" checked' not in html


def change_password(
    client, csrf: str, current: str = PASSWORD, new: str = NEW_PASSWORD, confirm: str = NEW_PASSWORD
):
    """Posts the profile page's password form."""
    form = {
        "csrf_token": csrf,
        "current_password": current,
        "new_password": new,
        "confirm_password": confirm,
    }
    return client.post("/portal/profile/password", data=form)


def test_a_wrong_current_password_is_an_error_next_to_it(client, customer, csrf):
    response = change_password(client, csrf, current="not it at all")
    assert response.status_code == 422
    html = html_of(response)
    assert 'id="current_password-error"' in html and "not your current password" in html
    still = client.post("/api/auth/token", json={"email": customer.email, "password": PASSWORD})
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("new", "confirm", "field"),
    [("short", "short", "new_password"), (NEW_PASSWORD, "something else", "confirm_password")],
)
def test_a_bad_new_password_is_an_error_next_to_it(client, csrf, new, confirm, field):
    response = change_password(client, csrf, new=new, confirm=confirm)
    assert response.status_code == 422
    assert f'id="{field}-error"' in html_of(response)


def test_a_password_change_keeps_the_user_logged_in(client, customer, csrf):
    response = change_password(client, csrf)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/portal/profile")
    page = client.get("/portal/")
    assert page.status_code == 200 and "My tickets" in html_of(page)

    old = client.post("/api/auth/token", json={"email": customer.email, "password": PASSWORD})
    assert old.status_code == 401
    new = client.post("/api/auth/token", json={"email": customer.email, "password": NEW_PASSWORD})
    assert new.status_code == 200


def test_staff_are_sent_away_from_the_portal(client, factory, fresh_login_limit):
    log_in_staff = factory.admin()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post(
        "/login", data={"csrf_token": token, "email": log_in_staff.email, "password": PASSWORD}
    )
    response = client.get("/portal/")
    assert response.status_code == 302 and "/portal" not in response.headers["Location"]


# -- users.do_change_own_password --------------------------------------------------------------


def test_change_own_password_rehashes_and_ends_old_tokens(app, factory, db_session):
    user = factory.customer()
    _, old_token = users.authenticate(user.email, PASSWORD)
    users.do_change_own_password(user, PASSWORD, NEW_PASSWORD)
    assert users.authenticate(user.email, NEW_PASSWORD)[0].id == user.id
    with pytest.raises(Exception, match="Invalid or expired token"):
        users.user_for_token(old_token)


def test_change_own_password_needs_the_current_one(app, factory, db_session):
    user = factory.customer()
    with pytest.raises(InvalidInput) as caught:
        users.do_change_own_password(user, "wrong guess", NEW_PASSWORD)
    assert "current_password" in caught.value.errors
    assert users.authenticate(user.email, PASSWORD)[0].id == user.id


def test_change_own_password_checks_the_new_one(app, factory, db_session):
    user = factory.customer()
    with pytest.raises(InvalidInput) as caught:
        users.do_change_own_password(user, PASSWORD, "short")
    assert "password" in caught.value.errors
