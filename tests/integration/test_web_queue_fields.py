"""Custom fields in the agent's queue: shown as columns, filtered by (options, yes/no,
ranges), sorted by, kept in saved views; bad ones are messages at their filter, never a 500;
the page's statement count does not grow with its rows."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from autocrm.fields import definitions
from tests.factories import csrf_token, web_login
from tests.integration.test_query_counts import statements_for
from web import queue_export


def row_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-ticket-id="(\d+)"', page)]


def cells(page: str, key: str) -> list[str]:
    found = re.findall(rf'<td class="col-field" data-field="{key}">([^<]*)</td>', page)
    return [html.unescape(c) for c in found]


@pytest.fixture
def world(factory):
    admin = factory.admin()
    for body in (
        {
            "key": "severity",
            "label": "Severity",
            "type": "dropdown",
            "options": [{"value": "low", "label": "Low"}, {"value": "high", "label": "High!"}],
        },
        {"key": "seats", "label": "Seats", "type": "number"},
        {"key": "vip", "label": "VIP", "type": "checkbox"},
        {"key": "due", "label": "Due", "type": "date"},
    ):
        definitions.do_create_field(admin, body)
    team = factory.team("Support")
    agent = factory.agent(team, name="Alex Agent")
    customer = factory.customer()

    def ticket(subject: str, **fields):
        return factory.ticket(customer, team=team, subject=subject, fields=fields).id

    return {
        "agent": agent,
        "team": team,
        "big": ticket("Big", severity="high", seats=120, vip=True, due="2026-03-01"),
        "small": ticket("Small", severity="low", seats=3, vip=False),
        "none": ticket("Nothing set"),
    }


@pytest.fixture
def agent_client(client, world, fresh_login_limit):
    web_login(client, world["agent"])
    return client


def test_field_columns_show_each_tickets_value(agent_client, world):
    page = agent_client.get("/agent/?view=all&columns=severity&columns=vip&sort=-field.seats")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert row_ids(text) == [world["big"], world["small"], world["none"]]
    assert '<th scope="col" class="col-field" data-field-column="severity">Severity</th>' in text
    assert cells(text, "severity") == ["High!", "Low", ""]
    assert cells(text, "vip") == ["Yes", "No", ""]
    assert cells(text, "seats") == [], "only the chosen columns"
    # The rows queue.js fetches carry the same cells.
    rows = agent_client.get(f"/agent/rows?view=all&columns=seats&ids={world['big']}")
    assert cells(rows.get_data(as_text=True), "seats") == ["120"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("field.severity=high", ["big"]),
        ("field.vip=false", ["small"]),
        ("field.seats.min=4", ["big"]),
        ("field.seats.max=100&field.seats.min=1", ["small"]),
        ("field.due.min=2026-01-01", ["big"]),
        ("field.severity=", ["none", "small", "big"]),  # "Any"
    ],
)
def test_field_filters_narrow_the_queue(agent_client, world, query, expected):
    page = agent_client.get(f"/agent/?view=all&sort=-created_at&{query}")
    assert page.status_code == 200
    assert row_ids(page.get_data(as_text=True)) == [world[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("field.seats.min=lots", "Seats: Must be a whole number."),
        ("field.nope=1", "nope: Unknown field."),
        ("field.severity=medium", "Unknown option"),
        ("columns=nope", "Unknown field &#39;nope&#39; in the columns."),
        ("sort=field.nope", "Choose a sort order from the list."),
    ],
)
def test_bad_field_filters_are_messages_not_500s(agent_client, world, query, message):
    page = agent_client.get(f"/agent/?view=all&{query}")
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)


def test_a_saved_view_keeps_field_filters_columns_and_sort(agent_client, world):
    token = csrf_token(agent_client, "/agent/")
    response = agent_client.post(
        "/agent/views?view=all&field.seats.min=1&columns=&columns=seats&sort=field.seats",
        data={"csrf_token": token, "name": "Seated", "scope": "personal"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    page = agent_client.get(response.headers["Location"]).get_data(as_text=True)
    assert '<h1 id="queue-title">Seated</h1>' in page
    assert row_ids(page) == [world["small"], world["big"]]
    assert cells(page, "seats") == ["3", "120"]
    assert '<option value="field.seats" selected>' in page


def test_the_queue_with_field_columns_costs_the_same_for_2_rows_or_12(client, world, factory):
    small, large = factory.team("Small"), factory.team("Large")
    agent = factory.agent(small, large)
    customer = factory.customer()
    for team, rows in ((small, 2), (large, 12)):
        for n in range(rows):
            fields = {"seats": n, "severity": "low", "vip": True, "due": "2026-01-02"}
            factory.ticket(customer, team=team, subject=f"Row {n}", fields=fields)
    web_login(client, agent)
    columns = "columns=severity&columns=seats&columns=vip&columns=due&sort=-field.seats"
    urls = [
        f"/agent/?view=all&team_id={team.id}&field.vip=true&{columns}" for team in (small, large)
    ]
    few = statements_for(client, urls[0], shows='data-field="due">2026-01-02<')
    many = statements_for(client, urls[1])
    assert few == many
    assert many <= 30, "the queue's own statements, and the field definitions a few times"


# -- CSV export ----------------------------------------------------------------------------------


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_csv_export_is_the_queue_every_page_with_field_columns(
    agent_client, world, factory, monkeypatch
):
    monkeypatch.setattr(queue_export, "EXPORT_PAGE", 2)  # three tickets: two pages
    hidden = factory.team("Hidden")
    factory.ticket(factory.customer(), team=hidden, subject="Not yours", fields={"seats": 7})
    rows = read_csv(agent_client.get("/agent/tickets.csv?view=all&sort=-field.seats"))
    assert [r["Subject"] for r in rows] == ["Big", "Small", "Nothing set"]
    assert [r["Seats"] for r in rows] == ["120", "3", ""]
    assert [r["Severity"] for r in rows] == ["High!", "Low", ""]
    assert rows[0]["VIP"] == "Yes" and rows[0]["Due"] == "2026-03-01"
    assert rows[0]["Team"] == "Support" and rows[0]["Ticket"] == str(world["big"])
    narrowed = read_csv(agent_client.get("/agent/tickets.csv?view=all&field.seats.max=10"))
    assert [r["Subject"] for r in narrowed] == ["Small"]


def test_the_csv_export_keeps_formulas_as_text(agent_client, world, factory):
    customer = factory.customer()
    factory.ticket(customer, team=world["team"], subject='=HYPERLINK("http://x")')
    factory.ticket(customer, team=world["team"], subject="@SUM(A1)", fields={"seats": -3})
    rows = read_csv(agent_client.get("/agent/tickets.csv?view=all&sort=-created_at"))
    assert rows[0]["Subject"] == "'@SUM(A1)" and rows[0]["Seats"] == "'-3"
    assert rows[1]["Subject"] == '\'=HYPERLINK("http://x")'


def test_the_csv_export_with_bad_filters_is_the_page_with_messages(agent_client, world):
    response = agent_client.get("/agent/tickets.csv?view=all&field.seats.min=lots")
    assert response.status_code == 422
    assert "Must be a whole number." in response.get_data(as_text=True)
    assert agent_client.get("/agent/tickets.csv?view=all&sort=field.nope").status_code == 422
    whole = agent_client.get("/agent/tickets.csv?view=all&cursor=forged")
    assert len(read_csv(whole)) == 3, "the export is every page, whatever page one was on"


# -- the reports page ----------------------------------------------------------------------------


def test_the_reports_page_groups_by_a_dropdown_field(client, world, factory, fresh_login_limit):
    web_login(client, factory.admin())
    page = client.get(f"/reports/teams?group_by=severity&team_id={world['team'].id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<h2 id="field-table-title">By Severity</h2>' in text
    rows = re.findall(
        r'<tr data-team-id="\d+" data-option="(\w*)">\s*<td>Support</td>\s*<th scope="row">'
        r'([^<]+)</th>\s*<td class="num" data-key="created">(\d+)</td>',
        text,
    )
    assert rows == [("low", "Low", "1"), ("high", "High!", "1"), ("", "No value", "1")]
    for bad in ("seats", "nope"):
        refused = client.get(f"/reports/teams?group_by={bad}")
        assert refused.status_code == 422
        assert "Choose a dropdown field from the list." in refused.get_data(as_text=True)


def test_a_view_filtering_by_a_field_deleted_since_says_so_and_the_queue_still_opens(
    agent_client, world, factory
):
    admin = factory.admin()
    spare = definitions.do_create_field(admin, {"key": "spare", "label": "Spare", "type": "text"})
    token = csrf_token(agent_client, "/agent/")
    saved = agent_client.post(
        "/agent/views?view=all&field.spare=x",
        data={"csrf_token": token, "name": "Spare x", "scope": "personal"},
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    definitions.do_delete_field(admin, spare.id)
    assert agent_client.get("/agent/").status_code == 200
    stale = agent_client.get(saved.headers["Location"])
    assert stale.status_code == 422
    assert "spare: Unknown field." in stale.get_data(as_text=True)
