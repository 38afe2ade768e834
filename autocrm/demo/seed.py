"""Demo data for ``flask seed-demo`` and ``make run``: teams, people (the two customers in the
organization Example Corp), tickets in many states, and a small knowledge base for the help
center. The past tickets the reports show are ``autocrm.demo.history``.

Today's tickets are built through the same service functions as real use, so the demo has real
audit trails and outbox events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from autocrm.demo.history import seed_history
from autocrm.demo.logins import DEMO_LOGINS
from autocrm.extensions import db
from autocrm.kb import articles, categories
from autocrm.kb.models import Article, ArticleVisibility, KbCategory
from autocrm.macros import services as macros
from autocrm.macros.models import Macro
from autocrm.mail import mailboxes
from autocrm.mail.models import Mailbox
from autocrm.people import organizations, teams, users
from autocrm.people.models import Organization, Role, Team, User
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority

DEMO_TICKETS: tuple[tuple[int, str | None, str, Priority, list[str], str | None], ...] = (
    # (customer index, team, subject, priority, transitions, agent reply)
    (0, "Support", "Cannot log in to my account", Priority.HIGH, [], None),
    (
        0,
        "Support",
        "App crashes when exporting a report",
        Priority.URGENT,
        ["start"],
        "Thanks for the report: which version of the app are you on?",
    ),
    (
        1,
        "Billing",
        "Invoice shows the wrong VAT number",
        Priority.NORMAL,
        ["start", "wait_on_customer"],
        "Could you send us the correct VAT number?",
    ),
    (1, None, "How do I add a colleague to my plan?", Priority.LOW, [], None),
    (
        0,
        "Support",
        "Password reset email never arrives",
        Priority.NORMAL,
        ["start", "solve"],
        "We fixed a mail delivery problem; please try again.",
    ),
    (
        1,
        "Billing",
        "Refund for a duplicate charge",
        Priority.HIGH,
        ["start", "solve", "close"],
        "The refund is on its way.",
    ),
)


@dataclass(frozen=True)
class DemoArticle:
    category: str
    title: str
    visibility: ArticleVisibility
    body: str


DEMO_KB_CATEGORIES = (
    "Getting started",
    "Account and login",
    "Billing and plans",
    "Troubleshooting",
)

DEMO_ARTICLES = (
    DemoArticle(
        "Getting started",
        "Open your first support ticket",
        ArticleVisibility.PUBLIC,
        """Log in to the customer portal and choose **New ticket**.

1. Give the ticket a short subject that names the problem, such as *Export stops at 50%*.
2. Describe what you did, what you expected and what happened instead.
3. Pick a priority: *urgent* only when your team cannot work at all.

