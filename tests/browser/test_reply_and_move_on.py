"""The workspace's reply box moves the ticket on in the same step ("Send and set <state>"), its
details save as they change, and a refusal keeps what the agent typed or chose on screen.

Changes "behind the page" are made through the services on the browser database while the
page's socket is disconnected: the page keeps showing the old state, as a flaky connection
would leave it, and the server is the one to refuse.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from autocrm.tickets import services as tickets
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import EVENT_MS, _token, create_ticket, open_followed
from tests.browser.test_live_pages import _ticket, as_staff


def offline(page: Page) -> None:
    """The page stops hearing about changes (its socket is gone; HTTP still works)."""
    page.evaluate("window.AutoCRM.socket.disconnect()")
    page.wait_for_function("!window.AutoCRM.socket.connected")


def test_send_and_set_solved_then_a_refused_move_keeps_the_text(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Move on {token}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_followed(agent, f"/agent/tickets/{ticket_id}")
    moves = agent.locator("#ws-reply-moves")
    expect(moves.get_by_role("button", name="Send and set Solved")).to_be_visible()
    screenshot(agent, "workspace-reply-moves-1280")

    agent.locator("#ws-body").fill(f"Fixed it {token}")
    moves.get_by_role("button", name="Send and set Solved").click()
    expect(agent.locator("#ws-messages li").filter(has_text=f"Fixed it {token}")).to_be_visible()
    expect(agent.locator("#ws-status-badge")).to_have_text("Solved", timeout=EVENT_MS)
    expect(agent.locator("#ws-body")).to_have_value("")
    # The moves follow the new state: from Solved, reopening or closing.
    expect(moves.get_by_role("button", name="Send and set Open")).to_be_visible()
    expect(moves.get_by_role("button", name="Send and set Solved")).to_have_count(0)

    offline(agent)
    as_staff(
        live_server,
        demo.admin.email,
        lambda admin: tickets.do_transition(admin, ticket_id, "reopen", _ticket(ticket_id).version),
    )
    agent.locator("#ws-body").fill(f"One more thing {token}")
    moves.get_by_role("button", name="Send and set Closed").click()  # only from Solved
    expect(agent.locator("#ws-send-error")).to_contain_text("Not sent")
    expect(agent.locator("#ws-body")).to_have_value(f"One more thing {token}")
    expect(agent.locator("#ws-messages li").filter(has_text="One more thing")).to_have_count(0)


def test_details_save_on_change_and_a_conflict_keeps_the_choice(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    ticket_id = create_ticket(live_server, demo, f"Autosave {_token()}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_followed(agent, f"/agent/tickets/{ticket_id}")
    expect(agent.locator("#ws-fields-save")).to_be_hidden()  # the script saves as you go

    agent.locator("#ws-priority").select_option("high")
    expect(agent.locator("#ws-fields-state")).to_have_text("Saved.")
    expect(agent.locator("#ws-priority-text")).to_have_text("High priority")
    expect(agent.locator("#ws-stale")).to_be_hidden()  # my own change is no news

    offline(agent)
    as_staff(
        live_server,
        demo.admin.email,
        lambda admin: tickets.do_update_ticket(admin, ticket_id, {"tags": ["theirs"]}),
    )
    agent.locator("#ws-priority").select_option("urgent")
    error = agent.locator("#ws-fields-error")
    expect(error).to_contain_text("Someone else changed this ticket — reload")
    expect(error.get_by_role("link", name="Reload")).to_be_visible()
    expect(agent.locator("#ws-priority")).to_have_value("urgent")  # the choice stays
    screenshot(agent, "workspace-fields-conflict-1280")
    with live_server.data():
        assert _ticket(ticket_id).priority.label == "high"  # nothing was saved


def test_workspace_and_new_ticket_page_on_a_phone(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    ticket_id = create_ticket(live_server, demo, f"Phone view {_token()}")
    for width in (375, 1280):
        page = new_context.logged_in(demo.agent.email, demo.agent.password, width=width)
        open_followed(page, f"/agent/tickets/{ticket_id}")
        expect(page.locator("#ws-reply-moves").get_by_role("button").first).to_be_visible()
        screenshot(page, f"workspace-{width}")
        page.goto("/agent/")
        page.locator("#new-ticket").click()
        expect(page.get_by_role("heading", name="New ticket for a customer")).to_be_visible()
        screenshot(page, f"agent-new-ticket-{width}")
        page.get_by_role("button", name="Open ticket").click()
        expect(page.locator("#new-ticket-errors")).to_be_visible()
        screenshot(page, f"agent-new-ticket-errors-{width}")


def test_the_tags_field_completes_tags_in_use(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    tagged = create_ticket(live_server, demo, f"Tagged {token}")
    as_staff(
        live_server,
        demo.admin.email,
        lambda admin: tickets.do_update_ticket(admin, tagged, {"tags": [f"zebra-{token}"]}),
    )
    ticket_id = create_ticket(live_server, demo, f"Untagged {token}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_followed(agent, f"/agent/tickets/{ticket_id}")
    agent.locator("#ws-tags").press_sequentially("vip, zebra-")
    # The whole list typed so far, completed with the tag in use.
    option = agent.locator(f'#ws-tag-suggestions option[value="vip, zebra-{token}"]')
    expect(option).to_be_attached()
