"""The agent's queue page (web/agent.py): visibility, filters, bad input, bulk actions, CSRF,
the row fragment queue.js fetches, and the SLA badges."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.people import organizations
from autocrm.sla.models import SlaClock
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from tests.factories import csrf_token, refusal, web_login


def row_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'<tr data-ticket-id="(\d+)"', html)}


@pytest.fixture
def world(factory):
    """Two teams; the agent is in Support only. Tickets in Support, in Billing, in triage."""
    support, billing = factory.team("Support"), factory.team("Billing")
    agent = factory.agent(support, name="Alex Agent")
    colleague = factory.agent(support, name="Casey Colleague")
    outsider = factory.agent(billing, name="Bea Billing")
    customer = factory.customer()
    mine = factory.ticket(
        customer, team=support, subject="Mine: printer", assignee_id=agent.id, tags=["printer"]
    )
    theirs = factory.ticket(
        customer, team=support, subject="Colleague's invoice", assignee_id=colleague.id
    )
    unassigned = factory.ticket(
        customer, team=support, subject="Nobody has it", priority=Priority.URGENT
    )
    triage = factory.ticket(customer, subject="Triage question")
    billing_ticket = factory.ticket(customer, team=billing, subject="Billing secret refund")
    return {
        "support": support,
        "billing": billing,
        "agent": agent,
        "colleague": colleague,
        "outsider": outsider,
        "customer": customer,
        "mine": mine,
        "theirs": theirs,
        "unassigned": unassigned,
        "triage": triage,
        "billing_ticket": billing_ticket,
    }


@pytest.fixture
def agent_client(client, world, fresh_login_limit):
    web_login(client, world["agent"])
    return client


def test_queue_lists_what_the_agent_may_see_and_not_other_teams(agent_client, world):
    response = agent_client.get("/agent/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    visible = {world[k].id for k in ("mine", "theirs", "unassigned", "triage")}
    assert row_ids(html) == visible
    assert "Billing secret refund" not in html
    assert f'href="/agent/tickets/{world["mine"].id}"' in html
    assert "Alex Agent" in html and "Triage" in html
    assert 'data-rooms="[{}, null]"'.format(world["support"].id) in html
    # Every row's checkbox has a label; the shortcuts are documented.
    assert f'aria-label="Select ticket #{world["mine"].id}: Mine: printer"' in html
    assert "Keyboard shortcuts" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("view=mine", {"mine"}),
        ("view=unassigned", {"unassigned", "triage"}),
        ("priority=urgent", {"unassigned"}),
        ("tag=printer", {"mine"}),
        ("q=INVOICE", {"theirs"}),
        ("view=all&assignee_id=none", {"unassigned", "triage"}),
        ("status=new&priority=normal&view=unassigned", {"triage"}),
    ],
)
def test_filters(agent_client, world, params, expected):
    response = agent_client.get(f"/agent/?{params}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert row_ids(response.get_data(as_text=True)) == {world[k].id for k in expected}


def test_team_filter_offers_only_the_agents_teams(agent_client, world):
    ok = agent_client.get(f"/agent/?team_id={world['support'].id}")
    assert row_ids(ok.get_data(as_text=True)) == {
        world[k].id for k in ("mine", "theirs", "unassigned")
    }
    refused = agent_client.get(f"/agent/?team_id={world['billing'].id}")
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "Choose one of your teams." in html
    assert "Billing secret refund" not in html


def test_bad_filters_show_errors_and_keep_the_input(agent_client, world):
    response = agent_client.get(
        "/agent/?q=keep+me&priority=extreme&sort=sideways&tag=no+spaces!&status=bogus&sla=soonish"
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    for message in (
        "Priority must be low, normal, high or urgent.",
        "Choose a sort order from the list.",
        "A tag is letters, digits, - and _ (at most 50).",
        "Unknown status &#39;bogus&#39;.",
        "Choose an SLA state from the list.",
    ):
        assert message in html
    assert 'value="keep me"' in html  # the search text is kept
    assert 'value="no spaces!"' in html
    assert '<option value="extreme" selected>' in html
    assert 'aria-invalid="true"' in html
    assert row_ids(html) == set()


def test_the_queue_checks_its_filters_by_the_filter_rule(agent_client, world):
    long_q = "x" * (tickets.MAX_SEARCH_LENGTH + 1)
    rule = refusal(tickets.check_filters, tickets.TicketFilters(tag="-dash", q=long_q))
    assert set(rule.errors) == {"tag", "q"}
    for path in ("/agent/", "/agent/rows"):
        response = agent_client.get(f"{path}?tag=-dash&q={long_q}")
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        if path == "/agent/":
            for [message] in rule.errors.values():
                assert html.escape(message) in page


def test_id_filters_with_other_digits_are_errors_not_a_500(agent_client, world):
    # "²" counts as a digit for str.isdigit() but int() refuses it.
    response = agent_client.get("/agent/?team_id=%C2%B2&assignee_id=%C2%B2")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Choose one of your teams." in html
    assert "Choose an assignee from the list." in html


def test_a_forged_cursor_is_an_error_message_not_a_500(agent_client):
    response = agent_client.get("/agent/?cursor=not-a-cursor")
    assert response.status_code == 422
    assert "Invalid cursor." in response.get_data(as_text=True)


def test_pagination_links_to_older_tickets(agent_client, world, factory):
    for n in range(51):
        factory.ticket(world["customer"], team=world["support"], subject=f"Bulk {n}")
    first = agent_client.get("/agent/?sort=-created_at").get_data(as_text=True)
    assert len(row_ids(first)) == 50
    older = re.search(r'href="(/agent/\?[^"]*cursor=[^"]+)" rel="next"', first)
    assert older, "an Older link"
    second = agent_client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert row_ids(second) and not row_ids(second) & row_ids(first)


def test_bulk_assign_reports_each_ticket_and_changes_only_visible_ones(
    agent_client, world, db_session
):
    targets = [world["unassigned"], world["triage"], world["billing_ticket"]]
    response = agent_client.post(
        "/agent/bulk?view=all",
        data={
            "csrf_token": csrf_token(agent_client, "/agent/"),
            "ticket_ids": [t.id for t in targets],
            "action": "assign",
            "value": str(world["agent"].id),
        },
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "2 of 3 tickets changed" in html
    assert f'data-result-ticket="{world["unassigned"].id}" data-ok="true"' in html
    assert f'data-result-ticket="{world["triage"].id}" data-ok="true"' in html
    assert f'data-result-ticket="{world["billing_ticket"].id}" data-ok="false"' in html
    assert f"Ticket {world['billing_ticket'].id} not found." in html
    db_session.expire_all()
    assert db_session.get(Ticket, world["unassigned"].id).assignee_id == world["agent"].id
    assert db_session.get(Ticket, world["triage"].id).assignee_id == world["agent"].id
    assert db_session.get(Ticket, world["billing_ticket"].id).assignee_id is None


def test_bulk_priority_and_transition(agent_client, world, db_session):
    token = csrf_token(agent_client, "/agent/")
    ids = [world["mine"].id, world["theirs"].id]
    response = agent_client.post(
        "/agent/bulk",
        data={"csrf_token": token, "ticket_ids": ids, "action": "set_priority", "value": "high"},
    )
    assert "2 of 2 tickets changed" in response.get_data(as_text=True)
    response = agent_client.post(
        "/agent/bulk",
        data={"csrf_token": token, "ticket_ids": ids, "action": "transition", "value": "start"},
    )
    assert "2 of 2 tickets changed" in response.get_data(as_text=True)
    again = agent_client.post(
        "/agent/bulk",
        data={"csrf_token": token, "ticket_ids": ids[:1], "action": "transition", "value": "start"},
    )
    assert "0 of 1 ticket changed" in again.get_data(as_text=True)
    db_session.expire_all()
    changed = db_session.get(Ticket, world["mine"].id)
    assert (changed.priority, changed.status) == (Priority.HIGH, "open")


def test_bulk_with_bad_input_keeps_the_selection(agent_client, world):
    response = agent_client.post(
        "/agent/bulk",
        data={
            "csrf_token": csrf_token(agent_client, "/agent/"),
            "ticket_ids": [world["mine"].id],
            "action": "set_priority",
            "value": "extreme",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The bulk action was not applied." in html
    assert f'value="{world["mine"].id}" id="select-{world["mine"].id}"' in html
    assert re.search(rf'id="select-{world["mine"].id}"\s+aria-label="[^"]*" checked', html)


def test_bulk_as_json(agent_client, world):
    token = csrf_token(agent_client, "/agent/")
    response = agent_client.post(
        "/agent/bulk",
        json={"ticket_ids": [world["triage"].id], "action": "set_priority", "value": "low"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert response.get_json()["results"][0] == {
        "ticket_id": world["triage"].id,
        "ok": True,
        "status": 200,
        "message": "",
    }


def test_bulk_without_csrf_token_is_refused(agent_client, world, db_session):
    response = agent_client.post(
        "/agent/bulk",
        data={"ticket_ids": [world["triage"].id], "action": "set_priority", "value": "low"},
    )
    assert response.status_code == 400
    db_session.expire_all()
    assert db_session.get(Ticket, world["triage"].id).priority == Priority.NORMAL


def test_customers_are_redirected_away(client, world, fresh_login_limit):
    client = client
    web_login(client, world["customer"])
    for url in ("/agent/", "/agent/rows?ids=1"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/agent" not in response.headers["Location"]


def test_logged_out_users_go_to_login(client, world):
    response = client.get("/agent/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_row_fragment_returns_only_visible_matching_tickets(agent_client, world):
    ids = ",".join(str(world[k].id) for k in ("mine", "triage", "billing_ticket"))
    response = agent_client.get(f"/agent/rows?ids={ids}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert row_ids(html) == {world["mine"].id, world["triage"].id}
    assert "Billing secret refund" not in html
    # With the page's filters: a ticket assigned away no longer belongs in "Unassigned".
    unassigned = agent_client.get(f"/agent/rows?ids={ids}&view=unassigned")
    assert row_ids(unassigned.get_data(as_text=True)) == {world["triage"].id}
    # Without ids: the first page, for resyncing after a reconnect.
    page = agent_client.get("/agent/rows?view=mine")
    assert row_ids(page.get_data(as_text=True)) == {world["mine"].id}
    assert agent_client.get("/agent/rows?priority=extreme").status_code == 422


def test_sla_badges_and_filter(agent_client, world, db_session):
    """Every ticket's clocks start when it is opened; set them to what each row should show."""
    now = utcnow()
    due = {
        world["mine"].id: now - timedelta(minutes=5),
        world["theirs"].id: now + timedelta(hours=5),
    }
    for clock in db_session.scalars(select(SlaClock)):
        if clock.ticket_id in due:
            clock.due_at, clock.warn_at = due[clock.ticket_id], None
        else:  # answered and solved long ago: no clock runs
            clock.stopped_at, clock.due_at, clock.warn_at = now, None, None
    db_session.commit()
    html = agent_client.get("/agent/").get_data(as_text=True)
    assert "sla sla-breached" in html and "overdue" in html
    assert "sla sla-on_track" in html and "left" in html
    assert 'data-due="' in html
    breached = agent_client.get("/agent/?sla=breached").get_data(as_text=True)
    assert row_ids(breached) == {world["mine"].id}
    none = agent_client.get("/agent/?sla=none").get_data(as_text=True)
    assert row_ids(none) == {world["unassigned"].id, world["triage"].id}


def test_empty_state(agent_client):
    html = agent_client.get("/agent/?q=nothing-matches-this").get_data(as_text=True)
    assert 'id="queue-empty">' in html
    assert "Nothing matches these filters" in html


def test_organization_filter_lists_the_tickets_of_its_customers(agent_client, world, factory):
    admin = factory.admin()
    acme = organizations.do_create_organization(admin, name="Acme Ltd")
    organizations.do_add_member(admin, acme.id, world["customer"].id)
    stranger = factory.customer()
    other = factory.ticket(stranger, subject="Not Acme's")

    page = agent_client.get(f"/agent/?organization_id={acme.id}").get_data(as_text=True)

    assert f'<option value="{acme.id}" selected>Acme Ltd</option>' in page
    assert row_ids(page) == {world[k].id for k in ("mine", "theirs", "unassigned", "triage")}
    assert other.id in row_ids(agent_client.get("/agent/").get_data(as_text=True))
    bad = agent_client.get("/agent/?organization_id=abc")
    assert bad.status_code == 422
    assert "Choose an organization from the list." in bad.get_data(as_text=True)
