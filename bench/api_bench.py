"""Ticket API throughput and latency under concurrency, next to a bare Flask baseline.

A benchmark that prints figures, not a test. It starts its own servers on free loopback ports
and stops them at the end (only 127.0.0.1 traffic):

- AutoCRM: ``gunicorn -w 2 -k gthread --threads 8 wsgi:app`` after ``flask db upgrade`` and
  two ``flask create-user`` calls (an admin and a customer);
- the baseline: ``bench/baseline_app.py`` under the same gunicorn settings, one INSERT or one
  ``SELECT ... LIMIT 50`` per request on the same database (its own ``bench_baseline`` table,
  dropped at the end);
- an embedded Redis (``autocrm.embedded_redis``) unless ``--redis-url`` is given.

N client threads (one ``requests.Session`` each) then create tickets (POST /api/tickets as
the customer) and list them (GET /api/tickets?limit=50 as the admin), and do the same against
the baseline; it prints requests/s, p50 and p99 per scenario and the AutoCRM/baseline ratio.
Every response status is checked; errors are counted and printed, and make the exit status 1.

``--pg`` runs on a fresh, uniquely named PostgreSQL database (dropped at the end, pass or
fail); ``--scale`` (PostgreSQL only) then bulk-loads tickets in SQL and measures sequential list
latency at 10k and at 1M tickets: keyset pagination must not slow down with table size.

    .venv/bin/python bench/api_bench.py                  # SQLite in a temp dir
    .venv/bin/python bench/api_bench.py --pg --scale     # PostgreSQL + table-size scaling
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import baseline_app  # bench/ is sys.path[0] when this file is run as a script
import requests
from common import (
    DEFAULT_PG_ADMIN_URL,
    HOST,
    STARTUP_TIMEOUT_S,
    BenchError,
    LoggedProcess,
    Result,
    free_port,
    machine_note,
    run_load,
    run_main,
    run_step,
    service_env,
)
from sqlalchemy import Engine, create_engine, text

BENCH_DIR = Path(__file__).resolve().parent
REQUEST_TIMEOUT_S = 30.0
BULK_CHUNK = 100_000
PASSWORD = "bench-password-" + secrets.token_hex(4)
ADMIN_EMAIL = "bench-admin@example.com"
CUSTOMER_EMAIL = "bench-customer@example.com"
TICKET_BODY = {
    "subject": "Bench ticket",
    "description": "Created by bench/api_bench.py to measure the ticket API under concurrency.",
}
# Status mix of the bulk-loaded history (20 slots): mostly closed, 10% open.
BULK_STATUSES = ["closed"] * 12 + ["solved"] * 3 + ["open"] * 2 + ["new", "pending", "on_hold"]
ERROR_LOG_PATTERNS = ("Traceback", "database is locked", "OperationalError", "[ERROR]")


# -- figures -----------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and not math.isnan(a) and not math.isnan(b) else "n/a"


# -- processes ---------------------------------------------------------------------------------


class Server(LoggedProcess):
    """One gunicorn server in its own process group, logging to a file."""

    def __init__(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        log_dir: Path,
        args: argparse.Namespace,
        extra: tuple[str, ...] = (),
    ) -> None:
        super().__init__(log_dir / f"{name}.log")
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.argv = [
            sys.executable, "-m", "gunicorn",
            "-w", str(args.workers), "-k", "gthread", "--threads", str(args.threads),
            "-b", f"{HOST}:{self.port}", "--graceful-timeout", "5",
            "--error-logfile", "-", *extra, app,
        ]  # fmt: skip
        self.env = env

    def start(self) -> None:
        self.launch(self.argv, self.env)

    def wait_ready(self, path: str) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.process.returncode}:\n" + self.log_tail()
                )
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url + path, timeout=2)
                return
            time.sleep(0.2)
        raise BenchError(
            f"{self.name} did not answer within {STARTUP_TIMEOUT_S}s:\n" + self.log_tail()
        )

    def log_problems(self) -> tuple[Counter[str], list[str]]:
        """Counts of error-looking log lines, and the first few exception lines."""
        counts: Counter[str] = Counter()
        samples: list[str] = []
        for line in self.log_text().splitlines():
            for pattern in ERROR_LOG_PATTERNS:
                if pattern in line:
                    counts[pattern] += 1
            if re.match(r"^\w+(\.\w+)*(Error|Exception)\b", line) and len(samples) < 5:
                samples.append(line[:200])
        return counts, samples


# -- databases ---------------------------------------------------------------------------------


# -- load --------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    method: str
    url: str
    expected: int
    token: str | None = None
    body: dict[str, Any] | None = None


def _call(session: requests.Session, scenario: Scenario, i: int) -> requests.Response:
    body = None
    if scenario.body:
        body = {**scenario.body, "subject": f"{scenario.body['subject']} {i}"}
    return session.request(scenario.method, scenario.url, json=body, timeout=REQUEST_TIMEOUT_S)


def run_scenario(
    scenario: Scenario, *, clients: int, total: int, seconds: float | None, deadline: float
) -> Result:
    """``clients`` threads share ``total`` requests (or run for ``seconds``); all timed."""
    headers = {"Authorization": f"Bearer {scenario.token}"} if scenario.token else {}
    return run_load(
        scenario.name,
        lambda session, i: _call(session, scenario, i),
        scenario.expected,
        clients=clients,
        total=total,
        headers=headers,
        seconds=seconds,
        deadline=deadline,
    )


def token_for(base: str, email: str) -> str:
    response = requests.post(
        f"{base}/api/auth/token",
        json={"email": email, "password": PASSWORD},
        timeout=REQUEST_TIMEOUT_S,
    )
    if response.status_code != 200:
        raise BenchError(f"login {email}: HTTP {response.status_code} {response.text[:300]}")
    return response.json()["access_token"]


def print_load_table(results: list[Result]) -> None:
    print(
        f"{'scenario':<30} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for r in results:
        errors = sum(r.errors.values())
        print(
            f"{r.name:<30} {r.requests:>8} {errors:>6} {r.rate:>8.1f} {r.p(50):>8.1f} "
            f"{r.p(99):>8.1f}"
        )


# -- table-size scaling (PostgreSQL) -----------------------------------------------------------

BULK_INSERT = text("""
INSERT INTO tickets (subject, description, status, category, priority, channel, requester_id,
                     workflow_version_id, created_at, updated_at, status_changed_at, solved_at,
                     closed_at, version)
