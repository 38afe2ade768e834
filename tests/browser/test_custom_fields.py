"""Custom ticket fields in a real browser with a real worker: an admin adds a dropdown field in
the console, an agent sets it in the ticket workspace, and a workflow rule routes the ticket
to a team by it.

The browser database is shared by all browser tests and never rolled back: the default
workflow gets one more version whose extra rule reads only this test's field (its key carries
a unique token), so it changes nothing for the others.
"""

from __future__ import annotations

import copy
import uuid

from playwright.sync_api import expect
from sqlalchemy import select

from autocrm.engine import drafts, publishing
from autocrm.engine.models import Workflow
from autocrm.people import teams
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests import processes
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer
from tests.conftest import wait_until


def test_an_admin_adds_a_dropdown_an_agent_sets_it_and_a_rule_routes_by_it(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
):
    token = uuid.uuid4().hex[:8]
    key = f"product_{token}"
    with live_server.data() as session:
        admin = session.scalar(select(User).where(User.email == demo.admin.email))
        printers = teams.create_team(f"Printers {token}")
        session.commit()
        printers_id = printers.id
        default = session.scalar(select(Workflow).where(Workflow.is_default.is_(True)))
        definition = copy.deepcopy(drafts.draft_to_edit(admin, default.id).definition)
        definition["rules"].append(
            {
                "name": f"route_printers_{token}",
                "event": "ticket.updated",
                "if": [{"field": f"fields.{key}", "op": "eq", "value": "printer"}],
                "then": [{"action": "assign_team", "team_id": printers_id}],
            }
        )
        drafts.do_save_draft(admin, default.id, definition)
        publishing.do_publish(admin, default.id, note=f"route printers {token}")
        support = session.scalar(select(Team.id).where(Team.name == "Support"))
        customer = session.scalar(select(User.id).where(User.email == demo.customer.email))
        ticket_id = tickets.do_create_ticket(
            admin,
            subject=f"Paper jam {token}",
            description="It jams.",
            requester_id=customer,
            team_id=support,
        ).id

    page = new_context.logged_in(demo.admin.email, demo.admin.password)
    page.goto("/admin/fields")
    page.get_by_label("Label").fill("Product")
    page.get_by_label("Key").fill(key)
    page.get_by_label("Type").select_option("dropdown")
    page.get_by_label("Options (dropdown and multi-select)").fill(
        "printer | Printer\nscanner | Scanner"
    )
    page.get_by_role("button", name="Add field").click()
    expect(page.locator("#fields-table")).to_contain_text(key)

    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    agent.goto(f"/agent/tickets/{ticket_id}")
    panel = agent.locator("#ws-custom-fields")
    panel.locator(f'select[name="cf.{key}"]').select_option("printer")
    panel.get_by_role("button", name="Save custom fields").click()
    expect(agent.get_by_text("Custom fields saved.")).to_be_visible()

    def team_of_ticket() -> int | None:
        with live_server.data() as session:
            return processes.snapshot(
                lambda: session.scalar(select(Ticket.team_id).where(Ticket.id == ticket_id))
            )

    assert wait_until(lambda: team_of_ticket() == printers_id, timeout=20)
