"""Web sessions end on the server: logging out, logging out everywhere, ending one browser
from the session list, and an admin ending a user's sessions all stop every copy of the
cookie from opening a page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from autocrm.audit.models import AdminAuditEntry
from autocrm.people.models import UserSession
from tests.factories import ApiClient, assert_error, csrf_token, web_login


@pytest.fixture
def browser(app, client, fresh_login_limit) -> Callable[..., FlaskClient]:
    """``browser(user_agent)``: another browser (its own cookie jar); ``client`` is the first."""

    def open_browser(user_agent: str = "Test browser") -> FlaskClient:
        opened = app.test_client()
        opened.environ_base["HTTP_USER_AGENT"] = user_agent
        return opened

    return open_browser


def copy_of_cookie(source: FlaskClient, target: FlaskClient) -> FlaskClient:
    target.set_cookie("session", source.get_cookie("session").value)
    return target


def opens_portal(client: FlaskClient) -> bool:
    response = client.get("/portal/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def post(client: FlaskClient, url: str, page: str = "/notifications"):
    return client.post(url, data={"csrf_token": csrf_token(client, page)})


def test_a_cookie_copied_before_logout_no_longer_opens_the_portal(browser, factory):
    customer = factory.customer()
    first = browser()
    web_login(first, customer)
    thief = copy_of_cookie(first, browser("Thief"))
    assert opens_portal(thief)

    assert post(first, "/logout").status_code == 302

    assert not opens_portal(thief)
    assert not opens_portal(first)


def test_log_out_everywhere_ends_every_browser(browser, factory):
    customer = factory.customer()
    laptop, phone = browser("Laptop"), browser("Phone")
    web_login(laptop, customer)
    web_login(phone, customer)

    response = post(phone, "/sessions/end-all", "/portal/profile")

    assert response.status_code == 302 and response.location.endswith("/login")
    assert not opens_portal(laptop)
    assert not opens_portal(phone)
    web_login(phone, customer)  # logging in again works
    assert opens_portal(phone)


def test_the_profile_lists_sessions_and_logs_out_one_browser(browser, factory, db_session):
    customer = factory.customer()
    laptop, phone = browser("Laptop Firefox"), browser("Phone Safari")
    web_login(laptop, customer)
    web_login(phone, customer)

    profile = phone.get("/portal/profile").get_data(as_text=True)
    assert "Laptop Firefox" in profile
    assert "Phone Safari</td>" not in profile and "Phone Safari <strong>(this browser)" in profile
    laptop_session = db_session.query(UserSession).filter_by(user_agent="Laptop Firefox").one()

    response = post(phone, f"/sessions/{laptop_session.id}/end", "/portal/profile")

    assert response.status_code == 302 and response.location.endswith("/portal/profile")
    assert not opens_portal(laptop)
    assert opens_portal(phone)
    assert "Laptop Firefox" not in phone.get("/portal/profile").get_data(as_text=True)


def test_one_cannot_end_another_users_session(browser, factory, db_session):
    victim, other = factory.customer(), factory.customer()
    victim_browser, other_browser = browser(), browser()
    web_login(victim_browser, victim)
    web_login(other_browser, other)
    victims = db_session.query(UserSession).filter_by(user_id=victim.id).one()

    response = post(other_browser, f"/sessions/{victims.id}/end", "/portal/profile")

    assert response.status_code == 404
    assert opens_portal(victim_browser)


def test_staff_see_their_sessions_page(browser, factory):
    agent = factory.agent()
    desk = browser("Desk browser")
    web_login(desk, agent)
    page = desk.get("/sessions")
    assert page.status_code == 200
    assert "Desk browser <strong>(this browser)" in page.get_data(as_text=True)


def test_an_admin_ends_a_users_sessions(browser, factory, db_session):
    admin, customer = factory.admin(), factory.customer(name="Casey")
    admin_browser, customer_browser = browser(), browser()
    web_login(admin_browser, admin)
    web_login(customer_browser, customer)
    page = f"/admin/users/{customer.id}"
    assert "logged in on 1 browser" in admin_browser.get(page).get_data(as_text=True)

    response = post(admin_browser, f"{page}/sessions/end", page)

    assert response.status_code == 302
    assert not opens_portal(customer_browser)
    entry = (
        db_session.query(AdminAuditEntry)
        .filter_by(target_id=customer.id, action="user.sessions_ended")
        .one()
    )
    assert entry.actor_id == admin.id


def test_only_admins_end_someone_elses_sessions(browser, factory):
    agent, customer = factory.agent(), factory.customer()
    agent_browser, customer_browser = browser(), browser()
    web_login(agent_browser, agent)
    web_login(customer_browser, customer)

    response = post(agent_browser, f"/admin/users/{customer.id}/sessions/end")

    assert response.status_code == 404
    assert opens_portal(customer_browser)


def test_the_api_ends_a_users_sessions_for_an_admin_only(client, browser, factory):
    admin, agent, customer = factory.admin(), factory.agent(), factory.customer()
    customer_browser = browser()
    web_login(customer_browser, customer)
    url = f"/api/users/{customer.id}/sessions"

    assert_error(ApiClient(client, agent).delete(url), 403)
    assert opens_portal(customer_browser)
    response = ApiClient(client, admin).delete(url)

    assert response.status_code == 200 and response.json == {"ended": 1}
    assert not opens_portal(customer_browser)
    assert_error(ApiClient(client, admin).delete("/api/users/2147483647/sessions"), 404)


def test_a_read_answered_after_a_form_post_does_not_erase_its_message(browser, factory):
    """A page's background fetch (the unread count every page asks for) sent with the cookie
    of before a form's POST, and answered after it, must not send that old session back: the
    browser would keep it, and the message the POST flashed would never show."""
    admin, agent = factory.admin(), factory.agent()
    page = browser()
    web_login(page, admin)
    token = csrf_token(page, f"/admin/users/{agent.id}")  # the page the admin is on
    fetch = copy_of_cookie(page, browser())  # the fetch, in flight with the old cookie

    posted = page.post(
        f"/admin/users/{agent.id}/status", data={"action": "deactivate", "csrf_token": token}
    )
    assert posted.status_code == 302
    assert "session=" in posted.headers.get("Set-Cookie", "")  # the flashed message
    late = fetch.get("/notifications/unread", headers={"Accept": "application/json"})
    assert late.status_code == 200
    assert "Set-Cookie" not in late.headers

    shown = page.get(posted.headers["Location"])
    assert "is deactivated" in shown.get_data(as_text=True)
