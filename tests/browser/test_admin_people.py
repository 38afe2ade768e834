"""The admin console's people pages in a real browser: an admin creates a team and an agent in
it, the agent sees the team's queue, a deactivated agent cannot log in, and the audit log lists
those changes. Also the pages at phone and desktop widths (screenshots in
test-artifacts/screenshots/admin-*).

The browser database is shared by all browser tests and never rolled back: names carry a unique
token.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from tests import processes
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.conftest import wait_until

WORKER_S = 15.0
AGENT_PASSWORD = "agent in a new team"


def _token() -> str:
    return uuid.uuid4().hex[:8]


def create_team(page: Page, name: str) -> None:
    page.goto("/admin/teams")
    page.get_by_role("button", name="New team").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Description").fill("Made in the browser test")
    page.get_by_label("Assignment of new tickets").select_option("manual")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def create_agent(page: Page, name: str, email: str, team: str) -> None:
    page.goto("/admin/users")
    page.get_by_role("button", name="New user").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Role").select_option("agent")
    page.get_by_label("Team").select_option(label=team)
    page.get_by_label("Generate one").uncheck()
    page.get_by_label("Or set it yourself").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_role("link", name=team)).to_be_visible()


def ticket_in_team(live_server: LiveServer, demo: DemoUsers, team: str, subject: str) -> int:
    """A ticket of the demo customer in ``team``, handled by the worker before we look."""
    with live_server.data():
        started = utcnow()
        admin = db.session.scalar(select(User).where(User.email == demo.admin.email))
        customer = db.session.scalar(select(User).where(User.email == demo.customer.email))
        team_id = db.session.scalar(select(Team.id).where(Team.name == team))
        ticket = tickets.do_create_ticket(
            admin,
            subject=subject,
            description="Filed for the new team.",
            requester_id=customer.id,
            team_id=team_id,
        )
        ticket_id = ticket.id
        assert wait_until(lambda: processes.idle(started), timeout=WORKER_S)
    return ticket_id


def test_admin_creates_a_team_and_an_agent_who_works_its_queue_until_deactivated(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = _token()
    team, agent_name = f"Team {token}", f"Agent {token}"
    agent_email = f"agent-{token}@example.com"
    admin = new_context.logged_in(demo.admin.email, demo.admin.password)

    create_team(admin, team)
    create_agent(admin, agent_name, agent_email, team)
    subject = f"Queue check {token}"
    ticket_id = ticket_in_team(live_server, demo, team, subject)

    agent = new_context.logged_in(agent_email, AGENT_PASSWORD)
    expect(agent).to_have_url(re.compile(r"/agent/"))
    agent.get_by_role("link", name=re.compile("^All tickets")).click()
    row = agent.locator(f'#queue-rows tr[data-ticket-id="{ticket_id}"]')
    expect(row).to_contain_text(subject)
    agent.locator("#filters-more > summary").click()
    agent.get_by_label("Team", exact=True).select_option(label=team)  # applied at once
    expect(agent).to_have_url(re.compile(r"team_id="))
    expect(agent.locator(f'#queue-rows tr[data-ticket-id="{ticket_id}"]')).to_contain_text(subject)

    # The admin deactivates the agent: their open page stops working, and so does logging in.
    admin.goto("/admin/users?q=" + token)
    admin.get_by_role("link", name=agent_name).click()
    admin.get_by_role("button", name=f"Deactivate {agent_name}").click()
    expect(admin.locator(".flash-success")).to_contain_text("is deactivated")
    expect(admin.locator(".admin-heading")).to_contain_text("Deactivated")

    agent.reload()
    expect(agent).to_have_url(re.compile(r"/login"))
    agent.get_by_label("Email", exact=True).fill(agent_email)
    agent.get_by_label("Password", exact=True).fill(AGENT_PASSWORD)
    agent.get_by_role("button", name="Log in").click()
    expect(agent.get_by_text("This account is deactivated.")).to_be_visible()
    expect(agent).to_have_url(re.compile(r"/login"))

    # The audit log lists the three changes, newest first, linking to what changed, and the
    # refused login after them.
    admin.goto("/admin/audit/")
    rows = admin.locator("#audit-table tbody tr")
    about_agent = rows.filter(has_text=agent_name)
    expect(about_agent.first).to_contain_text("Login refused")
    expect(about_agent.first).to_contain_text("account deactivated")
    expect(about_agent.nth(1)).to_contain_text("Deactivated user")
    created_user = rows.filter(has_text="Created user").filter(has_text=agent_name)
    expect(created_user).to_have_count(1)
    expect(created_user).to_contain_text(demo.admin.name)
    created_team = rows.filter(has_text="Created team").filter(has_text=team)
    expect(created_team).to_have_count(1)
    added = rows.filter(has_text="Added team member").filter(has_text=team)
    expect(added).to_contain_text(agent_name)
    created_team.get_by_role("link", name=team).click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(team)
    screenshot(admin, "admin-team-detail-flow")


def test_a_wrong_calendar_is_shown_at_the_field_and_fixed(
    new_context: ContextFactory, demo: DemoUsers
) -> None:
    token = _token()
    page = new_context.logged_in(demo.admin.email, demo.admin.password)
    create_team(page, f"Hours {token}")
    page.get_by_label("The team's own, below").check()
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Tuesday").fill("17:00-09:00")
    page.get_by_role("button", name="Save business hours").click()
    tuesday = page.get_by_label("Tuesday")
    expect(tuesday).to_have_attribute("aria-invalid", "true")
    expect(tuesday).to_have_value("17:00-09:00")
    expect(page.locator("#cal-tue-error")).to_contain_text("must be before end")
    tuesday.fill("09:00-17:00")
    page.get_by_role("button", name="Save business hours").click()
    expect(page.locator(".flash-success")).to_contain_text("Business hours saved")
    expect(page.get_by_label("Tuesday")).to_have_value("09:00-17:00")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")


def test_a_generated_password_is_shown_once_and_lets_the_user_in(
    new_context: ContextFactory, demo: DemoUsers, screenshot: Screenshot
) -> None:
    token = _token()
    email = f"customer-{token}@example.com"
    page = new_context.logged_in(demo.admin.email, demo.admin.password, 375)
    page.goto("/admin/users/new")
    page.get_by_label("Name").fill(f"Customer {token}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Role").select_option("customer")
    expect(page.get_by_label("Generate one")).to_be_checked()
    page.get_by_role("button", name="Create user").click()
    password = page.locator("#generated-password").inner_text()
    screenshot(page, "admin-user-created-375")
    page.goto(f"/admin/users?q={token}")
    page.get_by_role("link", name=f"Customer {token}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Customer {token}")
    expect(page.locator("#generated-password")).to_have_count(0)  # shown that once only

    customer = new_context.logged_in(email, password, 375)
    expect(customer).to_have_url(re.compile(r"/portal/"))


@pytest.mark.parametrize("width", [375, 1280])
def test_admin_pages_fit_phone_and_desktop(
    width: int, new_context: ContextFactory, demo: DemoUsers, screenshot: Screenshot
) -> None:
    page = new_context.logged_in(demo.admin.email, demo.admin.password, width)
    overflowing: list[str] = []
    with_ids = {}
    page.goto("/admin/teams")
    with_ids["team"] = page.get_by_role("link", name="Support", exact=True).get_attribute("href")
    page.goto("/admin/users?q=agent@example.com")
    with_ids["user"] = page.get_by_role("link", name=demo.agent.name).get_attribute("href")

    for name, path in [
        ("admin-users", "/admin/users"),
        ("admin-user-new", "/admin/users/new"),
        ("admin-user-detail", with_ids["user"]),
        ("admin-teams", "/admin/teams"),
        ("admin-team-detail", with_ids["team"]),
        ("admin-audit", "/admin/audit/"),
    ]:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        fits = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        if not fits:
            overflowing.append(name)
        screenshot(page, f"{name}-{width}")
    assert overflowing == [], f"wider than the {width}px window: {overflowing}"
