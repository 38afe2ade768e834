"""Workflow engine and workers: transition throughput, time to assignment, SLA lateness.

A benchmark that prints figures, not a test. It starts what it needs (an embedded Redis unless
``--redis-url``, a gunicorn server, a Celery worker and Celery beat) on a fresh database and
stops it all at the end, including on Ctrl-C. Three measurements:

1. transitions/s through the service layer, in this process: N tickets, each ``start`` then
   ``--cycles`` x (hold, resume, solve, reopen); every transition is one committed
   transaction with its audit row and outbox row, published to Redis after commit.
2. creation -> assignment: POST /api/tickets (as an admin, into a round-robin team) at
   ``--rate`` per second against gunicorn; the worker assigns each ticket when it handles
   ``ticket.created``. Latency = the ``ticket.assigned`` trail row's time minus the ticket's
   ``created_at`` (both written by the database's clients on this machine).
3. SLA lateness: ``--sla-tickets`` tickets with a first-response clock each, inserted in SQL,
   deadlines spread evenly over ``--sla-window`` seconds starting ``--sla-lead`` seconds out;
   beat's sweep (a tick every 2 s, on the ``beat`` queue) claims due clocks in batches and
   records the breaches, and workers run the workflow's ``on_breach`` escalation (raise
   priority, assign the team lead, notify the lead) from the ``escalations`` queue, their
   follow-up events from the default one. Lateness = the ``sla.breached`` trail row's time
   minus the deadline. Also counts breaches that fired more than once (must be 0) and beat
   ticks that expired in the queue. Passing needs p99 lateness under ``SLA_P99_LIMIT_S``.

Each section prints the figures measured on PostgreSQL before the event spine was rebuilt
(issue 10) as a BEFORE line, for comparison.

    .venv/bin/python bench/workflow_bench.py          # SQLite in a temp dir
    .venv/bin/python bench/workflow_bench.py --pg     # a fresh PostgreSQL database
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from api_bench import Server  # bench/ is sys.path[0] when this file is run as a script
from common import (
    DEFAULT_PG_ADMIN_URL,
    BenchError,
    LoggedProcess,
    enter_app,
    machine_note,
    percentile,
    run_main,
    service_env,
    stats,
)

from celeryconfig import WORKER_QUEUES

PASSWORD = "bench-password-" + secrets.token_hex(4)
KEY_PREFIX = f"wfbench-{os.getpid()}:"
SLA_P99_LIMIT_S = 5.0
# Measured on this 2-core machine before the rebuild (PostgreSQL), printed next to today's.
BEFORE = {
    "transitions": "66-110/s",
    "assignment": "p50 26-31 ms, p99 178-298 ms",
    "sla": "2,800-3,022 of 10,000 breaches fired within the wait; p99 lateness 132-151 s; "
    "74 of 101 beat ticks expired in the queue",
}
TRANSITION_CYCLE = ("hold", "resume", "solve", "reopen")


class Child(LoggedProcess):
    """A Celery worker or beat in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        super().__init__(log_dir / f"{name}.log")
        self.name = name
        self.launch(argv, env)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited:\n{self.log_tail()}")
            if text in self.log_text():
                return
            time.sleep(0.2)
        raise BenchError(f"{self.name} not ready in {timeout}s:\n{self.log_tail()}")

    def first_error(self, frames: int = 6) -> str:
        """The first traceback in the log, shortened to its last frames and its error."""
        lines = self.log_text().splitlines()
        start = next((i for i, line in enumerate(lines) if "Traceback" in line), None)
        if start is None:
            return ""
        end = next(
            (i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines)
        )
        excerpt = [lines[start], *lines[max(start + 1, end - 2 * frames) : end + 1]]
        return "\n".join("    " + line for line in excerpt)

    def problems(self) -> Counter[str]:
        text = self.log_text()
        return Counter(
            p for p in ("Traceback", "database is locked", "OperationalError", "vanished")
            for _ in range(text.count(p))
        )  # fmt: skip


