"""The admin console's workflow editor in a real browser: an admin edits the default workflow's
draft (adding a state and a transition with the editor's buttons), makes a mistake, sees the
error at that exact field, fixes it, simulates the draft against the seeded tickets, and
publishes it as a new version that then shows in the versions list. Also the editor at phone
width, and the raw YAML view switching without a reload.

The browser database is shared by all browser tests and never rolled back: the published
version stays (a harmless extra state), and the note carries a unique token.
"""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import ContextFactory, DemoUsers, Screenshot

NO_RELOAD = "window.__wfNoReload"


def field(page: Page, name: str) -> Locator:
    return page.locator(f'[name="{name}"]')


def test_admin_edits_fixes_simulates_and_publishes_the_default_workflow(
    new_context: ContextFactory, demo: DemoUsers, screenshot: Screenshot
):
    token = uuid.uuid4().hex[:8]
    page = new_context.logged_in(demo.admin.email, demo.admin.password)

    page.goto("/admin/workflows/")
    expect(page.get_by_role("heading", name="Workflows & SLA")).to_be_visible()
    page.get_by_role("link", name=re.compile(r"(Edit|Start a) draft of default")).click()
    expect(page.get_by_role("heading", name="Draft of “default”")).to_be_visible()
    states = page.locator("#wf-states-list [data-rows] > .wf-row").count()
    transitions = page.locator("#wf-transitions-list [data-rows] > .wf-row").count()

    # Rows come and go in place.
    page.get_by_role("button", name="Add state").click()
    expect(field(page, f"states.{states}.name")).to_be_focused()
    page.get_by_role("button", name="Remove state").last.click()
    expect(field(page, f"states.{states}.name")).to_have_count(0)

    page.evaluate(f"{NO_RELOAD} = true")
    page.get_by_role("button", name="Add state").click()
    new_state = states + 1  # the removed row's index is not reused
    field(page, f"states.{new_state}.name").fill("escalated")
    field(page, f"states.{new_state}.label").fill("Escalated")
    field(page, f"states.{new_state}.category").select_option("open")
    page.get_by_role("button", name="Add transition").click()
    prefix = f"transitions.{transitions}"
    field(page, f"{prefix}.name").fill("escalate")
    field(page, f"{prefix}.label").fill("Escalate")
    field(page, f"{prefix}.from").fill("open")
    field(page, f"{prefix}.to").fill("escalatd")  # the mistake
    expect(field(page, f"{prefix}.roles").and_(page.locator("[value=agent]"))).to_be_checked()
    solve = field(page, "transitions.4.from")
    expect(field(page, "transitions.4.name")).to_have_value("solve")
    solve.fill(solve.input_value() + ", escalated")
    # A rule's new condition and action come from the page's one template for each.
    page.locator("#wf-rules-list details.wf-rule").first.evaluate("(rule) => { rule.open = true; }")
    conditions = page.locator("#f-rules-0-if-list")
    before = conditions.locator("[data-rows] > [data-row]").count()
    conditions.get_by_role("button", name="Add condition").click()
    added = field(page, f"rules.0.if.{before}.field")
    expect(added).to_be_focused()
    expect(added).to_have_id(f"f-rules-0-if-{before}-field")
    conditions.get_by_role("button", name="Remove condition").last.click()
    expect(added).to_have_count(0)
    actions = page.locator("#f-rules-0-then-list")
    before = actions.locator("[data-rows] > [data-row]").count()
    actions.get_by_role("button", name="Add action").click()
    expect(field(page, f"rules.0.then.{before}.action")).to_be_focused()
    actions.get_by_role("button", name="Remove action").last.click()
    assert page.evaluate(NO_RELOAD), "adding rows did not reload the page"
    page.get_by_role("button", name="Save draft").first.click()

    # Saved as entered; the error sits at the field that is wrong (the rows were reindexed).
    wrong = field(page, f"transitions.{transitions}.to")
    expect(wrong).to_have_attribute("aria-invalid", "true")
    expect(wrong).to_have_value("escalatd")
    error = page.locator(f"#f-transitions-{transitions}-to-error")
    expect(error).to_have_text("Unknown state 'escalatd'.")
    expect(error).to_be_visible()
    assert wrong.get_attribute("aria-describedby") == f"f-transitions-{transitions}-to-error"
    summary = page.locator("#wf-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("1 problem in this draft")
    screenshot(page, "admin-workflow-editor-error-1280")

    small = new_context.logged_in(demo.admin.email, demo.admin.password, 375)
    small.goto(page.url.split("?")[0])
    expect(field(small, f"transitions.{transitions}.to")).to_have_attribute("aria-invalid", "true")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the editor scrolls sideways on a phone ({width}px)"
    screenshot(small, "admin-workflow-editor-error-375")

    summary.get_by_role("link", name=re.compile(r"Transition \d+ “escalate”, to")).click()
    expect(wrong).to_be_focused()
    wrong.fill("escalated")
    page.get_by_role("button", name="Save draft").first.click()
    expect(page.locator(".flash-success")).to_contain_text("Draft saved. It is valid")
    expect(page.locator("[aria-invalid=true]")).to_have_count(0)
    screenshot(page, "admin-workflow-editor-1280")

    # The raw view is the same draft, one click away.
    page.evaluate(f"{NO_RELOAD} = true")
    page.get_by_role("tab", name="YAML / JSON").click()
    raw = page.get_by_role("textbox", name="The whole draft")
    expect(raw).to_be_visible()
    expect(raw).to_have_value(re.compile(r"- name: escalate\n\s+label: Escalate"))
    assert page.evaluate(NO_RELOAD)
    page.get_by_role("tab", name="Form").click()
    expect(field(page, "name")).to_be_visible()

    # Diagram and simulation.
    page.get_by_role("link", name="2. Diagram, simulate & publish").click()
    expect(page.locator(".wf-good-box")).to_contain_text("The draft is valid")
    diagram = page.get_by_role("img", name=re.compile("State diagram of the draft"))
    expect(diagram).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", diagram.element_handle()) > 100
    page.get_by_label("Newest tickets to replay").fill("20")
    page.get_by_role("button", name="Simulate").click()
    result = page.get_by_role("status").filter(has_text="Replayed")
    expect(result).to_contain_text(re.compile(r"Replayed \d+ tickets: \d+ would go differently"))
    simulated = int(re.search(r"Replayed (\d+)", result.inner_text()).group(1))
    assert simulated >= 1, "the demo tickets were replayed"
    screenshot(page, "admin-workflow-review-1280")

    # Publish: the new version shows in the list with its note.
    note = f"Escalation state {token}"
    page.get_by_label("Note: what changed, and why").fill(note)
    page.get_by_role("button", name=re.compile(r"Publish version \d+")).click()
    expect(page).to_have_url(re.compile(r"/admin/workflows/#workflow-\d+$"))
    expect(page.locator(".flash-success")).to_contain_text(re.compile(r"Published default version"))
    anchor = page.url.rsplit("#", 1)[1]
    row = page.locator(f"#{anchor} .wf-versions tbody tr").filter(has_text=note)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(demo.admin.name)
    number = re.search(r"Version (\d+)", row.inner_text()).group(1)
    assert int(number) >= 2
    screenshot(page, "admin-workflows-list-1280")

    row.get_by_role("link", name=f"Version {number}").click()
    expect(page.get_by_role("heading", name=f"default, version {number}")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("Escalated")
