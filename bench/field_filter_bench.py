"""Listing tickets filtered by a custom dropdown field, next to filtering by ``priority`` in the
same run, at 1M tickets (``--tickets``) on PostgreSQL (``--pg``) or SQLite.

A benchmark that prints figures, not a test. It creates a fresh database (``--pg``: a uniquely
named PostgreSQL database, dropped at the end; otherwise SQLite in a temp dir), migrates it,
seeds people through the services (report_bench's ``seed``), then bulk-loads tickets
(report_bench's ``History``: 20% of them ``high`` priority, 5% ``urgent``) whose
``custom_fields`` hold a ``product`` dropdown value: ``printer`` on 20% of them (the
selectivity of ``priority=high``), ``fax`` on 0.1% (a rare value, where an index matters) and
one of nine others on the rest. The field itself is then defined through the service,
as an admin adds it (on PostgreSQL that makes its expression index; its build time is
printed). It times ``tickets.list_tickets`` as the API's ``GET /api/tickets`` calls it (a
50-row page, newest first, as an admin): unfiltered, ``priority=high`` and ``urgent``,
``field.product=printer`` and ``fax`` with the field's index, and the same without it;
p50/p99 of ``--runs`` calls each and the ratio of each p50 to the ``priority=high`` filter's.

    .venv/bin/python bench/field_filter_bench.py --pg --tickets 1000000   # PostgreSQL, 1M
    .venv/bin/python bench/field_filter_bench.py                          # SQLite, 100k
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import DEFAULT_PG_ADMIN_URL, fresh_pg_database, in_process_app, percentile
from report_bench import History, fresh_sqlite_database, seed

from autocrm.extensions import db
from autocrm.fields import definitions, indexes, values
from autocrm.listing import PageRequest
from autocrm.people.models import User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
CHUNK = 10_000
PRODUCTS = ["printer", "fax", "scanner", "laptop", "phone", "router", "monitor", "tablet",
            "camera", "watch", "speaker"]  # fmt: skip


def load(history: History, lo: int, hi: int) -> None:
    began = time.monotonic()
    for start in range(lo, hi, CHUNK):
        rng = random.Random(start)
        rows, _, _ = history.chunk(start, min(start + CHUNK, hi))
        for row in rows:
            draw = rng.random()
            rest = rng.choice(PRODUCTS[2:])
            product = "printer" if draw < 0.2 else "fax" if draw < 0.201 else rest
            row["custom_fields"] = {"product": product, "seats": rng.randint(1, 500)}
        with db.engine.begin() as conn:
            conn.execute(Ticket.__table__.insert(), rows)
        done = min(start + CHUNK, hi)
        if done // 100_000 > start // 100_000 or done == hi:
            print(f"  ... {done:>9,} tickets ({time.monotonic() - began:.0f}s)", flush=True)
    analyze()
    print(f"  load {time.monotonic() - began:.1f}s")


def analyze() -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE tickets"))
        else:
            conn.execute(text("ANALYZE"))


def timed(actor: User, filters: tickets.TicketFilters, runs: int) -> tuple[list[float], int]:
    times: list[float] = []
    found = 0
    for _ in range(runs):
        began = time.perf_counter()
        page = tickets.list_tickets(actor, filters, PageRequest(limit=50, sort="-created_at"))
        times.append(time.perf_counter() - began)
        found = len(page.items)
        db.session.rollback()  # a fresh transaction per request, as the app's
    return sorted(times), found


def measure(admin: User, runs: int, label_filters: list[tuple[str, Any]]) -> dict[str, float]:
    p50s: dict[str, float] = {}
    for label, filters in label_filters:
        times, found = timed(admin, filters, runs)
        p50s[label] = percentile(times, 50)
        p99 = percentile(times, 99)
        print(f"    {label:<34} {p50s[label] * 1000:8.2f} {p99 * 1000:8.2f} {found:5}", flush=True)
    return p50s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (default: SQLite)")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"python:   {platform.python_version()}; nproc={len(os.sched_getaffinity(0))}")
    print(f"command:  {' '.join(sys.argv)}")
    fresh = (
        fresh_pg_database(args.pg_admin_url, "autocrm_field_bench")
        if args.pg
        else fresh_sqlite_database()
    )
    with fresh as url:
        app = in_process_app(url, args.redis_url, "field-bench")
        with app.app_context():
            params = seed(5, 4)
            db.session.commit()
            history = History(params, 300, args.tickets)
            print(f"loading {args.tickets:,} tickets ...", flush=True)
            load(history, 0, args.tickets)
            admin = db.session.get(User, params["admin_id"])
            assert admin is not None
            began = time.monotonic()
            definitions.do_create_field(
                admin,
                {
                    "key": "product",
                    "label": "Product",
                    "type": "dropdown",
                    "options": [{"value": p} for p in PRODUCTS],
                },
            )
            added = time.monotonic()
            print(f"field added (the admin's request) in {added - began:.2f}s")
            # What the worker's build_field_indexes does after that commit (CONCURRENTLY on
            # PostgreSQL, beside the writes), here in-process and waited for.
            outcome = indexes.do_build_indexes()
            print(f"its index built in {time.monotonic() - added:.1f}s: {outcome}")
            analyze()
            by_product = tickets.TicketFilters(custom_fields={"product": "printer"})
            rare = tickets.TicketFilters(custom_fields={"product": "fax"})
            cases = [
                ("unfiltered list", tickets.TicketFilters()),
                ("priority=high", tickets.TicketFilters(priority=[Priority.HIGH])),
                ("priority=urgent", tickets.TicketFilters(priority=[Priority.URGENT])),
                ("field.product=printer (indexed)", by_product),
                ("field.product=fax (indexed)", rare),
            ]
            print(f"at {args.tickets:,} tickets ({args.runs} runs each, 50-row pages, admin):")
            print(f"    {'filter':<34} {'p50 ms':>8} {'p99 ms':>8} {'rows':>5}")
            p50s = measure(admin, args.runs, cases)
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP INDEX IF EXISTS {values.index_name('product')}"))
            analyze()
            unindexed = [
                ("field.product=printer (no index)", by_product),
                ("field.product=fax (no index)", rare),
            ]
            p50s |= measure(admin, args.runs, unindexed)
            base = p50s["priority=high"]
            for label, p50 in p50s.items():
                print(f"    ratio {label:<28} {p50 / base:6.2f} x priority=high")
            db.session.remove()
            db.engine.dispose()
            app.extensions["celery"].close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
