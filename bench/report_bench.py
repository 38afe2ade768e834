"""Team report latency at 10k and at 1M tickets, in process, on PostgreSQL or SQLite.

A benchmark that prints figures, not a test. It creates a fresh database (PostgreSQL: uniquely
named, dropped at the end, pass or fail; SQLite: a file in a temp dir, deleted at the end),
migrates it, creates an admin, a customer and ``--teams`` teams of ``--agents`` agents through
the services, then bulk-loads generated history (see ``history``) and times
``reports.team_report`` for the admin (every team) over the last 30 days: median and p90 over
``--runs`` calls per table size, the 1M/10k ratio of the medians, and each SQL statement's
median. ``--explain`` prints EXPLAIN ANALYZE (PostgreSQL) / EXPLAIN QUERY PLAN (SQLite) of
every statement at each size.

    .venv/bin/python bench/report_bench.py                       # PostgreSQL, 10k and 1M
    .venv/bin/python bench/report_bench.py --sqlite --sizes 10000,1000000
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import DEFAULT_PG_ADMIN_URL, fresh_pg_database, in_process_app

from autocrm.extensions import db
from autocrm.people import teams, users
from autocrm.people.models import Role
from autocrm.reports import services as reports
from autocrm.sla import clocks as sla
from autocrm.sla.models import SlaClock
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Feedback, Ticket
from workflows.calendar import BusinessCalendar, add_business_time, business_seconds_between

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
CHUNK = 20_000
DAY = 86400.0
# The default workflow's SLA targets (business minutes) per priority 1..4 (low..urgent).
TARGETS = {
    1: {"first_response": 1440, "resolution": 5760},
    2: {"first_response": 480, "resolution": 2880},
    3: {"first_response": 240, "resolution": 1440},
    4: {"first_response": 60, "resolution": 480},
}
PRIORITY_WEIGHTS = [20, 55, 20, 5]
RATING_WEIGHTS = [5, 5, 10, 30, 50]


# -- the default workflow's calendar, in closed form -------------------------------------------

# UTC, Monday to Friday 08:00-18:00, no holidays (workflows/default.yaml). The loader needs the
# business seconds of ~2M spans; ``business_clock`` gives them by subtraction, and ``seed``
# checks it against workflows.calendar on random spans before anything is loaded.
OPEN_FROM, OPEN_UNTIL = 8 * 3600, 18 * 3600
A_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


def business_clock(moment: datetime) -> float:
    """Business seconds from Monday 1970-01-05 00:00 UTC to ``moment``."""
    weeks, rest = divmod((moment - A_MONDAY).total_seconds(), 7 * DAY)
    day, second = divmod(rest, DAY)
    today = 0.0 if day >= 5 else min(max(second - OPEN_FROM, 0.0), OPEN_UNTIL - OPEN_FROM)
    return weeks * 5 * (OPEN_UNTIL - OPEN_FROM) + min(day, 5) * (OPEN_UNTIL - OPEN_FROM) + today


def check_business_clock(calendar: BusinessCalendar) -> None:
    rng = random.Random(7)
    for _ in range(300):
        start = A_MONDAY + timedelta(seconds=rng.randrange(int(2e9)))
        end = start + timedelta(seconds=rng.randrange(int(60 * DAY)))
        exact = business_seconds_between(start, end, calendar)
        if abs(exact - (business_clock(end) - business_clock(start))) > 1e-6:
            raise SystemExit(
                f"bench/report_bench.py: business_clock disagrees with the default workflow's "
                f"calendar on {start} .. {end} ({exact}); update it to workflows/default.yaml."
            )


# -- generated history -----------------------------------------------------------------------


class History:
    """Tickets arriving at a steady ``per_day`` rate going back from ``now``.

    Ticket ``g`` (0 = the newest) is created ``g / per_day`` days before ``now``, so growing the
    table from 10k to 1M adds older history and leaves the report's last 30 days alone: a
    report that is fast at 10k and slow at 1M scales with history, not with the period. Ids
    grow with created_at, as they would have. Per ticket (seeded per chunk, reproducible):
    - a team and one of its agents; a priority (20% low, 55% normal, 20% high, 5% urgent);
    - a first response 1 minute to 24 hours after creation (log-uniform);
    - 94.9% are solved 10 minutes to 7 days after creation (log-uniform, after the first
      response), 3% after 7 to 60 days (waiting on someone), 2% are closed without a reply or
      solve (spam, 30 to 600 minutes after creation) and 0.1% are never solved (forgotten);
    - solved more than 4 days before ``now``: closed (auto-close); not yet due: open, pending
      or new (no response yet, half of them unassigned): the open backlog is a few days of
      intake plus the forgotten ones;
    - business seconds of both durations in the default calendar;
    - a rating for 20% of the solved (mostly 4-5 stars), and first-response and resolution SLA
      clocks on 70% (targets per priority, breached when the business time exceeds them).
    """

    def __init__(self, params: dict[str, Any], per_day: int, total: int) -> None:
        self.now: datetime = params["now"]
        self.calendar: BusinessCalendar = params["calendar"]
        self.version_id: int = params["workflow_version_id"]
        self.requester_id: int = params["requester_id"]
        self.team_agents: list[tuple[int, list[int]]] = params["team_agents"]
        self.spacing = DAY / per_day
        self.first_id = params["max_ticket_id"] + 1
        self.total = total

    def created_at(self, g: int) -> datetime:
        return self.now - timedelta(seconds=round((g + 1) * self.spacing))

    def chunk(self, lo: int, hi: int) -> tuple[list[dict], list[dict], list[dict]]:
        rng = random.Random(lo)
        rows, clocks, ratings = [], [], []
        for g in range(lo, hi):
            ticket = self._ticket(g, rng)
            rows.append(ticket)
            if ticket["solved_at"] and rng.random() < 0.2:
                ratings.append(
                    {
                        "ticket_id": ticket["id"],
                        "author_id": self.requester_id,
                        "rating": rng.choices(range(1, 6), RATING_WEIGHTS)[0],
                        "comment": "",
                        "created_at": ticket["solved_at"],
                    }
                )
            if rng.random() < 0.7:
                clocks += self._clocks(ticket)
        return rows, clocks, ratings

    def _ticket(self, g: int, rng: random.Random) -> dict[str, Any]:
        created = self.created_at(g)
        team_id, agents = self.team_agents[rng.randrange(len(self.team_agents))]
        fate = rng.random()
        kind = (
            "forgotten"
            if fate < 0.001
            else "spam"
            if fate < 0.021
            else "slow"
            if fate < 0.051
            else "usual"
        )
        responded: datetime | None = created + timedelta(
            minutes=math.exp(rng.uniform(0, math.log(1440)))
        )
        solved = closed = None
        if kind == "spam":
            responded = None
            closed = created + timedelta(minutes=rng.uniform(30, 600))
        elif kind == "slow":
            solved = created + timedelta(days=rng.uniform(7, 60))
        elif kind == "usual":
            minutes = math.exp(rng.uniform(math.log(10), math.log(10080)))
            solved = max(created + timedelta(minutes=minutes), responded)
        responded, solved, closed = (
            t if t and t <= self.now else None for t in (responded, solved, closed)
        )
        if solved is not None and solved + timedelta(days=4) <= self.now:
            closed = solved + timedelta(days=4)
        if closed is not None:
            status = "closed"
        elif solved is not None:
            status = "solved"
        elif responded is None:
            status = "new"
        else:
            status = "pending" if rng.random() < 0.3 else "open"
        unassigned = kind == "spam" or (status == "new" and rng.random() < 0.5)
        at_last = closed or solved or responded or created
        return {
            "id": self.first_id + self.total - 1 - g,
            "subject": f"Bulk ticket #{g}",
            "description": "Generated by bench/report_bench.py.",
            "status": status,
            "category": status,
            "priority": rng.choices(range(1, 5), PRIORITY_WEIGHTS)[0],
            "channel": "web",
            "requester_id": self.requester_id,
            "assignee_id": None if unassigned else agents[rng.randrange(len(agents))],
            "team_id": team_id,
            "workflow_version_id": self.version_id,
            "created_at": created,
            "updated_at": at_last,
            "status_changed_at": at_last,
            "first_responded_at": responded,
            "solved_at": solved,
            "closed_at": closed,
            "first_response_business_seconds": self._business(created, responded),
            "resolution_business_seconds": self._business(created, solved),
            "version": 1,
        }

    @staticmethod
    def _business(start: datetime, end: datetime | None) -> float | None:
        return None if end is None else business_clock(end) - business_clock(start)

    def _clocks(self, ticket: dict[str, Any]) -> list[dict[str, Any]]:
        created = ticket["created_at"]
        done = ticket["solved_at"] or ticket["closed_at"]
        ends = {"first_response": ticket["first_responded_at"] or done, "resolution": done}
        clocks = []
        for metric, stopped in ends.items():
            target = TARGETS[ticket["priority"]][metric] * 60.0
            used = self._business(created, stopped or self.now)
            breached_at = (
                add_business_time(created, target, self.calendar) if used > target else None
            )
            clocks.append(
                {
                    "ticket_id": ticket["id"],
                    "metric": metric,
                    "workflow_version_id": self.version_id,
                    "target_seconds": target,
                    "consumed_seconds": used if stopped else 0.0,
                    "started_at": created,
                    "segment_started_at": None if stopped else created,
                    "due_at": None
                    if stopped
                    else add_business_time(created, target, self.calendar),
                    "warn_at": None,
                    "warned_at": None,
                    "breached_at": breached_at,
                    "stopped_at": stopped,
                }
            )
        return clocks


# -- the databases ---------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="report-bench-")
    try:
        print(f"SQLite database in {directory}")
        yield f"sqlite:///{directory}/bench.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def seed(n_teams: int, per_team: int) -> dict[str, Any]:
    """An admin, a customer, teams with a lead and agents, and one ticket, through the services."""
    admin = users.create_user("bench-admin@example.com", secrets.token_hex(8), Role.ADMIN)
    customer = users.create_user("bench-customer@example.com", secrets.token_hex(8), Role.CUSTOMER)
    team_agents = []
    for t in range(n_teams):
        agents = [
            users.create_user(f"agent{t}-{a}@example.com", secrets.token_hex(8), Role.AGENT)
            for a in range(per_team)
        ]
        db.session.flush()
        team = teams.create_team(f"Team {t:02d}", lead_id=agents[0].id)
        db.session.flush()
        for agent in agents[1:]:
            teams.add_member(team, agent)
        team_agents.append((team.id, [a.id for a in agents]))
    db.session.commit()
    ticket = tickets.do_create_ticket(
        admin, subject="Seed", description="Seed ticket.", requester_id=customer.id
    )
    calendar = sla.calendar_for_ticket(ticket)
    check_business_clock(calendar)
    params = {
        "admin_id": admin.id,
        "requester_id": customer.id,
        "workflow_version_id": ticket.workflow_version_id,
        "team_agents": team_agents,
        "calendar": calendar,
        "max_ticket_id": ticket.id,
        "now": ticket.created_at,
    }
    db.session.commit()  # SQLite: the loader writes on another connection
    return params


def load(history: History, lo: int, hi: int, postgres: bool) -> None:
    began = time.monotonic()
    tables = (Ticket.__table__, SlaClock.__table__, Feedback.__table__)
    for start in range(lo, hi, CHUNK):
        batches = history.chunk(start, min(start + CHUNK, hi))
        with db.engine.begin() as conn:
            if postgres:  # skip the foreign-key triggers: the generator keeps the keys right
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table, rows in zip(tables, batches, strict=True):
                if rows:
                    conn.execute(table.insert(), rows)
        done = min(start + CHUNK, hi)
        if done // 100_000 > start // 100_000 or done == hi:
            print(f"  ... {done:>9,} tickets ({time.monotonic() - began:.0f}s)", flush=True)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if postgres:
            last = history.first_id + history.total - 1
            conn.execute(text(f"SELECT setval('tickets_id_seq', {last})"))
            # What autovacuum does to a table at rest: statistics and the visibility map.
            for table in ("tickets", "feedback", "sla_clocks"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    print(f"  load {time.monotonic() - began:.1f}s")


def analyze_sqlite() -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


# -- measuring -------------------------------------------------------------------------------


class StatementLog:
    """Every SQL statement the report runs, with its parameters and duration."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, float]] = []
        self._started = 0.0

    def before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._started = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.calls.append((statement, parameters, (time.perf_counter() - self._started) * 1000))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any, float]]]:
        self.calls = []
        event.listen(db.engine, "before_cursor_execute", self.before)
        event.listen(db.engine, "after_cursor_execute", self.after)
        try:
            yield self.calls
        finally:
            event.remove(db.engine, "before_cursor_execute", self.before)
            event.remove(db.engine, "after_cursor_execute", self.after)


