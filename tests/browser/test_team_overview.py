"""TeamOverview in the browser on the seeded demo data (weeks of past tickets): the charts are
drawn with data, the table and the CSV download agree with ``reports.team_report``; a team lead
sees only their team; an agent who leads no team gets the forbidden page.
"""

from __future__ import annotations

import csv
import re
import uuid
from datetime import date
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.people import teams, users
from autocrm.people.models import Role, Team, User
from autocrm.reports import services as reports
from tests import processes
from tests.browser.conftest import PAGE_MS, ContextFactory, DemoUsers, LiveServer, Screenshot
from web.reports import CSV_COLUMNS, duration, percent, rating

CHARTS = ("backlog", "volume", "sla", "firstResponse", "resolution", "csat", "workload")
# Per chart: its type, how many datasets, and how many points each holds and how many are not
# null, read from the Chart.js instances team_overview.js keeps on window.AutoCRMReports.
CHART_STATE = """() => {
  const charts = (window.AutoCRMReports || {}).charts || {};
  const out = {};
  for (const [key, chart] of Object.entries(charts)) {
    out[key] = {
      type: chart.config.type,
      labels: chart.data.labels.length,
      datasets: chart.data.datasets.map((d, i) => ({
        label: d.label,
        points: d.data.length,
        values: d.data.filter((v) => v !== null && v !== undefined).length,
        drawn: chart.getDatasetMeta(i).data.length,
      })),
      width: chart.width,
      height: chart.height,
    };
  }
  return out;
}"""


def _report(live_server: LiveServer, email: str, start: str, end: str) -> dict[str, Any]:
    with live_server.data():
        return processes.snapshot(
            lambda: reports.team_report(
                db.session.scalar(select(User).where(User.email == email)),
                start=date.fromisoformat(start),
                end=date.fromisoformat(end),
            )
        )


def _open(page: Page) -> tuple[str, str]:
    """Open the page, wait for its charts; returns the period it shows."""
    response = page.goto("/reports/teams")
    assert response is not None and response.status == 200
    page.wait_for_function(
        f"() => window.AutoCRMReports && Object.keys(window.AutoCRMReports.charts).length"
        f" === {len(CHARTS)}",
        timeout=PAGE_MS,
    )
    return page.locator("#r-start").input_value(), page.locator("#r-end").input_value()


def _table(page: Page, table_id: str) -> dict[str, dict[str, str]]:
    """Row key (data-team-id or team:user) -> {data-key: cell text as read aloud}."""
    return page.evaluate(
        """(id) => {
          const out = {};
          for (const row of document.querySelectorAll(`#${id} tbody tr`)) {
            const key = row.dataset.userId ? `${row.dataset.teamId}:${row.dataset.userId}`
                                           : row.dataset.teamId;
            out[key] = {};
            for (const cell of row.querySelectorAll("[data-key]")) {
              const copy = cell.cloneNode(true);
              copy.querySelectorAll("[aria-hidden=true]").forEach((el) => el.remove());
              out[key][cell.dataset.key] = copy.textContent.trim();
            }
          }
          return out;
        }""",
        table_id,
    )


def _shown(text: str) -> str:
    return "no data" if text == "\u2014" else text  # the dash reads "no data" (hidden label)


