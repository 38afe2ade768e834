"""Demo data for ``flask seed-demo`` and ``make run``: teams, people and tickets in many states.

Built through the same service functions as real use, so the demo has real audit trails and
outbox events.
"""

from __future__ import annotations

from dataclasses import dataclass

from autocrm.extensions import db
from autocrm.models import Priority, Role, User
from autocrm.services import conversation, teams, tickets, users


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    name: str


DEMO_LOGINS = (
    DemoLogin("admin", "admin@example.com", "admin-demo-pass", "Ada Admin"),
    DemoLogin("agent", "agent@example.com", "agent-demo-pass", "Alex Agent"),
    DemoLogin("agent", "billing.agent@example.com", "agent-demo-pass", "Bea Billing"),
    DemoLogin("customer", "customer@example.com", "customer-demo-pass", "Casey Customer"),
    DemoLogin("customer", "customer2@example.com", "customer-demo-pass", "Dana Customer"),
)

DEMO_TICKETS = (
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


def seed_demo() -> None:
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