# -- setup, in this process -------------------------------------------------------------------


def make_app(env: dict[str, str]) -> Any:
    os.environ.update({k: v for k, v in env.items() if k.startswith("AUTOCRM_")})
    from autocrm import create_app

    return create_app()


def seed(agents: int) -> dict[str, Any]:
    """An admin (opens tickets), a customer, a round-robin team of agents, and a manual team
    whose lead receives SLA escalations."""
    from autocrm.extensions import db
    from autocrm.people import teams, users
    from autocrm.people.models import AssignmentPolicy, Role

    admin = users.create_user("bench-admin@example.com", PASSWORD, Role.ADMIN)
    customer = users.create_user("bench-customer@example.com", PASSWORD, Role.CUSTOMER)
    lead = users.create_user("bench-lead@example.com", PASSWORD, Role.ADMIN)
    db.session.flush()
    queue = teams.create_team("Bench queue")
    queue.assignment_policy = AssignmentPolicy.ROUND_ROBIN
    for i in range(agents):
        teams.add_member(queue, users.create_user(f"agent{i}@example.com", PASSWORD, Role.AGENT))
    escalations = teams.create_team("Bench SLA", lead_id=lead.id)
    escalations.assignment_policy = AssignmentPolicy.MANUAL
    db.session.commit()
    return {
        "admin": admin.id,
        "customer": customer.id,
        "queue": queue.id,
        "sla_team": escalations.id,
        "lead": lead.id,
    }


# -- 1. transitions through the service layer ------------------------------------------------


def bench_transitions(ids: dict[str, Any], tickets_n: int, cycles: int) -> None:
    from autocrm.extensions import db
    from autocrm.people.models import User
    from autocrm.tickets import services as tickets

    admin = db.session.get_one(User, ids["admin"])
    began = time.perf_counter()
    ticket_ids = [
        tickets.do_create_ticket(
            admin, subject=f"Bench {i}", description="x", requester_id=ids["customer"]
        ).id
        for i in range(tickets_n)
    ]
    created = time.perf_counter() - began
    names = ["start", *TRANSITION_CYCLE * cycles]
    latencies: list[float] = []
    began = time.perf_counter()
    for name in names:
        for ticket_id in ticket_ids:
            t0 = time.perf_counter()
            tickets.do_transition(admin, ticket_id, name)
            latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - began
    print(
        "\n== 1. transitions through the service layer (one process, sequential; each commits "
        "the ticket, a trail row and an outbox row, then publishes to Redis) =="
    )
    print(f"tickets created: {tickets_n} in {created:.2f}s = {tickets_n / created:.0f}/s")
    print(
        f"transitions:     {len(latencies)} ({tickets_n} tickets x start + {cycles} x "
        f"{'/'.join(TRANSITION_CYCLE)}) in {wall:.2f}s = {len(latencies) / wall:.0f}/s"
    )
    print(f"per transition:  {stats(latencies, '8.1f')}")
    print(f"BEFORE (PostgreSQL): transitions {BEFORE['transitions']}")


def forget_published(app: Any, redis_client: Any) -> None:
    """Phase 1's events are not the workers' business: drop them before workers start."""
    from sqlalchemy import update

    from autocrm.columns import utcnow
    from autocrm.events.models import OutboxEvent
    from autocrm.extensions import db

    db.session.execute(
        update(OutboxEvent).where(OutboxEvent.processed_at.is_(None)).values(processed_at=utcnow())
    )
    db.session.commit()
    redis_client.delete(*(KEY_PREFIX + queue for queue in WORKER_QUEUES.split(",")))


# -- 2. creation -> assignment -----------------------------------------------------------------


