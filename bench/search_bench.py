"""Ticket search latency at 10k (and, with ``--tickets 1000000``, 1M) tickets, in process,
next to an unfiltered list page of the same run as the baseline.

A benchmark that prints figures, not a test. It creates a fresh database (``--pg``: a uniquely
named PostgreSQL database, dropped at the end; otherwise SQLite in a temp dir), migrates it,
seeds people through the services (report_bench's ``seed`` plus ``--customers`` customers),
then bulk-loads tickets with generated text (words drawn from a Zipf-like vocabulary) and 0-4
messages each, a fifth of them internal notes. The rows go in with plain INSERTs, so the
search triggers of migration 0023_ticket_search index them as the app's writes would. It then
times ``tickets.list_tickets`` (a 50-row page, as the queue asks) for an admin, for a
customer and for a customer who manages an organization of ``--org-members`` customers (so sees
their tickets too): the unfiltered list, then searches for a rare, a medium and a common word, two
words, a requester's email and a ticket number; p50/p99 of ``--runs`` calls each and the
ratio of each p50 to the unfiltered list's.

    .venv/bin/python bench/search_bench.py --pg                     # PostgreSQL, 10k
    .venv/bin/python bench/search_bench.py --pg --tickets 1000000   # PostgreSQL, 1M
    .venv/bin/python bench/search_bench.py                          # SQLite, 10k

``--pg --keep`` keeps the loaded database when the run finishes (it prints its name), and
``--reuse NAME`` measures again on such a database without loading it anew (say, before and
after a change to the search code, at 1M tickets: the load takes most of the time). Drop a
kept database when done: ``DROP DATABASE "NAME"``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import DEFAULT_PG_ADMIN_URL, fresh_pg_database, in_process_app, percentile
from report_bench import History, fresh_sqlite_database, seed

from autocrm.extensions import db
from autocrm.listing import PageRequest
from autocrm.people import organizations, users
from autocrm.people.models import Role, User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message, Ticket

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
DATABASE_PREFIX = "autocrm_search_bench"
CHUNK = 10_000
VOCABULARY = 20_000
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def vocabulary(rng: random.Random) -> list[str]:
    """Distinct made-up words, the most frequent first."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Text:
    """Sentences whose word frequencies fall off like natural language's (Zipf, s=1)."""

    def __init__(self, seed_: int) -> None:
        self.words = vocabulary(random.Random(seed_))
        total, self.cumulative = 0.0, []
        for rank in range(1, VOCABULARY + 1):
            total += 1.0 / rank
            self.cumulative.append(total)

    def sentence(self, rng: random.Random, n: int) -> str:
        return " ".join(rng.choices(self.words, cum_weights=self.cumulative, k=n))


BACKFILL = """
INSERT INTO ticket_search_docs (ticket_id, subject, requester, description, messages, notes)
SELECT t.id, t.subject,
  coalesce((SELECT u.name || ' ' || u.email FROM users u WHERE u.id = t.requester_id), ''),
  t.description,
  coalesce((SELECT string_agg(m.body, E'\\n' ORDER BY m.id) FROM messages m
            WHERE m.ticket_id = t.id AND NOT m.internal), ''),
  coalesce((SELECT string_agg(m.body, E'\\n' ORDER BY m.id) FROM messages m
            WHERE m.ticket_id = t.id AND m.internal), '')
FROM tickets t WHERE t.id BETWEEN :lo AND :hi
"""
SEARCH_INDEXES = (
    "CREATE INDEX ix_ticket_search_public ON ticket_search_docs USING gin (public_tsv)",
    "CREATE INDEX ix_ticket_search_all ON ticket_search_docs USING gin (all_tsv)",
)


def backfill_search_documents(lo: int, hi: int, first_id: int) -> None:
    """PostgreSQL, ``--bulk-index``: the loaded tickets' search documents in one statement,
    as migration 0023_ticket_search backfills existing tickets (the same five parts, so the
    same tsvectors), with its GIN indexes dropped and rebuilt around it."""
    began = time.monotonic()
    with db.engine.begin() as conn:
        for index in SEARCH_INDEXES:
            conn.execute(text(f"DROP INDEX {index.split()[2]}"))
        conn.execute(text(BACKFILL), {"lo": first_id + lo, "hi": first_id + hi - 1})
        for index in SEARCH_INDEXES:
            conn.execute(text(index))
    print(f"  search documents and their indexes {time.monotonic() - began:.0f}s", flush=True)


