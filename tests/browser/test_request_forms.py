"""Request forms in a real browser: an admin adds a dropdown field and a "Bug report" form in
the console; a customer picks the form in the portal, fills its required field and sends the
ticket; it lands in the form's team, where the agent sees the form and the value.

The browser database is shared by all browser tests and never rolled back: names carry a
unique token, and the form is retired and the field deactivated at the end (an active form
would put the picking step in front of every other test's new-ticket page).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.fields.models import RequestForm, TicketField
from autocrm.people import teams
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, save_screenshot
from tests.browser.test_accessibility import FAILING_IMPACTS, axe_violations, describe

NARROW, WIDE = 375, 1280


@pytest.fixture
def token(live_server: LiveServer) -> Iterator[str]:
    """A token for this test's names; its form and field are put away afterwards."""
    token = uuid.uuid4().hex[:8]
    yield token
    with live_server.data() as session:
        for form in session.scalars(select(RequestForm).where(RequestForm.key == f"bug_{token}")):
            form.active = False
        for field in session.scalars(
            select(TicketField).where(TicketField.key == f"severity_{token}")
        ):
            field.active = False
        session.commit()


def shots(page: Page, name: str) -> None:
    """The page at a phone's and a desktop's width (same session, same URL): screenshots, no
    sideways scrolling, no serious accessibility violation."""
    for width in (NARROW, WIDE):
        page.set_viewport_size({"width": width, "height": 900})
        path = save_screenshot(page, f"request-forms-{name}-{width}")
        assert path.exists()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width}px is {overflow}px too wide"
        serious = [v for v in axe_violations(page) if v["impact"] in FAILING_IMPACTS]
        assert not serious, f"{name} at {width}px:\n{describe(serious)}"


def test_an_admin_makes_a_bug_report_form_and_a_customer_files_a_bug_with_it(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, token: str
):
    key = f"severity_{token}"
    with live_server.data() as session:
        bugs = teams.create_team(f"Bugs {token}")
        agent = session.scalar(select(User).where(User.email == demo.agent.email))
        teams.add_member(bugs, agent)
        session.commit()
        bugs_id = bugs.id

    admin = new_context.logged_in(demo.admin.email, demo.admin.password)
    admin.goto("/admin/fields")
    admin.get_by_label("Label").fill(f"Severity {token}")
    admin.get_by_label("Key").fill(key)
    admin.get_by_label("Type").select_option("dropdown")
    admin.get_by_label("Options (dropdown and multi-select)").fill(
        "low | Low: a nuisance\ncrash | It crashes"
    )
    admin.get_by_label("Who sees it").select_option("customer_editable")
    admin.get_by_role("button", name="Add field").click()
    expect(admin.locator("#fields-table")).to_contain_text(key)

    admin.goto("/admin/forms")
    admin.get_by_label("Name", exact=True).fill(f"Bug report {token}")
    admin.get_by_label("Key", exact=True).fill(f"bug_{token}")
    admin.get_by_label("Description").fill("Something in the app does not work as it should")
    admin.get_by_label("Team its tickets go to").select_option(label=f"Bugs {token}")
    admin.get_by_label(f"Asked: Severity {token}").select_option("required")
    admin.get_by_label(f"Order: Severity {token}").fill("1")
    admin.get_by_role("button", name="Add form").click()
    expect(admin.locator("#forms-table")).to_contain_text(f"Bug report {token}")
    expect(admin.locator("#forms-table")).to_contain_text(f"Severity {token} (required)")
    shots(admin, "admin")

    customer = new_context.logged_in(demo.customer.email, demo.customer.password, NARROW, 900)
    customer.goto("/portal/tickets/new")
    shots(customer, "portal-pick")
    customer.get_by_role("link", name=re.compile(f"Bug report {token}")).click()
    expect(customer.locator("#chosen-form")).to_contain_text(f"Bug report {token}")
    customer.get_by_label("Subject").fill(f"The app crashes on save {token}")
    customer.get_by_label("Description").fill("Every time I press Save, it closes.")
    shots(customer, "portal-new-ticket")
    customer.get_by_role("button", name="Send ticket").click()
    expect(customer.get_by_text("Required on the Bug report")).to_be_visible()
    expect(customer.get_by_label("Description")).to_have_value(
        "Every time I press Save, it closes."
    )
    shots(customer, "portal-new-ticket-refused")
    customer.get_by_label(re.compile(f"Severity {token}")).select_option("crash")
    customer.get_by_role("button", name="Send ticket").click()
    expect(customer).to_have_url(re.compile(r"/portal/tickets/\d+$"))
    ticket_id = int(customer.url.rsplit("/", 1)[1])

    with live_server.data() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.team_id == bugs_id
        assert ticket.custom_fields == {key: "crash"}

    staff = new_context.logged_in(demo.agent.email, demo.agent.password)
    staff.goto(f"/agent/tickets/new?form=bug_{token}")
    expect(staff.locator("#nt-form-fields")).to_contain_text(f"Severity {token}")
    shots(staff, "agent-new-ticket")
    staff.goto(f"/agent/tickets/{ticket_id}")
    expect(staff.locator("#ws-team-text")).to_have_text(f"Bugs {token}")
    expect(staff.locator("#ws-form-text")).to_have_text(f"Bug report {token}")
    value = staff.locator(f'select[name="cf.{key}"]')
    expect(value).to_have_value("crash")
    expect(value.locator("option:checked")).to_have_text("It crashes")