def bench_assignment(base_url: str, token: str, ids: dict[str, Any], n: int, rate: float) -> int:
    from sqlalchemy import select

    from autocrm import database
    from autocrm.extensions import db
    from autocrm.tickets.models import Ticket, TicketEvent

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    body = {"description": "x", "requester_id": ids["customer"], "team_id": ids["queue"]}
    ticket_ids, errors = [], Counter[str]()
    began = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, began + i / rate - time.monotonic()))
        response = session.post(
            f"{base_url}/api/tickets", json={**body, "subject": f"Assign me {i}"}, timeout=30
        )
        if response.status_code == 201:
            ticket_ids.append(response.json()["id"])
        else:
            errors[f"HTTP {response.status_code}"] += 1
    posted = time.monotonic() - began

    def assigned() -> dict[int, tuple[datetime, datetime]]:
        with database.read_only():
            rows = db.session.execute(
                select(Ticket.id, Ticket.created_at, TicketEvent.created_at)
                .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
                .where(Ticket.id.in_(ticket_ids), TicketEvent.kind == "ticket.assigned")
            ).all()
            db.session.rollback()
        return {ticket_id: (created, at) for ticket_id, created, at in rows}

    deadline = time.monotonic() + 60
    found = assigned()
    while len(found) < len(ticket_ids) and time.monotonic() < deadline:
        time.sleep(0.5)
        found = assigned()
    latencies = [(at - created).total_seconds() for created, at in found.values()]
    print(
        f"\n== 2. ticket creation (POST /api/tickets) -> assignment by a worker "
        f"({n} tickets at {rate:g}/s, offered over {posted:.1f}s) =="
    )
    print(f"assigned: {len(found)}/{len(ticket_ids)}; POST errors: {dict(errors) or 'none'}")
    print(f"latency:  {stats(latencies, '8.1f')}")
    print(f"BEFORE (PostgreSQL): {BEFORE['assignment']}")
    return sum(errors.values()) + len(ticket_ids) - len(found)


# -- 3. SLA lateness ---------------------------------------------------------------------------


def sla_version() -> int:
    """A published copy of the default workflow with an always-open calendar (deadlines are
    plain seconds), on which the SLA tickets run."""
    from autocrm.engine.models import Workflow, WorkflowVersion
    from autocrm.extensions import db
    from workflows import default_definition, dump_definition, load_definition

    definition = default_definition()
    definition["sla"]["calendar"] = None
    workflow = Workflow(name="bench-sla", is_default=False)
    version = WorkflowVersion(
        workflow=workflow, number=1, definition=dump_definition(load_definition(definition))
    )
    db.session.add(version)
    db.session.commit()
    return version.id


def load_sla_tickets(
    ids: dict[str, Any], n: int, lead_s: float, window_s: float
) -> dict[int, datetime]:
    """``n`` new tickets with a running first-response clock each; returns ticket -> due."""
    from sqlalchemy import insert, select

    from autocrm.columns import utcnow
    from autocrm.extensions import db
    from autocrm.sla.models import SlaClock
    from autocrm.tickets.models import Priority, Ticket

    version_id = sla_version()
    now = utcnow()
    ticket_rows = [
        {
            "subject": f"SLA bench {i}", "description": "x", "status": "new", "category": "new",
            "priority": Priority.NORMAL, "channel": "api", "requester_id": ids["customer"],
            "team_id": ids["sla_team"], "workflow_version_id": version_id, "created_at": now,
            "updated_at": now, "status_changed_at": now, "version": 1,
        }
        for i in range(n)
    ]  # fmt: skip
    db.session.execute(insert(Ticket), ticket_rows)
    ticket_ids = db.session.scalars(
        select(Ticket.id).where(Ticket.workflow_version_id == version_id).order_by(Ticket.id)
    ).all()
    start = utcnow() + timedelta(seconds=lead_s)
    due = {
        ticket_id: start + timedelta(seconds=window_s * i / n)
        for i, ticket_id in enumerate(ticket_ids)
    }
    db.session.execute(
        insert(SlaClock),
        [
            {
                "ticket_id": ticket_id, "metric": "first_response",
                "workflow_version_id": version_id, "target_seconds": 3600.0,
                "consumed_seconds": 0.0, "started_at": now, "segment_started_at": now,
                "due_at": due_at, "warn_at": None,
            }
            for ticket_id, due_at in due.items()
        ],
    )  # fmt: skip
    db.session.commit()
    return due