While you type the subject we suggest help articles that may already answer it. You can
follow your ticket's status in the portal, and we email you when someone replies.""",
    ),
    DemoArticle(
        "Getting started",
        "What the ticket statuses mean",
        ArticleVisibility.PUBLIC,
        """- **New**: we received your ticket and will pick it up soon.
- **Open**: someone from support is working on it.
- **Waiting on customer**: we asked you a question; your reply opens the ticket again.
- **Solved**: we believe the problem is fixed. Reply if it is not and the ticket reopens.
- **Closed**: a solved ticket closes four days after it was solved.""",
    ),
    DemoArticle(
        "Account and login",
        "Reset your password",
        ArticleVisibility.PUBLIC,
        """On the app's sign-in screen choose **Forgot password** and enter the email address
of your account. We send you a reset link that works for one hour.

If the email does not arrive within a few minutes, check your spam or junk folder and make
sure the address is the one you signed up with. Company mail filters sometimes hold
automated messages: ask your IT team to allow mail from our support address.""",
    ),
    DemoArticle(
        "Account and login",
        "Turn on two-step verification",
        ArticleVisibility.CUSTOMERS,
        """Two-step verification asks for a one-time code from an authenticator app each time
you log in on a new device.

1. Open **Profile** and choose **Security**.
2. Scan the QR code with an authenticator app (any TOTP app works).
3. Enter the six-digit code the app shows, and keep the recovery codes somewhere safe.

Lost your phone? Log in with one of your recovery codes, then set up the new phone.""",
    ),
    DemoArticle(
        "Billing and plans",
        "Download an invoice",
        ArticleVisibility.CUSTOMERS,
        """Every invoice is in **Billing → Invoices** as a PDF. Invoices show the VAT number
your company gave us when the invoice was issued.

If the VAT number is wrong, update it under **Billing → Company details** first, then open a
ticket with the invoice number: we reissue the invoice with the corrected number.""",
    ),
    DemoArticle(
        "Billing and plans",
        "Add a colleague to your plan",
        ArticleVisibility.CUSTOMERS,
        """Account owners invite colleagues under **Team → Invite people**. Each colleague
gets their own login; your plan's price follows the number of seats in use.

Need more seats than your plan includes? Upgrade under **Billing → Plan**. The new seats are
available at once and the difference is charged pro rata.""",
    ),
    DemoArticle(
        "Billing and plans",
        "Refunds for duplicate charges",
        ArticleVisibility.PUBLIC,
        """A duplicate charge usually happens when a payment is retried after a timeout. The
second charge is refunded automatically within five working days.

If it has not been refunded after that, open a ticket with the dates and amounts of both
charges and we will refund it by hand.""",
    ),
    DemoArticle(
        "Troubleshooting",
        "The app crashes when exporting a report",
        ArticleVisibility.PUBLIC,
        """Large exports can run out of memory on older versions of the desktop app.

- Update to the latest version under **Help → Check for updates**.
- Export a shorter period at a time, for example one month instead of a year.
- Choose *CSV* instead of *Excel*: CSV exports stream and need far less memory.

Still crashing? Open a ticket and attach the crash log from **Help → Diagnostics**.""",
    ),
    DemoArticle(
        "Troubleshooting",
        "Escalating a billing dispute (support playbook)",
        ArticleVisibility.INTERNAL,
        """Internal: for agents only.

1. Check the payment provider's dashboard for the disputed charge.
2. If the customer was double charged, refund at once and tag the ticket `refund`.
3. Otherwise hand the ticket to the Billing team and note the charge id.""",
    ),
)


def seed_knowledge_base(admin: User, author: User) -> None:
    """The demo help center: categories and published articles (public, customers-only and
    one internal). Idempotent: what exists already (by name or title) is left alone."""
    existing_categories = {c.name: c for c in db.session.scalars(select(KbCategory))}
    for position, name in enumerate(DEMO_KB_CATEGORIES, start=1):
        if name not in existing_categories:
            existing_categories[name] = categories.do_create_category(
                admin, name=name, position=position
            )
    existing_titles = set(db.session.scalars(select(Article.title)))
    for article in DEMO_ARTICLES:
        if article.title in existing_titles:
            continue
        articles.do_create_article(
            author,
            title=article.title,
            body=article.body,
            category_id=existing_categories[article.category].id,
            visibility=article.visibility,
            status="published",
        )


DEMO_ORGANIZATION = "Example Corp"
DEMO_MANAGER = "customer@example.com"


def seed_organization(admin: User) -> None:
    """The demo organization: both demo customers, the first its manager (so the portal shows
    them their colleague's tickets). Idempotent: an existing one is left alone."""
    if db.session.scalar(select(Organization).where(Organization.name == DEMO_ORGANIZATION)):
        return
    org = organizations.do_create_organization(
        admin,
        name=DEMO_ORGANIZATION,
        domains=["example.com"],
        notes="The demo customers' company.",
    )
    demo_customers = db.session.scalars(
        select(User).where(User.role == Role.CUSTOMER, User.email.like("%@example.com"))
    ).all()
    for customer in demo_customers:
        organizations.do_add_member(
            admin, org.id, customer.id, manager=customer.email == DEMO_MANAGER
        )


DEMO_MAILBOX = "support"


def seed_mailbox(admin: User) -> None:
    """The demo's support mailbox (support@example.com, the Support team's): mail piped to
    ``flask mail-in --mailbox support`` or posted to its webhook becomes tickets. Idempotent."""
    if db.session.scalar(select(Mailbox.id).where(Mailbox.name == DEMO_MAILBOX)):
        return
    support = db.session.scalar(select(Team).where(Team.name == "Support"))
    mailboxes.do_create_mailbox(
        admin,
        {
            "name": DEMO_MAILBOX,
            "address": "support@example.com",
            "team_id": support.id if support else None,
        },
    )