SELECT 'Bulk ticket #' || g,
       'Generated by bench/api_bench.py to measure listing at table size; row ' || g || '.',
       s.status,
       CASE s.status WHEN 'on_hold' THEN 'open' ELSE s.status END,
       1 + (g % 4),
       (ARRAY['web', 'email', 'api'])[1 + (g % 3)],
       :requester_id,
       :workflow_version_id,
       c.created_at,
       c.created_at + ((g * 7919) % 4320) * interval '1 minute',
       c.created_at + ((g * 7919) % 4320) * interval '1 minute',
       CASE WHEN s.status IN ('solved', 'closed') THEN c.created_at + interval '1 day' END,
       CASE WHEN s.status = 'closed' THEN c.created_at + interval '4 days' END,
       1
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
CROSS JOIN LATERAL (SELECT CAST(:t0 AS timestamp) - g * interval '1 minute' AS created_at) AS c
CROSS JOIN LATERAL (SELECT (CAST(:statuses AS text[]))[1 + (g % 20)] AS status) AS s
""")


class BulkLoader:
    """Appends generated history (one ticket a minute, going back in time) straight in SQL."""

    def __init__(self, engine: Engine, requester_id: int, workflow_version_id: int) -> None:
        self.engine = engine
        self.params = {
            "requester_id": requester_id,
            "workflow_version_id": workflow_version_id,
            "statuses": BULK_STATUSES,
        }
        with engine.connect() as conn:
            self.params["t0"] = conn.execute(text("SELECT min(created_at) FROM tickets")).scalar()
            superuser = conn.execute(
                text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar()
        # A superuser may skip the per-row foreign-key triggers (the values are known good).
        self.skip_fk_triggers = bool(superuser)
        self.loaded = 0

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()

    def grow_to(self, target: int) -> float:
        """Insert tickets until the table holds ``target``; ANALYZE; returns the seconds taken."""
        began = time.monotonic()
        missing = target - self.count()
        while missing > 0:
            n = min(missing, BULK_CHUNK)
            with self.engine.begin() as conn:
                if self.skip_fk_triggers:
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(
                    BULK_INSERT, {**self.params, "lo": self.loaded + 1, "hi": self.loaded + n}
                )
            self.loaded += n
            missing -= n
            print(f"  ... {self.count():>9,} tickets ({time.monotonic() - began:.0f}s)", flush=True)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE tickets"))
        return time.monotonic() - began

    def table_size(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT pg_size_pretty(pg_total_relation_size('tickets'))")
            ).scalar_one()


def list_kinds(session: requests.Session, base: str, deep_pages: int) -> dict[str, dict[str, Any]]:
    """The list requests to time; the deep one starts ``deep_pages`` pages in (via cursors)."""
    cursor = None
    for _ in range(deep_pages):
        params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        page = session.get(f"{base}/api/tickets", params=params, timeout=REQUEST_TIMEOUT_S)
        page.raise_for_status()
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    return {
        "first page": {"limit": 50},
        f"page {deep_pages + 1} (cursor)": {"limit": 50, "cursor": cursor},
        "status=open": {"limit": 50, "status": "open"},
        "sort=-updated_at": {"limit": 50, "sort": "-updated_at"},
    }


def measure_listing(base: str, token: str, n: int, deep_pages: int) -> dict[str, Result]:
    """Sequential list requests, the kinds interleaved; per kind and "all"."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    kinds = list_kinds(session, base, deep_pages)
    results = {name: Result(name) for name in [*kinds, "all"]}
    names = list(kinds)
    for i in range(len(names) * 3 + n):
        name = names[i % len(names)]
        t0 = time.perf_counter()
        try:
            response = session.get(
                f"{base}/api/tickets", params=kinds[name], timeout=REQUEST_TIMEOUT_S
            )
            problem = (
                ""
                if response.status_code == 200
                else (f"HTTP {response.status_code}: {response.text[:160]!r}")
            )
            if not problem and len(response.json()["items"]) != 50:
                problem = f"short page: {len(response.json()['items'])} items"
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:160]}"
        elapsed = time.perf_counter() - t0
        if i < len(names) * 3:
            continue  # warm-up
        for key in (name, "all"):
            if problem:
                results[key].errors[problem] += 1
            else:
                results[key].latencies.append(elapsed)
    session.close()
    return results