def _as_percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def test_admin_sees_charts_table_and_csv_that_agree_with_the_report(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    # Reduced motion: the charts draw at once (no animation caught half-way in screenshots).
    page = new_context.logged_in(
        demo.admin.email, demo.admin.password, 1280, 900,
        accept_downloads=True, reduced_motion="reduce",
    )  # fmt: skip
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Team overview", level=1)).to_be_visible()
    start, end = _open(page)
    report = _report(live_server, demo.admin.email, start, end)
    expect(page.get_by_text("business hours only")).to_be_visible()

    # Every chart is drawn, with data points in each dataset.
    state = page.evaluate(CHART_STATE)
    assert set(state) == set(CHARTS)
    assert state["backlog"]["type"] == "line"
    assert state["backlog"]["labels"] == len(report["teams"][0]["backlog_trend"]) == 30
    # One line per team: the demo's, and any team other browser tests created before this one.
    backlog_lines = [d["label"] for d in state["backlog"]["datasets"]]
    assert backlog_lines == [t["team_name"] for t in report["teams"]]
    assert backlog_lines[:2] == ["Support", "Billing"]
    for key, chart in state.items():
        assert chart["width"] > 100 and chart["height"] > 100, key
        for dataset in chart["datasets"]:
            assert dataset["values"] > 0 and dataset["drawn"] == dataset["points"], (key, dataset)
    assert state["workload"]["labels"] == sum(len(t["agents"]) for t in report["teams"])

    # The tables hold the report's numbers.
    team_rows = _table(page, "team-table")
    for t in report["teams"]:
        assert team_rows[str(t["team_id"])] == {
            "created": str(t["created"]),
            "solved": str(t["solved"]),
            "backlog_now": str(t["backlog_now"]),
            "first_response_p50": _shown(duration(t["first_response_seconds_p50"])),
            "first_response_p90": _shown(duration(t["first_response_seconds_p90"])),
            "resolution_p50": _shown(duration(t["resolution_seconds_p50"])),
            "resolution_p90": _shown(duration(t["resolution_seconds_p90"])),
            "sla_compliance": _shown(percent(t["sla_compliance_percent"])),
            "sla_clocks": str(t["sla_clocks_stopped"]),
            "csat_average": _shown(rating(t["csat_average"])),
            "csat_ratings": str(t["csat_ratings"]),
            "csat_response_rate": _shown(percent(_as_percent(t["csat_response_rate"]), 0)),
        }
    agent_rows = _table(page, "agent-table")
    expected_agents = {
        f"{t['team_id']}:{a['user_id']}": {
            "open_assigned": str(a["open_assigned"]),
            "solved": str(a["solved"]),
            "first_response_p50": _shown(duration(a["first_response_seconds_p50"])),
        }
        for t in report["teams"]
        for a in t["agents"]
    }
    assert agent_rows == expected_agents

    # The CSV download holds the same numbers, one row per team and per agent.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"team-overview-{start}-to-{end}.csv"
    with download.path().open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_team = {r["Team ID"]: r for r in rows if r["Row type"] == "team"}
    for t in report["teams"]:
        row = by_team[str(t["team_id"])]
        assert row["Created"] == str(t["created"]) and row["Solved"] == str(t["solved"])
        assert row["Backlog now"] == str(t["backlog_now"])
        assert row["First response p50 (business seconds)"] == _cell(
            t["first_response_seconds_p50"]
        )
        assert row["Resolution p90 (business seconds)"] == _cell(t["resolution_seconds_p90"])
        assert row["SLA compliance (%)"] == _cell(t["sla_compliance_percent"])
        assert row["CSAT average (1-5)"] == _cell(t["csat_average"])
        assert row["CSAT response rate (0-1)"] == _cell(t["csat_response_rate"])
    agents_csv = {
        f"{r['Team ID']}:{r['Agent ID']}": (
            r["Open assigned now"],
            r["Solved"],
            r["First response p50 (business seconds)"],
        )
        for r in rows
        if r["Row type"] == "agent"
    }
    assert agents_csv == {
        f"{t['team_id']}:{a['user_id']}": (
            str(a["open_assigned"]),
            str(a["solved"]),
            _cell(a["first_response_seconds_p50"]),
        )
        for t in report["teams"]
        for a in t["agents"]
    }

    screenshot(page, "team-overview-admin-1280")
    phone = new_context.logged_in(
        demo.admin.email, demo.admin.password, 375, reduced_motion="reduce"
    )
    _open(phone)
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width}px)"
    screenshot(phone, "team-overview-admin-375")


def test_a_team_lead_sees_only_their_team_and_a_bad_period_is_explained(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    page = new_context.logged_in(demo.agent.email, demo.agent.password)  # leads Support
    _open(page)

    options = page.locator("#r-team_id option").all_inner_texts()
    assert options == ["All my teams", "Support"]
    assert page.locator("#team-table tbody tr").count() == 1
    expect(page.locator("#team-table tbody th")).to_have_text("Support")
    assert page.evaluate("() => window.AutoCRMReports.charts.volume.data.labels") == ["Support"]
    expect(page.get_by_text("Billing", exact=True)).to_have_count(0)

    # A preset, then a period that ends before it starts: the message sits at the field.
    page.get_by_role("link", name="Last 7 days").click()
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "true")
    page.wait_for_function(
        "() => window.AutoCRMReports && window.AutoCRMReports.charts.backlog"
        " && window.AutoCRMReports.charts.backlog.data.labels.length === 7"
    )
    start = page.locator("#r-start").input_value()
    page.locator("#r-end").fill("2024-01-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#r-end-error")).to_have_text(
        "The last day must not be before the first day."
    )
    expect(page.locator("#r-end")).to_have_value("2024-01-01")
    expect(page.locator("#r-start")).to_have_value(start)
    expect(page.locator("#r-end")).to_have_attribute("aria-invalid", "true")


def test_an_agent_who_leads_no_team_gets_the_forbidden_page(
    new_context: ContextFactory, live_server: LiveServer
) -> None:
    email, password = f"member-{uuid.uuid4().hex[:10]}@example.test", "member-pass-123"
    with live_server.data():
        support = db.session.scalar(select(Team).where(Team.name == "Support"))
        member = users.create_user(email, password, Role.AGENT, "Mo Member")
        teams.add_member(support, member)
        db.session.commit()
    page = new_context.logged_in(email, password)

    expect(page.get_by_role("link", name="Reports")).to_have_count(0)
    response = page.goto("/reports/teams")
    assert response is not None and response.status == 403
    expect(
        page.get_by_role("heading", name="Reports are for admins and team leads")
    ).to_be_visible()
    expect(page.locator("canvas")).to_have_count(0)
    assert re.search(r"lead no team", page.locator("main").inner_text())
