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
from autocrm.tickets import search
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
    response = agent_client.get("/agent/?view=all")
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
        ("view=my_unsolved", {"mine"}),
        ("view=unassigned_my_teams", {"unassigned"}),
        ("view=all&priority=urgent", {"unassigned"}),
        ("view=all&tag=printer", {"mine"}),
        ("view=all&q=INVOICE", {"theirs"}),
        ("view=all&assignee_id=none", {"unassigned", "triage"}),
        # The views of old links, and a search without a view, which looks everywhere.
        ("view=mine", {"mine"}),
        ("view=unassigned", {"unassigned", "triage"}),
        ("q=INVOICE", {"theirs"}),
        ("status=new&priority=normal&view=all&assignee_id=none", {"triage"}),
        # The form narrows the view it is on: only my tickets, then only urgent ones.
        ("view=my_unsolved&priority=urgent", set()),
        ("view=unsolved&assignee_id=" + "{colleague}", {"theirs"}),
    ],
)
def test_filters(agent_client, world, params, expected):
    params = params.replace("{colleague}", str(world["colleague"].id))
    response = agent_client.get(f"/agent/?{params}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert row_ids(response.get_data(as_text=True)) == {world[k].id for k in expected}


def test_team_filter_offers_only_the_agents_teams(agent_client, world):
    ok = agent_client.get(f"/agent/?view=all&team_id={world['support'].id}")
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
    first = agent_client.get("/agent/?view=all&sort=-created_at").get_data(as_text=True)
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
    billing_id = world["billing_ticket"].id
    assert f"Can&#39;t change #{billing_id}: it is not a ticket you can see." in html
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
    # In people's words, not the engine's.
    assert f"Can&#39;t start work #{ids[0]}: it is open." in again.get_data(as_text=True)
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
        "message": f"#{world['triage'].id}: done",
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
    response = agent_client.get(f"/agent/rows?ids={ids}&view=all")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert row_ids(html) == {world["mine"].id, world["triage"].id}
    assert "Billing secret refund" not in html
    # With the page's filters: a ticket assigned away no longer belongs in "Unassigned".
    unassigned = agent_client.get(f"/agent/rows?ids={ids}&view=all&assignee_id=none")
    assert row_ids(unassigned.get_data(as_text=True)) == {world["triage"].id}
    # Without ids: the first page, for resyncing after a reconnect.
    page = agent_client.get("/agent/rows?view=my_unsolved")
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
    html = agent_client.get("/agent/?view=all").get_data(as_text=True)
    assert "sla sla-breached" in html and "overdue" in html
    assert "sla sla-on_track" in html and "left" in html
    assert 'data-due="' in html
    breached = agent_client.get("/agent/?view=all&sla=breached").get_data(as_text=True)
    assert row_ids(breached) == {world["mine"].id}
    none = agent_client.get("/agent/?view=all&sla=none").get_data(as_text=True)
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

    page = agent_client.get(f"/agent/?view=all&organization_id={acme.id}").get_data(as_text=True)

    assert f'<option value="{acme.id}" selected>Acme Ltd</option>' in page
    assert row_ids(page) == {world[k].id for k in ("mine", "theirs", "unassigned", "triage")}
    assert other.id in row_ids(agent_client.get("/agent/?view=all").get_data(as_text=True))
    bad = agent_client.get("/agent/?organization_id=abc")
    assert bad.status_code == 422
    assert "Choose an organization from the list." in bad.get_data(as_text=True)


# -- views in the sidebar ---------------------------------------------------------------------


def view_link(html: str, view_id: str) -> str:
    match = re.search(rf'<a href="[^"]*" data-view-id="{view_id}"[^>]*>.*?</a>', html, re.S)
    assert match, f"no sidebar link to view {view_id}"
    return match.group(0)


def count_in(link: str) -> int:
    match = re.search(r'data-count-for="[^"]+"><span class="visually-hidden">, </span>(\d+)', link)
    assert match, link
    return int(match.group(1))


def test_the_queue_opens_on_my_unsolved_with_counts_in_the_sidebar(agent_client, world):
    tickets.do_transition(world["agent"], world["theirs"].id, "solve")
    response = agent_client.get("/agent/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert row_ids(html) == {world["mine"].id}
    assert 'aria-current="page"' in view_link(html, "my_unsolved")
    assert 'aria-current="page"' not in view_link(html, "all")
    assert count_in(view_link(html, "my_unsolved")) == 1
    assert count_in(view_link(html, "unsolved")) == 3  # mine, unassigned, triage
    assert count_in(view_link(html, "recently_solved")) == 1
    assert count_in(view_link(html, "all")) == 4
    assert '<h1 id="queue-title">My unsolved</h1>' in html
    counts = agent_client.get("/agent/view-counts").get_json()
    assert counts["my_unsolved"] == 1 and counts["all"] == 4
    assert agent_client.get("/agent/?view=nonsense").status_code == 422


def test_rows_show_the_requester_and_organization(agent_client, world, factory):
    admin = factory.admin()
    acme = organizations.do_create_organization(admin, name="Acme Ltd")
    organizations.do_add_member(admin, acme.id, world["customer"].id)
    html = agent_client.get("/agent/").get_data(as_text=True)
    assert '<th scope="col" class="col-requester">Requester</th>' in html
    row = re.search(rf'<tr data-ticket-id="{world["mine"].id}".*?</tr>', html, re.S)
    assert row and world["customer"].name in row.group(0) and "Acme Ltd" in row.group(0)


def test_a_search_view_with_more_tickets_than_it_counts_shows_a_plus(
    agent_client, world, factory, monkeypatch
):
    # A search counts up to search.COUNT_LIMIT (1000; 1 here), then says "more than that".
    monkeypatch.setattr(search, "COUNT_LIMIT", 1)
    another = factory.ticket(world["customer"], team=world["support"], subject="Printer again")
    token = csrf_token(agent_client, "/agent/")
    response = agent_client.post(
        "/agent/views?view=all&q=printer",
        data={"csrf_token": token, "name": "Printers", "scope": "personal"},
    )
    assert response.status_code == 302
    view_id = re.search(r"view=(\d+)", response.headers["Location"]).group(1)
    page = agent_client.get(response.headers["Location"]).get_data(as_text=True)
    assert row_ids(page) == {world["mine"].id, another.id}  # every match still listed
    link = view_link(page, view_id)
    assert '<span class="visually-hidden">, </span>1+<span class="visually-hidden">' in link
    assert "Printers (1+)" in page  # the views drawer's summary on a phone
    counts = agent_client.get("/agent/view-counts").get_json()
    assert counts[view_id] == "1+" and counts["all"] == 5  # no search: counted exactly


def test_save_current_filters_as_a_personal_view(agent_client, world):
    token = csrf_token(agent_client, "/agent/")
    response = agent_client.post(
        "/agent/views?view=all&priority=urgent",
        data={"csrf_token": token, "name": "Urgent ones", "scope": "personal"},
    )
    assert response.status_code == 302
    target = response.headers["Location"]
    page = agent_client.get(target).get_data(as_text=True)
    assert row_ids(page) == {world["unassigned"].id}
    assert '<h1 id="queue-title">Urgent ones</h1>' in page
    view_id = re.search(r"view=(\d+)", target).group(1)
    assert count_in(view_link(page, view_id)) == 1
    # Someone else neither sees it in their sidebar nor opens it.
    other = world["colleague"]
    agent_client.post("/logout", data={"csrf_token": csrf_token(agent_client, "/agent/")})
    web_login(agent_client, other)
    theirs = agent_client.get("/agent/").get_data(as_text=True)
    assert f'data-view-id="{view_id}"' not in theirs
    assert agent_client.get(f"/agent/?view={view_id}").status_code == 422


def test_saving_a_view_with_a_scope_one_may_not_use_says_why(agent_client, world):
    token = csrf_token(agent_client, "/agent/")
    refused = agent_client.post(
        "/agent/views?view=all", data={"csrf_token": token, "name": "Everyone", "scope": "global"}
    )
    assert refused.status_code == 403
    assert "Only administrators make views for everyone." in refused.get_data(as_text=True)
    nameless = agent_client.post(
        "/agent/views?view=all", data={"csrf_token": token, "name": "", "scope": "personal"}
    )
    assert nameless.status_code == 422
    assert "Give the view a name" in nameless.get_data(as_text=True)


def test_team_views_are_shared_with_the_team_and_deleted_by_it(agent_client, world):
    token = csrf_token(agent_client, "/agent/")
    response = agent_client.post(
        "/agent/views?view=unsolved",
        data={
            "csrf_token": token,
            "name": "Support queue",
            "scope": "team",
            "team_id": str(world["support"].id),
        },
    )
    assert response.status_code == 302
    view_id = re.search(r"view=(\d+)", response.headers["Location"]).group(1)
    agent_client.post("/logout", data={"csrf_token": token})
    web_login(agent_client, world["colleague"])
    page = agent_client.get(f"/agent/?view={view_id}").get_data(as_text=True)
    assert "Team views" in page and 'aria-current="page"' in view_link(page, view_id)
    deleted = agent_client.post(
        f"/agent/views/{view_id}/delete", data={"csrf_token": csrf_token(agent_client, "/agent/")}
    )
    assert deleted.status_code == 302
    assert agent_client.get(f"/agent/?view={view_id}").status_code == 422


def test_rows_carry_the_transitions_bulk_actions_may_offer(agent_client, world):
    html = agent_client.get("/agent/?view=all").get_data(as_text=True)
    row = re.search(rf'<tr data-ticket-id="{world["mine"].id}"[^>]*>', html).group(0)
    assert 'data-transitions="start solve"' in row


def test_bulk_apply_with_nothing_selected_says_so(agent_client, world):
    response = agent_client.post(
        "/agent/bulk",
        data={
            "csrf_token": csrf_token(agent_client, "/agent/"),
            "action": "set_priority",
            "value": "high",
        },
    )
    assert response.status_code == 422
    assert "Select at least one ticket." in response.get_data(as_text=True)