def bench_sla(due: dict[int, datetime], lead_s: float, window_s: float, wait_s: float) -> int:
    from sqlalchemy import func, select

    from autocrm import database
    from autocrm.extensions import db
    from autocrm.tickets.models import TicketEvent

    ticket_ids = list(due)

    def breaches() -> list[tuple[int, datetime]]:
        with database.read_only():
            rows = db.session.execute(
                select(TicketEvent.ticket_id, TicketEvent.created_at).where(
                    TicketEvent.kind == "sla.breached",
                    TicketEvent.ticket_id >= ticket_ids[0],
                    TicketEvent.ticket_id <= ticket_ids[-1],
                )
            ).all()
            db.session.rollback()
        return [(ticket_id, at) for ticket_id, at in rows]

    last_due = max(due.values())
    deadline = time.monotonic() + lead_s + window_s + wait_s
    progress_at = time.monotonic() + 10
    rows = breaches()
    while len({t for t, _ in rows}) < len(due) and time.monotonic() < deadline:
        time.sleep(1.0)
        rows = breaches()
        if time.monotonic() >= progress_at:
            print(f"  ... {len(rows)} breaches recorded", flush=True)
            progress_at += 10
    fired = Counter(ticket_id for ticket_id, _ in rows)
    first = {}
    for ticket_id, at in sorted(rows, key=lambda r: r[1]):
        first.setdefault(ticket_id, at)
    lateness = [(at - due[ticket_id]).total_seconds() for ticket_id, at in first.items()]
    with database.read_only():
        escalated = db.session.scalar(
            select(func.count()).where(
                TicketEvent.kind == "ticket.assigned",
                TicketEvent.ticket_id >= ticket_ids[0],
                TicketEvent.ticket_id <= ticket_ids[-1],
            )
        )
        db.session.rollback()
    duplicates = sum(1 for count in fired.values() if count > 1)
    print(
        f"\n== 3. SLA lateness: {len(due)} tickets, deadlines spread over {window_s:g}s "
        f"(last due {last_due:%H:%M:%S} UTC); beat sweeps every 2 s =="
    )
    print(
        f"breaches fired: {len(fired)}/{len(due)}; exactly once: "
        f"{sum(1 for c in fired.values() if c == 1)}; more than once: {duplicates}; "
        f"escalated to the lead (ticket.assigned): {escalated}"
    )
    ordered = sorted(lateness)
    if ordered:
        print(
            "lateness (breach recorded - deadline): "
            + "  ".join(f"p{q} {percentile(ordered, q):6.2f}s" for q in (50, 90, 99))
            + f"  max {ordered[-1]:6.2f}s"
        )
    print(f"BEFORE (PostgreSQL): {BEFORE['sla']}")
    too_late = not ordered or percentile(ordered, 99) >= SLA_P99_LIMIT_S
    if too_late:
        print(f"p99 lateness is not under {SLA_P99_LIMIT_S:g} s")
    return duplicates + len(due) - len(fired) + too_late


def tick_report(worker_log: str) -> str:
    """How many of beat's sweep ticks a worker received, and how many expired unrun."""
    received = len(re.findall(r"Task workers\.tasks\.sweep\[[^]]+\] received", worker_log))
    expired = worker_log.count("Discarding revoked task: workers.tasks.sweep[")
    return f"beat sweep ticks: {received} received, {expired} expired in the queue"