def run_scale(
    args: argparse.Namespace,
    database_url: str,
    base: str,
    admin_token: str,
    seed_ticket: dict[str, Any],
) -> int:
    sizes = [int(s) for s in args.scale_sizes.split(",")]
    engine = create_engine(database_url)
    try:
        loader = BulkLoader(engine, seed_ticket["requester_id"], seed_ticket["workflow_version_id"])
        print(
            f"\n== listing vs table size (PostgreSQL; sequential, {args.scale_requests} "
            f"requests per size, limit=50, as the admin) =="
        )
        if loader.skip_fk_triggers:
            print(
                "bulk load: INSERT ... SELECT generate_series in 100k chunks, FK triggers "
                "skipped (session_replication_role=replica), then ANALYZE"
            )
        by_size: dict[int, dict[str, Result]] = {}
        for size in sizes:
            if time.monotonic() > args.deadline:
                print(f"time limit reached; skipping {size:,}")
                break
            print(f"growing tickets to {size:,} ...", flush=True)
            took = loader.grow_to(size)
            actual = loader.count()
            print(
                f"  {actual:,} tickets, {loader.table_size()} with indexes; "
                f"load + ANALYZE {took:.1f}s"
            )
            by_size[size] = measure_listing(base, admin_token, args.scale_requests, args.deep_pages)
        print()
        print(
            f"{'list request':<24}"
            + "".join(f" {f'{s:,} p50':>12} {f'{s:,} p99':>12}" for s in by_size)
            + "   ratio p50"
        )
        first, last = sizes[0], sizes[-1]
        for kind in next(iter(by_size.values()), {}):
            cells = "".join(
                f" {r[kind].p(50):>12.1f} {r[kind].p(99):>12.1f}" for r in by_size.values()
            )
            ratio = (
                _ratio(by_size[last][kind].p(50), by_size[first][kind].p(50))
                if last in by_size and first in by_size
                else "n/a"
            )
            print(f"{kind:<24}{cells}   {ratio:>9}")
        print(
            f"(milliseconds; ratio = p50 at {last:,} / p50 at {first:,}; ~1.0 means listing "
            "does not slow down with table size)"
        )
        errors = sum(results["all"].errors.total() for results in by_size.values())
        for size, results in by_size.items():
            for problem, count in results["all"].errors.most_common(5):
                print(f"  ERROR at {size:,}: {count} x {problem}")
        return errors
    finally:
        engine.dispose()


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    db = parser.add_mutually_exclusive_group()
    db.add_argument(
        "--database-url",
        help="use this (throwaway!) database; default: a fresh SQLite file in a temp dir",
    )
    db.add_argument(
        "--pg",
        action="store_true",
        help="create a fresh PostgreSQL database and drop it at the end",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=DEFAULT_PG_ADMIN_URL,
        help="where --pg creates its database (default: %(default)s)",
    )
    parser.add_argument("--redis-url", help="default: an embedded redis-server in the temp dir")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per scenario (default %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, help="run each scenario for this long instead of --requests"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument(
        "--autocrm-app",
        default="wsgi:app",
        help="gunicorn app spec for AutoCRM, to compare a variant (default: %(default)s)",
    )
    parser.add_argument(
        "--scale", action="store_true", help="PostgreSQL only: list latency at 10k and 1M tickets"
    )
    parser.add_argument("--scale-sizes", default="10000,1000000", help="default: %(default)s")
    parser.add_argument(
        "--scale-requests",
        type=int,
        default=200,
        help="sequential list requests per table size (default %(default)s)",
    )
    parser.add_argument(
        "--deep-pages",
        type=int,
        default=20,
        help="how many pages in the 'deep page' request starts (default 20)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1200,
        help="stop measuring after this long; hard stop 60s later",
    )
    args = parser.parse_args()
    if args.scale and not (args.pg or (args.database_url or "").startswith("postgresql")):
        parser.error("--scale needs PostgreSQL (--pg or a postgresql --database-url)")
    return args


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    print("command:  " + shlex.join(sys.orig_argv), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="acb-"))  # short: the redis unix socket lives here
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    env = service_env(args, stack, tmp, key_prefix=f"acbench-{os.getpid()}:")
    database_url = env["BENCH_DATABASE_URL"] = env["AUTOCRM_DATABASE_URL"]
    engine = baseline_app.make_engine(database_url)
    stack.callback(engine.dispose)
    machine_note(engine)
    print(
        f"servers:  gunicorn -w {args.workers} -k gthread --threads {args.threads} "
        f"(AutoCRM and baseline); clients: {args.clients} threads; "
        + (
            f"{args.seconds:g}s per scenario"
            if args.seconds
            else f"{args.requests} requests per scenario"
        )
    )

    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for email, role in ((ADMIN_EMAIL, "admin"), (CUSTOMER_EMAIL, "customer")):
        run_step(
            f"create-user {role}",
            [*flask, "create-user", "--email", email, "--password", PASSWORD, "--role", role],
            env,
        )

    baseline_app.metadata.create_all(engine)

    def drop_baseline_table() -> None:
        with contextlib.suppress(Exception):
            baseline_app.metadata.drop_all(engine)

    stack.callback(drop_baseline_table)

    autocrm = Server("autocrm", args.autocrm_app, env, tmp, args)
    baseline = Server(
        "baseline",
        "baseline_app:create_app()",
        env,
        tmp,
        args,
        extra=("--pythonpath", str(BENCH_DIR)),
    )
    for server in (autocrm, baseline):
        server.start()
        stack.callback(server.stop)
    autocrm.wait_ready("/api/openapi.json")
    baseline.wait_ready("/health")

    admin_token = token_for(autocrm.url, ADMIN_EMAIL)
    customer_token = token_for(autocrm.url, CUSTOMER_EMAIL)
    seed = requests.post(
        f"{autocrm.url}/api/tickets",
        json=TICKET_BODY,
        timeout=30,
        headers={"Authorization": f"Bearer {customer_token}"},
    )
    if seed.status_code != 201:
        raise BenchError(f"first ticket: HTTP {seed.status_code} {seed.text[:300]}")

    scenarios = {
        "create": (
            Scenario("baseline INSERT", "POST", f"{baseline.url}/insert", 201, body=TICKET_BODY),
            Scenario(
                "autocrm POST /api/tickets",
                "POST",
                f"{autocrm.url}/api/tickets",
                201,
                customer_token,
                TICKET_BODY,
            ),
        ),
        "list": (
            Scenario("baseline SELECT LIMIT 50", "GET", f"{baseline.url}/list", 200),
            Scenario(
                "autocrm GET /api/tickets",
                "GET",
                f"{autocrm.url}/api/tickets?limit=50",
                200,
                admin_token,
            ),
        ),
    }
    warmup = max(4 * args.clients, 64)
    print(f"\nwarming up ({warmup} requests per scenario, not counted) ...", flush=True)
    warm_errors = 0
    for pair in scenarios.values():
        for scenario in pair:
            r = run_scenario(
                scenario, clients=args.clients, total=warmup, seconds=None, deadline=args.deadline
            )
            warm_errors += r.errors.total()
            for problem, count in r.errors.most_common(3):
                print(f"  warm-up ERROR {scenario.name}: {count} x {problem}")

    results: dict[str, tuple[Result, Result]] = {}
    for kind, (base_scenario, app_scenario) in scenarios.items():
        print(f"measuring {kind} ...", flush=True)
        pair = tuple(
            run_scenario(
                s,
                clients=args.clients,
                total=args.requests,
                seconds=args.seconds,
                deadline=args.deadline,
            )
            for s in (base_scenario, app_scenario)
        )
        results[kind] = pair  # type: ignore[assignment]

    print(
        f"\n== ticket API under concurrency ({args.clients} clients; latency is per request, "
        "client-side) =="
    )
    print_load_table([r for pair in results.values() for r in pair])
    print()
    print(f"{'AutoCRM / baseline':<30} {'req/s':>8} {'p50':>8}")
    for kind, (base_r, app_r) in results.items():
        print(
            f"{kind:<30} {_ratio(app_r.rate, base_r.rate):>8} "
            f"{_ratio(app_r.p(50), base_r.p(50)):>8}"
        )
    print(
        "(ratios are the figures to compare: clients and servers share this machine's CPUs, "
        "and it is shared/noisy)"
    )

    errors = warm_errors
    for base_r, app_r in results.values():
        for r in (base_r, app_r):
            errors += r.errors.total()
            for problem, count in r.errors.most_common(5):
                print(f"  ERROR {r.name}: {count} x {problem}")

    if args.scale:
        errors += run_scale(args, database_url, autocrm.url, admin_token, seed.json())

    print()
    for server in (autocrm, baseline):
        counts, samples = server.log_problems()
        if counts:
            print(
                f"{server.name} server log: " + ", ".join(f"{k!r} x{v}" for k, v in counts.items())
            )
            for line in samples:
                print(f"  {line}")
        else:
            print(f"{server.name} server log: no errors")
    if errors:
        print(f"\nRESULT: {errors} request(s) FAILED; the figures above are not clean.")
        return 1
    print("\nRESULT: no request failed.")
    return 0


def main() -> None:
    args = parse_args()
    args.deadline = time.monotonic() + args.max_seconds
    run_main(args, bench, hard_limit_s=args.max_seconds + 60)  # hard stop if something hangs


if __name__ == "__main__":
    main()