def load(
    history: History,
    words: Text,
    customers: list[int],
    agents: list[int],
    lo: int,
    hi: int,
    bulk: bool = False,
) -> None:
    began = time.monotonic()
    message_columns = Message.__table__
    for start in range(lo, hi, CHUNK):
        rng = random.Random(start)
        rows, _, _ = history.chunk(start, min(start + CHUNK, hi))
        messages: list[dict[str, Any]] = []
        for row in rows:
            row["subject"] = words.sentence(rng, rng.randint(3, 8)).capitalize()
            row["description"] = words.sentence(rng, rng.randint(10, 60))
            row["requester_id"] = rng.choice(customers)
            for _ in range(rng.randint(0, 4)):
                internal = rng.random() < 0.2
                messages.append(
                    {
                        "ticket_id": row["id"],
                        "author_id": rng.choice(agents) if internal else row["requester_id"],
                        "body": words.sentence(rng, rng.randint(5, 50)),
                        "internal": internal,
                        "channel": "web",
                        "created_at": row["created_at"],
                    }
                )
        with db.engine.begin() as conn:
            if bulk:  # the search triggers (and foreign-key checks) wait for one backfill
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(Ticket.__table__.insert(), rows)
            if messages:
                conn.execute(message_columns.insert(), messages)
        done = min(start + CHUNK, hi)
        if done // 100_000 > start // 100_000 or done == hi:
            print(f"  ... {done:>9,} tickets ({time.monotonic() - began:.0f}s)", flush=True)
    if bulk:
        backfill_search_documents(lo, hi, history.first_id)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if db.engine.dialect.name == "postgresql":
            last = history.first_id + history.total - 1
            conn.execute(text(f"SELECT setval('tickets_id_seq', {last})"))
            for table in ("tickets", "messages", "ticket_search_docs", "users"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
        else:
            conn.execute(text("ANALYZE"))
    print(f"  load {time.monotonic() - began:.1f}s")


def timed(actor: User, q: str | None, runs: int) -> tuple[list[float], int]:
    times: list[float] = []
    found = 0
    for _ in range(runs):
        began = time.perf_counter()
        page = tickets.list_tickets(
            actor, tickets.TicketFilters(q=q), PageRequest(limit=50, sort="-created_at")
        )
        times.append(time.perf_counter() - began)
        found = len(page.items)
        db.session.rollback()  # a fresh transaction per request, as the app's
    return sorted(times), found


def measure(
    admin: User, customer: User, manager: User, words: Text, number: int, runs: int
) -> None:
    queries: list[tuple[str, str | None]] = [
        ("unfiltered list (baseline)", None),
        ("rare word (rank 5000)", words.words[4999]),
        ("medium word (rank 200)", words.words[199]),
        ("common word (rank 3)", words.words[2]),
        ("two words (ranks 50, 300)", f"{words.words[49]} {words.words[299]}"),
        ("requester email", customer.email),
        ("ticket number", f"#{number}"),
    ]
    members = db.session.scalar(
        select(func.count(User.id)).where(User.organization_id == manager.organization_id)
    )
    for who, actor in (
        ("admin", admin),
        ("customer", customer),
        (f"organization manager ({members} members)", manager),
    ):
        print(f"  as {who}:")
        print(f"    {'query':<28} {'p50 ms':>8} {'p99 ms':>8} {'x list':>7} {'rows':>5}")
        base = 0.0
        for label, q in queries:
            times, found = timed(actor, q, runs)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            base = base or p50
            print(
                f"    {label:<28} {p50 * 1000:8.2f} {p99 * 1000:8.2f} {p50 / base:7.1f} {found:5}",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (default: SQLite)")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--org-members",
        type=int,
        default=10,
        help="customers 1..N form an organization managed by customer1 (it sees their tickets)",
    )
    parser.add_argument(
        "--bulk-index",
        action="store_true",
        help="PostgreSQL: load with the search triggers off and backfill the search documents "
        "in one statement afterwards, as migration 0023 does (1M tickets load in minutes, not "
        "the hours a trigger update per message takes on 2 cores)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="PostgreSQL: keep the loaded database when the run finishes, for --reuse",
    )
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help=f"PostgreSQL: measure on database NAME, kept by an earlier --keep run "
        f"({DATABASE_PREFIX}_...), instead of creating and loading one (--tickets, "
        "--customers and --bulk-index are then what that run was given)",
    )
    args = parser.parse_args()
    if (args.bulk_index or args.keep or args.reuse) and not args.pg:
        parser.error("--bulk-index, --keep and --reuse need --pg")
    if args.reuse and not args.reuse.startswith(DATABASE_PREFIX + "_"):
        parser.error(f"--reuse: not a database of this bench ({DATABASE_PREFIX}_...)")
    print(f"python:   {platform.python_version()}; nproc={len(os.sched_getaffinity(0))}")
    print(f"command:  {' '.join(sys.argv)}")
    if args.reuse:
        url = make_url(args.pg_admin_url).set(database=args.reuse)
        fresh: Any = contextlib.nullcontext(url.render_as_string(hide_password=False))
    elif args.pg:
        fresh = fresh_pg_database(args.pg_admin_url, DATABASE_PREFIX, keep=args.keep)
    else:
        fresh = fresh_sqlite_database()
    with fresh as url:
        app = in_process_app(url, args.redis_url, "search-bench")
        with app.app_context():
            words = Text(7)
            if args.reuse:
                admin, customer, number, total = loaded()
            else:
                admin, customer, number, total = seed_and_load(args, words)
            manager = organization_manager(admin, args.org_members)
            print(f"search at {total:,} tickets ({args.runs} runs each, 50-row pages):")
            measure(admin, customer, manager, words, number, args.runs)
            db.session.remove()
            db.engine.dispose()
            app.extensions["celery"].close()
    return 0