# -- main --------------------------------------------------------------------------------------


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    print("command:  " + shlex.join(sys.orig_argv), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="wfb-"))  # short: the redis unix socket lives here
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    env = service_env(args, stack, tmp, KEY_PREFIX)
    redis_url = env["AUTOCRM_REDIS_URL"]
    app = make_app(env)
    redis_client = enter_app(stack, app, redis_url, (f"{KEY_PREFIX}*",))

    from autocrm.extensions import db
    from autocrm.people.models import User
    from autocrm.security import issue_token

    machine_note(db.engine)
    print(
        f"workers:  celery worker --concurrency {args.concurrency} (prefork, queues "
        f"{WORKER_QUEUES}) + beat; "
        f"gunicorn -w {args.workers} -k gthread --threads {args.threads}"
    )
    ids = seed(args.agents)

    bench_transitions(ids, args.tickets, args.cycles)
    forget_published(app, redis_client)

    server = Server("gunicorn", "wsgi:app", env, tmp, args)
    server.start()
    stack.callback(server.stop)
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    logs = Path(args.log_dir) if args.log_dir else tmp
    logs.mkdir(parents=True, exist_ok=True)
    worker = Child(
        "worker",
        [*celery, "worker", "--pool", "prefork", "--concurrency", str(args.concurrency),
         "--queues", WORKER_QUEUES, "--loglevel", "INFO",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env, logs,
    )  # fmt: skip
    stack.callback(worker.stop)
    beat = Child(
        "beat",
        [*celery, "beat", "--loglevel", "INFO", "--schedule", str(tmp / "beat-schedule")],
        env, logs,
    )  # fmt: skip
    stack.callback(beat.stop)
    server.wait_ready("/api/openapi.json")
    worker.wait_for("ready.")
    beat.wait_for("beat: Starting...")

    admin = db.session.get_one(User, ids["admin"])
    token = issue_token(admin.id, admin.password_hash)
    db.session.rollback()
    failures = bench_assignment(server.url, token, ids, args.assign_tickets, args.rate)

    print(f"\nloading {args.sla_tickets} SLA tickets ...", flush=True)
    due = load_sla_tickets(ids, args.sla_tickets, args.sla_lead, args.sla_window)
    failures += bench_sla(due, args.sla_lead, args.sla_window, args.sla_wait)

    print()
    print(tick_report(worker.log_text()))
    for child in (worker, beat):
        problems = child.problems()
        print(
            f"{child.name} log: "
            + (", ".join(f"{k!r} x{v}" for k, v in problems.items()) or "no errors")
        )
        if problems:
            print(child.first_error())
    if failures:
        print(
            f"\nRESULT: {failures} problem(s): tickets not assigned, breaches not fired within "
            f"the wait, breaches fired more than once, or p99 lateness of {SLA_P99_LIMIT_S:g} s "
            "or more (see above)."
        )
        return 1
    print("\nRESULT: every ticket assigned, every breach fired exactly once.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    db = parser.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="a throwaway database; default: SQLite in a temp dir")
    db.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database, dropped after")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", help="default: an embedded redis-server in the temp dir")
    parser.add_argument("--tickets", type=int, default=200, help="phase 1 tickets")
    parser.add_argument("--cycles", type=int, default=5, help="phase 1 hold/resume/solve/reopen")
    parser.add_argument("--assign-tickets", type=int, default=200, help="phase 2 tickets")
    parser.add_argument("--rate", type=float, default=10, help="phase 2 tickets per second")
    parser.add_argument("--agents", type=int, default=5, help="agents in the round-robin team")
    parser.add_argument("--sla-tickets", type=int, default=10_000)
    parser.add_argument("--sla-lead", type=float, default=15, help="seconds to the first deadline")
    parser.add_argument("--sla-window", type=float, default=45, help="deadlines spread over this")
    parser.add_argument(
        "--sla-wait", type=float, default=120, help="how long after the last deadline to wait"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--log-dir", help="keep the worker's and beat's logs here")
    parser.add_argument("--max-seconds", type=float, default=420, help="hard stop after this")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    run_main(args, bench, hard_limit_s=args.max_seconds)


if __name__ == "__main__":
    main()
