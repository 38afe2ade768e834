"""Organizations in a real browser, on the demo data: Example Corp's manager
(customer@example.com) sees a colleague's ticket in the portal and opens it; the plain member
(customer2@example.com) sees only their own and gets the 404 page for the manager's."""

from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import expect

from autocrm.demo.logins import DEMO_LOGINS
from tests.browser.conftest import ContextFactory, DemoUsers

COLLEAGUE_TICKET = "Invoice shows the wrong VAT number"  # customer2's, in the demo
MANAGER_TICKET = "Cannot log in to my account"  # customer's


def test_a_manager_sees_a_colleagues_ticket_and_a_plain_member_does_not(
    new_context: ContextFactory, demo: DemoUsers
) -> None:
    member = next(login for login in DEMO_LOGINS if login.email == "customer2@example.com")
    manager_page = new_context.logged_in(demo.customer.email, demo.customer.password, 375, 800)
    # Found by the portal's search: other tests add open tickets that push a demo ticket off
    # the first page.
    manager_page.goto(f"/portal/?q={quote(COLLEAGUE_TICKET)}")
    expect(manager_page.get_by_role("heading", level=1)).to_have_text("Tickets of Example Corp")
    row = manager_page.locator(".ticket-row", has_text=COLLEAGUE_TICKET)
    expect(row).to_contain_text(f"from {member.name}")
    row.get_by_role("link", name=COLLEAGUE_TICKET).click()
    expect(manager_page.get_by_role("heading", level=1)).to_contain_text(COLLEAGUE_TICKET)

    member_page = new_context.logged_in(member.email, member.password)
    member_page.goto("/portal/")
    expect(member_page.get_by_role("heading", level=1)).to_have_text("My tickets")
    expect(member_page.get_by_text(COLLEAGUE_TICKET)).to_be_visible()
    expect(member_page.get_by_text(MANAGER_TICKET)).to_have_count(0)
    manager_page.goto(f"/portal/?q={quote(MANAGER_TICKET)}")
    own = manager_page.locator(".ticket-row", has_text=MANAGER_TICKET).first
    ticket_id = own.get_attribute("data-ticket-id")
    response = member_page.goto(f"/portal/tickets/{ticket_id}")
    assert response is not None and response.status == 404