DEMO_MACROS: tuple[tuple[str, str | None, str, dict[str, object]], ...] = (
    # (title, the team it is shared with (None: everyone), reply, changes)
    (
        "Ask for screenshot",
        None,
        "Hi {{requester.first_name}},\n\nCould you send us a screenshot of what you see? "
        "It helps us find the problem faster.\n\n{{agent.name}}",
        {"transition": "wait_on_customer", "add_tags": ["needs-info"]},
    ),
    (
        "Solved: thanks",
        None,
        "Thanks for your patience, {{requester.first_name}}: we consider ticket "
        "#{{ticket.number}} solved. Just reply if anything is still wrong.\n\n{{agent.name}}",
        {"transition": "solve"},
    ),
    (
        "Escalate to Billing",
        "Support",
        "I have passed your question to our billing team, who will answer you shortly.",
        {"team": "Billing", "priority": "high"},
    ),
    (
        "Password reset instructions",
        "Support",
        "Hi {{requester.first_name}},\n\nOn the sign-in screen choose **Forgot password** and "
        "enter your account's email address; the reset link works for one hour. Check your "
        "spam folder if it does not arrive.\n\n{{agent.name}}",
        {},
    ),
)


def seed_macros(admin: User) -> None:
    """The demo's macros, made by the admin; skipped when there are macros already."""
    if db.session.scalar(select(Macro.id).limit(1)) is not None:
        return
    team_ids = {team.name: team.id for team in db.session.scalars(select(Team))}
    for title, shared_with, body, changes in DEMO_MACROS:
        actions = {k: v for k, v in changes.items() if k != "team"}
        if "team" in changes:
            actions["team_id"] = team_ids[str(changes["team"])]
        macros.do_create_macro(
            admin,
            title=title,
            body=body,
            scope="team" if shared_with else "global",
            team_id=team_ids[shared_with] if shared_with else None,
            actions=actions,
        )


def seed_demo(now: datetime | None = None) -> None:
    """The demo logins, teams, articles and tickets, and the past weeks' history up to ``now``
    (default: the current time)."""
    people: dict[str, User] = {}
    for login in DEMO_LOGINS:
        people[login.email] = users.create_user(
            login.email, login.password, Role(login.role), login.name
        )
    admin, agent, billing_agent = (
        people[e] for e in ("admin@example.com", "agent@example.com", "billing.agent@example.com")
    )
    support = teams.create_team("Support", "Product questions and problems", lead_id=agent.id)
    billing = teams.create_team("Billing", "Invoices, refunds and plans", lead_id=billing_agent.id)
    teams.add_member(support, admin)
    db.session.commit()
    seed_organization(admin)
    seed_mailbox(admin)
    seed_knowledge_base(admin, agent)
    seed_macros(admin)

    customers = [people["customer@example.com"], people["customer2@example.com"]]
    team_by_name = {"Support": support, "Billing": billing}
    for customer_ix, team_name, subject, priority, steps, reply in DEMO_TICKETS:
        customer = customers[customer_ix]
        team = team_by_name.get(team_name) if team_name else None
        staff = billing_agent if team is billing else agent
        ticket = tickets.do_create_ticket(
            admin,
            subject=subject,
            priority=priority,
            channel="web",
            description=f"{subject}. Details from {customer.name}.",
            requester_id=customer.id,
            team_id=team.id if team else None,
            assignee_id=staff.id if team else None,
        )
        if reply:
            conversation.do_add_message(staff, ticket.id, reply)
            conversation.do_add_message(
                staff, ticket.id, "Checked the logs; nothing unusual.", internal=True
            )
        for name in steps:
            tickets.do_transition(staff, ticket.id, name)
    seed_history(now)


def top_up_demo() -> None:
    """A database seeded by an earlier release gets what the demo has gained since (the help
    center's articles, the report history); both steps skip what is already there."""
    by_email = {
        user.email: user
        for user in db.session.scalars(
            select(User).where(User.email.in_(["admin@example.com", "agent@example.com"]))
        )
    }
    seed_organization(by_email["admin@example.com"])
    seed_mailbox(by_email["admin@example.com"])
    seed_knowledge_base(by_email["admin@example.com"], by_email["agent@example.com"])
    seed_macros(by_email["admin@example.com"])
    seed_history()
