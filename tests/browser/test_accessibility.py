"""Automated accessibility checks: axe-core runs on each main page, at desktop and phone widths,
with the WCAG 2.1 A and AA rules. A violation of impact "serious" or "critical" fails that
page's test, naming the rule, its help and the elements (CSS selectors) it found.

axe-core comes from npm (a devDependency, node_modules/axe-core; never served to users) and is
evaluated through Playwright, i.e. by the DevTools protocol, which the page's
Content-Security-Policy does not govern: the pages keep their strict CSP and no script is added
to them (the CSP watcher of ``new_context`` would fail the test on a violation).

axe checks what it can see: names, roles, contrast, structure. It does not replace trying a page
with a keyboard and a screen reader.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.demo.seed import DEMO_MAILBOX
from autocrm.engine import drafts
from autocrm.engine.models import Workflow
from autocrm.extensions import db
from autocrm.fields import definitions
from autocrm.kb.models import Article, KbCategory
from autocrm.macros import services as macros
from autocrm.mail import receive
from autocrm.mail.models import Mailbox
from autocrm.people.models import Organization, Team, User
from autocrm.security import issue_feedback_token
from autocrm.tickets.models import Ticket
from autocrm.webhooks import subscriptions
from tests import processes
from tests.browser.conftest import PAGE_MS, REPO, ContextFactory, DemoUsers, LiveServer
from tests.mail_messages import build_message

AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}
WIDTHS = (1280, 375)

# Runs axe on the whole document; returns each violated rule with the elements that break it.
RUN_AXE = """async (options) => {
  const results = await window.axe.run(document, options);
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : t)).join(" "),
      summary: n.failureSummary,
    })),
  }));
}"""


# -- what to check ------------------------------------------------------------------------------


def wrong_password(page: Page) -> None:
    page.get_by_label("Email", exact=True).fill("customer@example.com")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()


def send_empty_ticket(page: Page) -> None:
    page.get_by_role("button", name="Send ticket").click()
    errors_are_marked(page)


def open_an_empty_agent_ticket(page: Page) -> None:
    page.get_by_role("button", name="Open ticket").click()
    errors_are_marked(page)


def type_a_subject(page: Page) -> None:
    page.get_by_label("Subject", exact=True).fill("support ticket")
    expect(page.locator("#suggestion-list li").first).to_be_visible()


def open_the_queue_forms(page: Page) -> None:
    """The views drawer (a phone's), the "Filters" and "Save current filters as view"
    disclosures open: every control of the queue page on show."""
    page.evaluate(
        "document.querySelectorAll('#views-drawer, #filters-more, #save-view')"
        ".forEach((d) => { d.open = true; })"
    )
    expect(page.get_by_label("View name")).to_be_visible()


def errors_are_marked(page: Page) -> None:
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()


def search_the_knowledge_base(page: Page) -> None:
    page.get_by_label("Knowledge base", exact=True).fill("ticket")
    expect(page.locator("#ws-kb-results li").first).to_be_visible()


def suggest_a_mention(page: Page) -> None:
    page.get_by_label("Internal note").check()
    page.locator("#ws-body").press_sequentially("@Ad")
    expect(page.get_by_role("listbox", name="Colleagues to mention")).to_be_visible()


@dataclass(frozen=True)
class Check:
    """One page to check: who looks at it (None: nobody logged in), its path (``{ticket}``
    and the like filled from ``Targets``), the status it answers with, and what to wait for
    or do before axe runs."""

    name: str
    who: str | None
    path: str
    status: int = 200
    ready: str | None = None  # a JavaScript condition the page reaches once its script ran
    act: Callable[[Page], None] | None = None  # puts the page in the state to check


CHARTS_DRAWN = "window.AutoCRMReports && Object.keys(window.AutoCRMReports.charts).length > 0"

CHECKS = [
    Check("login", None, "/login"),
    Check("login-wrong-password", None, "/login", act=wrong_password),
    Check("portal-tickets", "customer", "/portal/"),
    Check("portal-ticket", "customer", "/portal/tickets/{ticket}"),
    Check("portal-ticket-solved", "customer", "/portal/tickets/{solved_ticket}"),
    Check("portal-new-ticket", "customer", "/portal/tickets/new"),
    Check("portal-new-ticket-suggestions", "customer", "/portal/tickets/new", act=type_a_subject),
    Check("portal-new-ticket-errors", "customer", "/portal/tickets/new", act=send_empty_ticket),
    Check("portal-profile", "customer", "/portal/profile"),
    Check("feedback-link", None, "/feedback/{feedback_token}"),
    Check("help-home", "customer", "/help/"),
    Check("help-home-anonymous", None, "/help/"),
    Check("help-search", "customer", "/help/search?q=ticket"),
    Check("help-category", "customer", "/help/categories/{category}"),
    Check("help-article", "customer", "/help/articles/{article}"),
    Check("agent-queue", "agent", "/agent/"),
    Check("agent-queue-all", "admin", "/agent/?view=all"),
    Check(
        "agent-queue-forms",
        "agent",
        "/agent/?view=unsolved&priority=high",
        act=open_the_queue_forms,
    ),
    Check("agent-ticket", "agent", "/agent/tickets/{ticket}"),
    Check(
        "agent-ticket-kb-search", "agent", "/agent/tickets/{ticket}", act=search_the_knowledge_base
    ),
    Check(
        "agent-ticket-mention-suggestions",
        "agent",
        "/agent/tickets/{ticket}",
        act=suggest_a_mention,
    ),
    Check("agent-ticket-missing", "agent", "/agent/tickets/0", status=404),
    Check("macros", "agent", "/agent/macros"),
    Check("macro-edit", "agent", "/agent/macros/{macro}/edit"),
    Check("agent-ticket-macro-preview", "agent", "/agent/tickets/{ticket}?macro={macro}"),
    Check("agent-new-ticket", "agent", "/agent/tickets/new"),
    Check("agent-new-ticket-errors", "agent", "/agent/tickets/new", act=open_an_empty_agent_ticket),
    Check("admin-users", "admin", "/admin/users"),
    Check("admin-user", "admin", "/admin/users/{user}"),
    Check("admin-user-new", "admin", "/admin/users/new"),
    Check("admin-teams", "admin", "/admin/teams"),
    Check("admin-team", "admin", "/admin/teams/{team}"),
    Check("admin-team-new", "admin", "/admin/teams/new"),
    Check("admin-organizations", "admin", "/admin/organizations"),
    Check("admin-organization", "admin", "/admin/organizations/{organization}"),
    Check("admin-workflows", "admin", "/admin/workflows/"),
    Check("admin-workflow-version", "admin", "/admin/workflows/{workflow}/versions/1"),
    Check("admin-workflow-draft", "admin", "/admin/workflows/{draft}/draft"),
    Check("admin-workflow-draft-raw", "admin", "/admin/workflows/{draft}/draft?view=raw"),
    Check(
        "admin-workflow-draft-errors",
        "admin",
        "/admin/workflows/{broken_draft}/draft",
        act=errors_are_marked,
    ),
    Check("admin-workflow-review", "admin", "/admin/workflows/{draft}/draft/review?limit=20"),
    Check("admin-storage", "admin", "/admin/storage"),
    Check("admin-mailboxes", "admin", "/admin/mailboxes"),
    Check("admin-mailbox", "admin", "/admin/mailboxes/{mailbox}"),
    Check("admin-mailbox-mail", "admin", "/admin/mailboxes/mail?status=all"),
    Check("admin-mailbox-email", "admin", "/admin/mailboxes/mail/{inbound}"),
    Check("admin-webhooks", "admin", "/admin/webhooks"),
    Check("admin-webhook", "admin", "/admin/webhooks/{webhook}"),
    Check("admin-fields", "admin", "/admin/fields"),
    Check("admin-field", "admin", "/admin/fields/{field}"),
    Check("agent-customer", "agent", "/agent/customers/{customer}"),
    Check("agent-invite", "agent", "/agent/customers/invite"),
    Check("agent-ticket-by-email", "agent", "/agent/tickets/{email_ticket}"),
    Check("agent-email-original", "agent", "/agent/emails/{inbound}"),
    Check("admin-audit", "admin", "/admin/audit/"),
    Check("reports-teams", "admin", "/reports/teams", ready=CHARTS_DRAWN),
    Check("reports-teams-bad-period", "admin", "/reports/teams?start=someday", status=422),
    Check("notifications", "agent", "/notifications"),
    Check("notifications-customer", "customer", "/notifications"),
    # The staff knowledge base.
    Check("kb-list", "agent", "/agent/kb/"),
    Check("kb-new", "agent", "/agent/kb/new"),
    Check("kb-edit", "agent", "/agent/kb/{article}/edit"),
    Check("kb-history", "agent", "/agent/kb/{article}/history"),
    Check("kb-categories", "admin", "/agent/kb/categories"),
]


@dataclass(frozen=True)
class Targets:
    """Ids of the records the pages show: seeded demo data, and what is added for these pages (a
    macro of the agent's team; two workflows with drafts, one of them wrong)."""

    ticket: int
    solved_ticket: int
    feedback_token: str
    article: int
    category: int
    user: int
    team: int
    organization: int
    workflow: int
    draft: int
    broken_draft: int
    macro: int
    customer: int
    mailbox: int
    inbound: int
    email_ticket: int
    webhook: int
    field: int


@pytest.fixture(scope="module")
def targets(live_server: LiveServer, demo: DemoUsers) -> Targets:
    with live_server.data():

        def one(statement: Any) -> int:
            value = processes.snapshot(lambda: db.session.scalar(statement))
            assert value is not None, statement
            return value

        def ticket(subject: str) -> int:
            return one(select(Ticket.id).where(Ticket.subject == subject))

        agent_id = one(select(User.id).where(User.email == demo.agent.email))
        customer_id = one(select(User.id).where(User.email == demo.customer.email))
        team = one(select(Team.id).where(Team.name == "Support"))
        solved = ticket("Password reset email never arrives")
        article = one(select(Article.id).where(Article.title == "Open your first support ticket"))
        admin = db.session.scalar(select(User).where(User.email == demo.admin.email))
        token = uuid.uuid4().hex[:8]
        draft = drafts.do_create_workflow(admin, name=f"a11y {token}")
        # A draft that changes things, so its simulation lists differences and caveats.
        changed = copy.deepcopy(draft.draft)
        solve = next(t for t in changed["transitions"] if t["name"] == "solve")
        solve["from"] = [state for state in solve["from"] if state != "open"]
        changed["rules"].append(
            {
                "name": "tag_every_ticket",
                "event": "ticket.created",
                "then": [{"action": "add_tag", "tag": "seen"}],
            }
        )
        drafts.do_save_draft(admin, draft.id, changed)
        broken = drafts.do_create_workflow(admin, name=f"a11y broken {token}")
        definition = copy.deepcopy(broken.draft)
        definition["transitions"][0]["to"] = "nowhere"
        drafts.do_save_draft(admin, broken.id, definition)
        macro = macros.do_create_macro(
            db.session.get(User, agent_id),
            title=f"Ask for the app version {token}",
            body="Which version of the app are you on, {{ requester.name }}?",
            team_id=team,
            actions={"priority": "high", "add_tags": ["needs-info"]},
        )
        mailbox = db.session.scalar(select(Mailbox).where(Mailbox.name == DEMO_MAILBOX))
        inbound = receive.do_receive_email(
            mailbox,
            build_message(
                ("Maria Lopez", f"maria.{token}@example.org"),
                mailbox.address,
                f"Printer prints blank pages {token}",
                "Hello,\n\nthe printer prints blank pages.\n\nOn Monday you wrote:\n> Hi",
            ),
            via="pipe",
        )
        # Paused: nothing is ever sent to it (a public address: private ones are refused).
        webhook, _ = subscriptions.do_create_subscription(
            admin,
            {"url": "https://8.8.8.8/autocrm", "event_kinds": ["ticket.created"], "active": False},
        )
        # A dropdown customers set: the workspace and the portal's forms show it too.
        field = definitions.do_create_field(
            admin,
            {
                "key": f"a11y_{token}",
                "label": "Product",
                "type": "dropdown",
                "options": [{"value": "printer", "label": "Printer"}, {"value": "app"}],
                "help_text": "What it is about.",
                "visibility": "customer_editable",
            },
        )
        return Targets(
            # Seeded tickets of the demo customer: one open with a conversation (a public
            # reply and an internal note), one solved (its page asks for a rating).
            ticket=ticket("App crashes when exporting a report"),
            solved_ticket=solved,
            feedback_token=issue_feedback_token(solved, customer_id),
            article=article,
            category=one(select(KbCategory.id).where(KbCategory.name == "Getting started")),
            user=agent_id,
            team=team,
            organization=one(select(Organization.id).where(Organization.name == "Example Corp")),
            workflow=one(select(Workflow.id).where(Workflow.is_default.is_(True))),
            draft=draft.id,
            broken_draft=broken.id,
            macro=macro.id,
            customer=customer_id,
            mailbox=mailbox.id,
            inbound=inbound.id,
            email_ticket=inbound.ticket_id,
            webhook=webhook.id,
            field=field.id,
        )


@pytest.fixture(scope="module")
def sessions() -> dict[str, Any]:
    """Each role's logged-in storage state, so every page does not log in again."""
    return {}


@pytest.fixture
def open_as(
    new_context: ContextFactory, demo: DemoUsers, sessions: dict[str, Any]
) -> Iterator[Callable[[str | None, int], Page]]:
    """``open_as(who, width)``: a new page of ``who`` ("admin", "agent", "customer" or None)."""

    def open_page(who: str | None, width: int) -> Page:
        if who is not None and who not in sessions:
            person = getattr(demo, who)
            logged_in = new_context.logged_in(person.email, person.password)
            sessions[who] = logged_in.context.storage_state()
        options = {"storage_state": sessions[who]} if who else {}
        page = new_context(width, 800, **options).new_page()
        page.set_default_timeout(PAGE_MS)
        return page

    yield open_page


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe's WCAG 2.1 A/AA violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    options = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
    return page.evaluate(RUN_AXE, options)


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"<{violation['helpUrl']}>"
        )
        lines += [f"    {node['target']}" for node in violation["nodes"]]
    return "\n".join(lines)


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w}px")
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_page_has_no_serious_accessibility_violations(
    check: Check,
    width: int,
    targets: Targets,
    open_as: Callable[[str | None, int], Page],
) -> None:
    page = open_as(check.who, width)
    response = page.goto(check.path.format(**vars(targets)))
    assert response is not None, check.path
    assert response.status == check.status, f"{response.url}: {response.status}"
    page.wait_for_load_state("networkidle")
    if check.ready:
        page.wait_for_function(check.ready, timeout=PAGE_MS)
    if check.act:
        check.act(page)
    violations = axe_violations(page)
    serious = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    if serious:
        pytest.fail(f"{page.url} at {width}px:\n{describe(serious)}", pytrace=False)


def test_the_check_finds_a_broken_page(open_as: Callable[[str | None, int], Page]) -> None:
    """The check itself works: a login page stripped of its labels, with a grey-on-white
    line, fails it (or a page could pass because axe never ran its rules)."""
    page = open_as(None, WIDTHS[0])
    page.goto("/login")
    page.evaluate(
        """() => {
          document.querySelectorAll("label").forEach((label) => label.remove());
          const faint = document.createElement("p");
          faint.textContent = "Hard to read";
          faint.style.color = "#ccc";
          document.querySelector("main").append(faint);
        }"""
    )
    found = {v["id"]: v for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= found.keys(), describe(list(found.values()))
    assert "#email" in describe([found["label"]])
