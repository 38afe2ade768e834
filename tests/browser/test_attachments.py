"""Attachments in the browser: a customer pastes a screenshot and picks a PDF for a new
ticket; the agent sees both and opens the image; files sent on either side appear live on the
other; an internal note's file never reaches the customer (page, socket, guessed URL).

Checked at a phone's width (375 px, the customer) and a desktop's (1280 px, the agent), with
screenshots in test-artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.files.models import Attachment
from autocrm.tickets.models import Ticket
from tests import files_data, processes
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import EVENT_MS, _token, assert_not_reloaded, open_followed

PASTE_SCREENSHOT = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "image.png", { type: "image/png" }));
  const paste = new ClipboardEvent("paste", {
    clipboardData: transfer, bubbles: true, cancelable: true,
  });
  document.activeElement.dispatchEvent(paste);
}"""


def paste_screenshot(page: Page, field: str, png: bytes) -> None:
    page.locator(field).focus()
    page.evaluate(PASTE_SCREENSHOT, base64.b64encode(png).decode())


def ticket_id_by_subject(live_server: LiveServer, subject: str) -> int:
    with live_server.data():
        return processes.snapshot(
            lambda: db.session.scalar(select(Ticket.id).where(Ticket.subject == subject))
        )


def attachment_id(live_server: LiveServer, name: str) -> int:
    with live_server.data():
        return processes.snapshot(
            lambda: db.session.scalar(
                select(Attachment.id)
                .where(Attachment.filename == name)
                .order_by(Attachment.id.desc())
            )
        )


def test_files_travel_between_customer_and_agent_and_notes_stay_internal(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
    tmp_path,
) -> None:
    token = _token()
    subject = f"Files {token}"
    pdf_path = tmp_path / f"invoice-{token}.pdf"
    pdf_path.write_bytes(files_data.PDF)

    # The customer, on a phone: a PDF picked, a screenshot pasted into the description.
    customer = new_context.logged_in(demo.customer.email, demo.customer.password, 375, 800)
    customer.goto("/portal/tickets/new")
    customer.get_by_label("Subject").fill(subject)
    customer.get_by_label("Description").fill("The invoice total is wrong, see both files.")
    customer.locator("#files").set_input_files(str(pdf_path))
    paste_screenshot(customer, "#description", files_data.png(320, 200, (30, 90, 200)))
    chosen = customer.locator("[data-chosen-files] li")
    expect(chosen).to_have_count(2)
    expect(chosen.nth(1)).to_contain_text(re.compile(r"screenshot-\d{8}-\d{6}\.png"))
    screenshot(customer, "attachments-new-ticket-375")
    customer.get_by_role("button", name="Send ticket").click()
    expect(customer).to_have_url(re.compile(r"/portal/tickets/\d+"))
    description = customer.locator(".message-description")
    expect(description.locator(".file-thumb img")).to_be_visible()
    expect(description.get_by_role("link", name=pdf_path.name)).to_be_visible()
    ticket_id = ticket_id_by_subject(live_server, subject)
    screenshot(customer, "attachments-portal-ticket-375")

    # The agent, on a desktop, sees both and opens the image full size.
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_followed(agent, f"/agent/tickets/{ticket_id}")
    original = agent.locator(".ws-msg-description")
    expect(original.locator(".file-thumb img")).to_be_visible()
    expect(original.get_by_role("link", name=pdf_path.name)).to_be_visible()
    with agent.expect_popup() as opened:
        original.locator(".file-thumb").click()
    image = opened.value
    image.wait_for_load_state()
    assert image.evaluate("document.contentType") == "image/png"
    image.close()

    # The customer replies with a file: it appears on the agent's page live.
    open_followed(customer, f"/portal/tickets/{ticket_id}")
    customer.get_by_label("Your reply").fill("And the receipt")
    receipt = tmp_path / f"receipt-{token}.txt"
    receipt.write_text("Paid 42 EUR")
    customer.locator("#reply-files").set_input_files(str(receipt))
    customer.get_by_role("button", name="Send reply").click()
    expect(agent.locator("#ws-messages").get_by_role("link", name=receipt.name)).to_be_visible(
        timeout=EVENT_MS
    )
    assert_not_reloaded(agent)

    # The agent writes an internal note with a file, then replies with a file; the customer's
    # page shows the reply live, and nothing of the note.
    open_followed(customer, f"/portal/tickets/{ticket_id}")
    secret = tmp_path / f"internal-{token}.pdf"
    secret.write_bytes(files_data.PDF)
    agent.get_by_label("Internal note").check()
    agent.locator("#ws-body").fill("Customer was overcharged before")
    agent.locator("#ws-files").set_input_files(str(secret))
    agent.get_by_role("button", name="Add internal note").click()
    expect(agent.locator("#ws-messages").get_by_role("link", name=secret.name)).to_be_visible()
    steps = tmp_path / f"refund-steps-{token}.png"
    steps.write_bytes(files_data.png(200, 120, (20, 140, 60)))
    agent.get_by_label("Public reply").check()
    agent.locator("#ws-body").fill("Refund is on its way, see the steps")
    agent.locator("#ws-files").set_input_files(str(steps))
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.locator("#ws-messages .file-name", has_text=steps.name)).to_be_visible()
    screenshot(agent, "attachments-workspace-1280")

    messages = customer.locator("#message-list")
    expect(messages.locator(".file-name", has_text=steps.name)).to_be_visible(timeout=EVENT_MS)
    expect(messages.locator(".file-thumb img")).to_be_visible()
    assert_not_reloaded(customer)
    # The reply came after the note: had the note reached this page, it would be here by now.
    assert secret.name not in customer.content()
    assert "overcharged" not in customer.content()
    screenshot(customer, "attachments-portal-live-375")
    note_file = attachment_id(live_server, secret.name)
    assert customer.request.get(f"/attachments/{note_file}").status == 404
    assert customer.request.get(f"/attachments/{note_file}/thumbnail").status == 404