def run_report(admin_id: int) -> dict[str, Any]:
    from autocrm.people.models import User

    admin = db.session.get(User, admin_id)
    end = datetime.now(UTC).date()
    report = reports.team_report(admin, start=end - timedelta(days=29), end=end)
    db.session.rollback()
    return report


def measure(admin_id: int, runs: int) -> tuple[list[float], dict[str, list[float]]]:
    print("  load average before measuring: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    log = StatementLog()
    timings, per_statement = [], defaultdict(list)
    for i in range(runs + 2):
        with log.recording() as calls:
            t0 = time.perf_counter()
            report = run_report(admin_id)
            elapsed = (time.perf_counter() - t0) * 1000
        if i >= 2:  # two warm-up calls
            timings.append(elapsed)
            for n, (statement, _, ms) in enumerate(calls):
                per_statement[f"q{n + 1:02d} {label(statement)}"].append(ms)
    totals = {
        key: sum(t[key] for t in report["teams"]) for key in ("created", "solved", "backlog_now")
    }
    team = report["teams"][0]
    print(
        f"  all teams: created {totals['created']}, solved {totals['solved']}, backlog "
        f"{totals['backlog_now']}; {team['team_name']}: first response p50/p90 "
        f"{team['first_response_seconds_p50']}/{team['first_response_seconds_p90']} s, "
        f"resolution p50 {team['resolution_seconds_p50']} s, sla "
        f"{team['sla_compliance_percent']}%, csat {team['csat_average']}"
    )
    return timings, per_statement


def label(statement: str) -> str:
    flat = " ".join(statement.split())
    return flat[:90] + ("..." if len(flat) > 90 else "")


def explain(admin_id: int, postgres: bool) -> None:
    log = StatementLog()
    with log.recording() as calls:
        run_report(admin_id)
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    with db.engine.connect() as conn:  # one transaction, as the report's (SET LOCAL included)
        for n, (statement, parameters, _) in enumerate(list(calls)):
            if not statement.lstrip().upper().startswith(("SELECT", "WITH", "SET")):
                continue
            print(f"\n-- q{n + 1:02d}\n{statement}")
            if statement.lstrip().upper().startswith("SET"):
                conn.exec_driver_sql(statement, parameters)
                continue
            for row in conn.exec_driver_sql(prefix + statement, parameters):
                print("   " + " | ".join(str(col) for col in row))
        conn.rollback()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="SQLite in a temp dir")
    parser.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE after loads")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--teams", type=int, default=25)
    parser.add_argument("--agents", type=int, default=6, help="agents per team, lead included")
    parser.add_argument("--per-day", type=int, default=300, help="tickets created per day")
    parser.add_argument("--explain", action="store_true", help="query plans at each size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"python:   {platform.python_version()}; nproc={len(os.sched_getaffinity(0))}")
    print(f"autocrm:  {Path(sys.modules['autocrm'].__file__).parent}")
    print(f"command:  {' '.join(sys.argv)}")
    fresh = (
        fresh_sqlite_database()
        if args.sqlite
        else fresh_pg_database(args.pg_admin_url, "autocrm_report_bench")
    )
    with fresh as url:
        app = in_process_app(url, args.redis_url, "report-bench")
        with app.app_context():
            postgres = db.engine.dialect.name == "postgresql"
            params = seed(args.teams, args.agents)
            history = History(params, args.per_day, sizes[-1])
            print(
                f"history:  {args.per_day} tickets a day over {args.teams} teams of {args.agents}"
                f" agents; {sizes[-1]:,} tickets reach back {sizes[-1] / args.per_day:.0f} days"
            )
            results: dict[int, tuple[list[float], dict[str, list[float]]]] = {}
            loaded = 0
            for size in sizes:
                print(f"growing tickets to {size:,} ...", flush=True)
                load(history, loaded, size, postgres)
                loaded = size
                if args.sqlite and args.sqlite_analyze:
                    analyze_sqlite()
                results[size] = measure(params["admin_id"], args.runs)
                if args.explain:
                    print(f"query plans at {size:,} tickets:")
                    explain(params["admin_id"], postgres)
            db.session.remove()
            db.engine.dispose()
            app.extensions["celery"].close()
    report_figures(args, sizes, results)
    return 0


def report_figures(args: argparse.Namespace, sizes: list[int], results: dict) -> None:
    where = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"\nteam_report on {where} (admin, {args.teams} teams, last 30 days), "
        f"{args.runs} runs, milliseconds"
    )
    print(f"{'tickets':>10} {'median':>8} {'p90':>8}")
    for size in sizes:
        timings = sorted(results[size][0])
        p90 = timings[max(0, math.ceil(0.9 * len(timings)) - 1)]
        print(f"{size:>10,} {statistics.median(timings):>8.1f} {p90:>8.1f}")
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        ratio = statistics.median(results[last][0]) / statistics.median(results[first][0])
        print(f"ratio of medians {last:,} / {first:,}: {ratio:.2f}")
    print("\nmedian milliseconds per statement, by table size")
    print(f"{'':<98}" + "".join(f"{size:>10,}" for size in sizes))
    for key in results[sizes[-1]][1]:
        cells = [results[size][1].get(key) for size in sizes]
        print(
            f"{key:<98}"
            + "".join(f"{statistics.median(c):>10.1f}" if c else " " * 10 for c in cells)
        )


if __name__ == "__main__":
    sys.exit(main())