def seed_and_load(args: argparse.Namespace, words: Text) -> tuple[User, User, int, int]:
    """People and ``--tickets`` tickets; the admin, a customer, a ticket number to search
    for and the number of loaded tickets."""
    params = seed(5, 4)
    customers = [
        users.create_user(
            f"customer{i}@example.com", secrets.token_hex(8), Role.CUSTOMER, f"Cust {i}"
        )
        for i in range(args.customers)
    ]
    db.session.commit()
    customer_ids = [c.id for c in customers]
    agent_ids = [a for _, team in params["team_agents"] for a in team]
    db.session.commit()  # SQLite: the loader writes on another connection
    history = History(params, 300, args.tickets)
    print(f"loading {args.tickets:,} tickets ...", flush=True)
    load(history, words, customer_ids, agent_ids, 0, args.tickets, args.bulk_index)
    admin = db.session.get(User, params["admin_id"])
    customer = db.session.get(User, customer_ids[0])
    assert admin is not None and customer is not None
    return admin, customer, history.first_id + args.tickets // 2, args.tickets


def loaded() -> tuple[User, User, int, int]:
    """What ``seed_and_load`` returned, read back from a kept database: the seed ticket has
    the lowest id, the loaded ones follow it."""
    admin = db.session.scalars(select(User).where(User.email == "bench-admin@example.com")).one()
    customer = db.session.scalars(select(User).where(User.email == "customer0@example.com")).one()
    seed_id, count = db.session.execute(select(func.min(Ticket.id), func.count(Ticket.id))).one()
    total = count - 1
    return admin, customer, seed_id + 1 + total // 2, total


def organization_manager(admin: User, members: int) -> User:
    """customer1, manager of an organization of customers 1..``members`` (made through the
    services the first time; a ``--reuse`` run finds it made)."""
    manager = db.session.scalars(select(User).where(User.email == "customer1@example.com")).one()
    if manager.organization_id is None:
        organization = organizations.do_create_organization(admin, name="Bench organization")
        for i in range(1, members + 1):
            email = f"customer{i}@example.com"
            member = db.session.scalars(select(User).where(User.email == email)).one()
            organizations.do_add_member(admin, organization.id, member.id, manager=i == 1)
    db.session.commit()
    return manager


if __name__ == "__main__":
    sys.exit(main())
