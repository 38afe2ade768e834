"""AutoCRM next to django-helpdesk 2.6.1: the same 10,000 tickets, the same gunicorn settings.

A benchmark that prints figures, not a test (never run in CI). It needs PostgreSQL and network
access to PyPI the first time:

- the peer goes into its own virtualenv, ``~/.cache/autocrm-peer-bench/venv-<version>``
  (``--venv-dir``; reused by later runs), with ``pip install`` of the pinned versions in
  ``PEER_PACKAGES``; the bench never imports it, it only runs its ``python``;
- a minimal Django project for it is written to a temp dir (``settings.py``, ``urls.py``
  mounting ``helpdesk.urls`` under ``/helpdesk/``, its REST API on, MD5 password hashing so
  that HTTP basic auth costs what AutoCRM's bearer token does, the console mail backend);
- each side gets its own fresh PostgreSQL database, uniquely named and dropped after;
- both are loaded with the same 10,000 generated tickets (``--tickets``: subject,
  description, status mix, priority, creation time), straight into their tables;
- both run under ``gunicorn -w 2 -k gthread --threads 8`` (``--workers``, ``--threads``),
  one after the other, so they do not share the CPUs while measured.

Then, for each: ``--clients`` threads create tickets (``POST /api/tickets`` as a customer with
a bearer token; ``POST /helpdesk/api/tickets/`` as a staff superuser with basic auth, the only
account its API accepts) and read the first page of the list (``GET /api/tickets?limit=25``
as the admin; ``GET /helpdesk/api/tickets/``, 25 a page). It prints req/s and p50/p99 per
side, and the AutoCRM/django-helpdesk ratios.

    .venv/bin/python bench/peer_bench.py
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from common import (  # bench/ is sys.path[0] when this file is run as a script
    DEFAULT_PG_ADMIN_URL,
    HOST,
    STARTUP_TIMEOUT_S,
    BenchError,
    LoggedProcess,
    Result,
    free_port,
    fresh_pg_database,
    run_load,
    run_main,
    run_step,
)
from sqlalchemy import create_engine, make_url, text

PEER_VERSION = "2.6.1"
PEER_PACKAGES = [
    f"django-helpdesk=={PEER_VERSION}",
    "Django==5.2.20",
    "djangorestframework==3.18.3",
    "gunicorn==27.0.1",
    "psycopg[binary]==3.3.9",
]
PASSWORD = "bench-password-" + secrets.token_hex(4)
ADMIN_EMAIL = "peer-admin@example.com"
CUSTOMER_EMAIL = "peer-customer@example.com"
# Status mix of the loaded tickets (20 slots), the same on both sides: mostly closed.
STATUS_MIX = ["closed"] * 12 + ["solved"] * 3 + ["open"] * 3 + ["new"] * 2
HELPDESK_STATUS = {"new": 1, "open": 1, "solved": 3, "closed": 4}  # Open, Resolved, Closed

SETTINGS = """
SECRET_KEY = {secret!r}
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"
SITE_ID = 1
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DATABASES = {{"default": {{
    "ENGINE": "django.db.backends.postgresql", "NAME": {name!r}, "USER": {user!r},
    "PASSWORD": {password!r}, "HOST": {host!r}, "PORT": {port!r}, "CONN_MAX_AGE": 60,
}}}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
HELPDESK_API_ENABLED = True
HELPDESK_TEAMS_MODE_ENABLED = False  # teams need pinax-teams; not part of what is measured
LOGIN_URL = "/helpdesk/login/"
"""

URLS = """
from django.urls import include, path
urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
"""

LOAD = """
import json, sys, django
django.setup()
from datetime import datetime
from django.contrib.auth import get_user_model
from helpdesk.models import Queue, Ticket
rows = json.load(open(sys.argv[1]))
admin = get_user_model().objects.create_superuser("peer-admin", sys.argv[2], sys.argv[3])
queue = Queue.objects.create(title="Bench", slug="bench", allow_email_submission=False)
Ticket.objects.bulk_create(
    [Ticket(queue=queue, title=r["subject"], description=r["description"],
            submitter_email=sys.argv[4], status=r["helpdesk_status"], priority=r["priority"],
            created=datetime.fromisoformat(r["created_at"]),
            modified=datetime.fromisoformat(r["created_at"])) for r in rows],
    batch_size=1000,
)
print(json.dumps({"queue": queue.id, "tickets": Ticket.objects.count()}))
"""


def generated_tickets(n: int) -> list[dict[str, Any]]:
    """The same ``n`` tickets for both sides, newest first, one a minute."""
    rng = random.Random(17)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for g in range(1, n + 1):
        status = STATUS_MIX[g % len(STATUS_MIX)]
        rows.append(
            {
                "subject": f"Bench ticket #{g}",
                "description": f"Generated by bench/peer_bench.py, row {g}. "
                + " ".join(rng.choice(("printer", "login", "invoice", "vpn")) for _ in range(20)),
                "status": status,
                "helpdesk_status": HELPDESK_STATUS[status],
                "priority": 1 + g % 4,
                "created_at": (now - timedelta(minutes=g)).isoformat(),
            }
        )
    return rows


# -- load --------------------------------------------------------------------------------------


def line(result: Result) -> str:
    return (
        f"{result.name:<34} {len(result.latencies):>6} {result.errors.total():>6} "
        f"{result.rate:>8.1f} {result.p(50):>8.1f} {result.p(99):>8.1f}"
    )


def send_each(
    method: str, url: str, body: Any, timeout: float
) -> Callable[[requests.Session, int], requests.Response]:
    """Sends request i: ``body(i)`` when ``body`` is a function, else ``body`` itself."""

    def send(session: requests.Session, i: int) -> requests.Response:
        payload = body(i) if callable(body) else body
        return session.request(method, url, json=payload, timeout=timeout)

    return send


class Gunicorn(LoggedProcess):
    def __init__(
        self, name: str, python: str, app: str, cwd: Path, env: dict[str, str], log_dir: Path,
        args: argparse.Namespace,
    ) -> None:  # fmt: skip
        super().__init__(log_dir / f"{name}.log")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.cwd = cwd
        self.env = env
        self.argv = [
            python, "-m", "gunicorn", "-w", str(args.workers), "-k", "gthread",
            "--threads", str(args.threads), "-b", f"{HOST}:{self.port}",
            "--graceful-timeout", "5", "--error-logfile", "-", "--chdir", str(cwd), app,
        ]  # fmt: skip

    def start(self, probe: str) -> None:
        self.launch(self.argv, self.env)
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url + probe, timeout=2)
                return
            time.sleep(0.3)
        raise BenchError(f"gunicorn did not answer:\n{self.log_tail()}")


def measure(
    name: str, server: Gunicorn, create: tuple[str, dict[str, str], Any, int],
    list_: tuple[str, dict[str, str]], list_requests: int, args: argparse.Namespace,
) -> tuple[Result, Result]:  # fmt: skip
    # Warm-up, not timed: the first requests (imports, connections), a few per worker.
    warm = 2 * args.workers
    list_url, list_headers = server.url + list_[0], list_[1]
    list_send = send_each("GET", list_url, None, args.timeout)
    run_load("warm-up", list_send, 200, clients=warm, total=warm, headers=list_headers)
    path, headers, body, expected = create
    created = run_load(
        f"{name} create", send_each("POST", server.url + path, body, args.timeout), expected,
        clients=args.clients, total=args.requests, headers=headers,
    )  # fmt: skip
    listed = run_load(
        f"{name} list, first page", list_send, 200,
        clients=args.clients, total=list_requests, headers=list_headers,
    )  # fmt: skip
    for result in (created, listed):
        for problem, count in list(result.errors.items())[:3]:
            print(f"  {result.name}: {count} x {problem}")
    return created, listed


# -- the two sides -----------------------------------------------------------------------------


def peer_venv(args: argparse.Namespace) -> Path:
    """The peer's virtualenv, created and filled on first use (then reused)."""
    venv = Path(args.venv_dir).expanduser() / f"venv-{PEER_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / "bench-packages.txt"
    if marker.exists() and marker.read_text() == "\n".join(PEER_PACKAGES):
        print(f"peer virtualenv: {venv} (reused)")
        return python
    shutil.rmtree(venv, ignore_errors=True)
    began = time.monotonic()
    print(f"peer virtualenv: creating {venv}, pip install {' '.join(PEER_PACKAGES)} ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"pip install failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    marker.write_text("\n".join(PEER_PACKAGES))
    print(f"  installed in {time.monotonic() - began:.0f}s")
    return python


def run_helpdesk(
    args: argparse.Namespace, stack: contextlib.ExitStack, tmp: Path, rows_file: Path
) -> tuple[Result, Result]:
    python = str(peer_venv(args))
    url = make_url(stack.enter_context(fresh_pg_database(args.pg_admin_url, "peer_helpdesk")))
    project = tmp / "helpdesk_project"
    project.mkdir()
    (project / "settings.py").write_text(
        SETTINGS.format(
            secret=secrets.token_urlsafe(32),
            name=url.database,
            user=url.username or "",
            password=url.password or "",
            host=url.host or "",
            port=str(url.port or 5432),
        )
    )
    (project / "urls.py").write_text(URLS)
    (project / "load.py").write_text(LOAD)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="settings", PYTHONPATH=str(project))
    for var in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(var, None)
    began = time.monotonic()
    run_step("django migrate", [python, "-m", "django", "migrate", "-v", "0"], env)
    loaded = json.loads(
        run_step(
            "load tickets",
            [python, str(project / "load.py"), str(rows_file), ADMIN_EMAIL, PASSWORD,
             CUSTOMER_EMAIL],
            env,
        ).strip().splitlines()[-1]
    )  # fmt: skip
    print(f"django-helpdesk: migrated, {loaded['tickets']} tickets in "
          f"{time.monotonic() - began:.0f}s", flush=True)  # fmt: skip
    versions = run_step(
        "versions",
        [python, "-c", "import django, helpdesk, rest_framework as r, gunicorn as g; "
         "from importlib.metadata import version as v; "
         "print(v('django-helpdesk'), django.get_version(), r.__version__, g.__version__)"],
        env,
    ).split()  # fmt: skip
    print(f"  django-helpdesk {versions[0]}, Django {versions[1]}, DRF {versions[2]}, "
          f"gunicorn {versions[3]}")  # fmt: skip
    server = Gunicorn("helpdesk", python, "django.core.wsgi:get_wsgi_application()", project,
                      env, tmp, args)  # fmt: skip
    server.start("/helpdesk/api/tickets/")
    try:
        basic = base64.b64encode(f"peer-admin:{PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        probe = requests.get(
            server.url + "/helpdesk/api/tickets/", headers=headers, timeout=args.timeout
        )
        if probe.status_code != 200 or probe.json().get("count") != loaded["tickets"]:
            raise BenchError(f"helpdesk list: HTTP {probe.status_code} {probe.text[:300]}")
        body = lambda i: {  # noqa: E731
            "queue": loaded["queue"],
            "title": f"Peer bench ticket {i}",
            "description": "Created by bench/peer_bench.py to measure ticket creation.",
            "submitter_email": CUSTOMER_EMAIL,
            "priority": 3,
        }
        return measure(
            "django-helpdesk",
            server,
            ("/helpdesk/api/tickets/", headers, body, 201),
            ("/helpdesk/api/tickets/", headers),
            args.peer_list_requests,
            args,
        )
    finally:
        server.stop()


def run_autocrm(
    args: argparse.Namespace, stack: contextlib.ExitStack, tmp: Path, rows: list[dict[str, Any]]
) -> tuple[Result, Result]:
    from common import service_env

    args.pg, args.database_url, args.redis_url = True, None, None
    env = service_env(args, stack, tmp, f"peerbench-{os.getpid()}:")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for email, role in ((ADMIN_EMAIL, "admin"), (CUSTOMER_EMAIL, "customer")):
        run_step(
            f"create-user {role}",
            [*flask, "create-user", "--email", email, "--password", PASSWORD, "--role", role],
            env,
        )
    server = Gunicorn("autocrm", sys.executable, "wsgi:app", Path.cwd(), env, tmp, args)
    server.start("/api/health")
    try:
        tokens = {}
        for email in (ADMIN_EMAIL, CUSTOMER_EMAIL):
            response = requests.post(
                server.url + "/api/auth/token",
                json={"email": email, "password": PASSWORD},
                timeout=60,
            )
            if response.status_code != 200:
                raise BenchError(f"token {email}: HTTP {response.status_code} {response.text}")
            tokens[email] = response.json()["access_token"]
        # The first ticket through the API publishes the workflow version the rest refer to.
        first = requests.post(
            server.url + "/api/tickets",
            json={"subject": "Bench ticket #0", "description": "The first, through the API."},
            headers={"Authorization": f"Bearer {tokens[CUSTOMER_EMAIL]}"},
            timeout=60,
        )
        if first.status_code != 201:
            raise BenchError(f"first ticket: HTTP {first.status_code} {first.text[:300]}")
        load_autocrm(env["AUTOCRM_DATABASE_URL"], rows[1:])
        body = lambda i: {  # noqa: E731
            "subject": f"Peer bench ticket {i}",
            "description": "Created by bench/peer_bench.py to measure ticket creation.",
        }
        return measure(
            "AutoCRM",
            server,
            ("/api/tickets", {"Authorization": f"Bearer {tokens[CUSTOMER_EMAIL]}"}, body, 201),
            ("/api/tickets?limit=25", {"Authorization": f"Bearer {tokens[ADMIN_EMAIL]}"}),
            args.list_requests,
            args,
        )
    finally:
        server.stop()


def load_autocrm(url: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` straight into ``tickets`` (the customer's, on the current workflow version)."""
    began = time.monotonic()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            customer = conn.execute(
                text("SELECT id FROM users WHERE email = :e"), {"e": CUSTOMER_EMAIL}
            ).scalar_one()
            workflow = conn.execute(text("SELECT max(id) FROM workflow_versions")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO tickets (subject, description, status, category, priority, "
                    "channel, requester_id, workflow_version_id, created_at, updated_at, "
                    "status_changed_at, solved_at, closed_at, version) VALUES (:subject, "
                    ":description, :status, :status, :priority, 'web', :requester, :workflow, "
                    ":created_at, :created_at, :created_at, :solved, :closed, 1)"
                ),
                [
                    {
                        **r,
                        "requester": customer,
                        "workflow": workflow,
                        "created_at": datetime.fromisoformat(r["created_at"]).replace(tzinfo=None),
                        "solved": datetime.fromisoformat(r["created_at"]).replace(tzinfo=None)
                        if r["status"] in ("solved", "closed")
                        else None,
                        "closed": datetime.fromisoformat(r["created_at"]).replace(tzinfo=None)
                        if r["status"] == "closed"
                        else None,
                    }
                    for r in rows
                ],
            )
            count = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE tickets"))
    finally:
        engine.dispose()
    print(f"AutoCRM: migrated, {count} tickets in {time.monotonic() - began:.0f}s", flush=True)


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--tickets", type=int, default=10_000, help="loaded on each side")
    parser.add_argument("--clients", type=int, default=16, help="client threads")
    parser.add_argument("--requests", type=int, default=1000, help="creates per side")
    parser.add_argument("--list-requests", type=int, default=200, help="AutoCRM list reads")
    parser.add_argument(
        "--peer-list-requests",
        type=int,
        default=32,
        help="django-helpdesk list reads (each walks the whole table: seconds apiece)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads (both)")
    parser.add_argument(
        "--venv-dir", default="~/.cache/autocrm-peer-bench", help="where the peer's venv lives"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds a request may take (%(default)s)"
    )
    parser.add_argument("--max-seconds", type=float, default=2400)
    return parser.parse_args()


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    print("command:  " + shlex.join(sys.orig_argv), flush=True)
    print(f"machine:  nproc={len(os.sched_getaffinity(0))} "
          f"load={' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="peerb-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    rows = generated_tickets(args.tickets)
    rows_file = tmp / "tickets.json"
    rows_file.write_text(json.dumps(rows))
    print(f"servers:  gunicorn -w {args.workers} -k gthread --threads {args.threads}, one at a "
          f"time; {args.clients} client threads, {args.requests} creates each, "
          f"{args.list_requests} / {args.peer_list_requests} first-page reads",
          flush=True)  # fmt: skip
    ours = run_autocrm(args, stack, tmp, rows)
    peer = run_helpdesk(args, stack, tmp, rows_file)
    print(f"\n{'scenario':<34} {'ok':>6} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for result in (*ours, *peer):
        print(line(result))

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if a and b and a == a and b == b else "n/a"

    print(
        f"\nAutoCRM / django-helpdesk {PEER_VERSION}: create req/s "
        f"{ratio(ours[0].rate, peer[0].rate)}; first page req/s "
        f"{ratio(ours[1].rate, peer[1].rate)}, p50 latency "
        f"{ratio(peer[1].p(50), ours[1].p(50))} lower"
    )
    failed = any(r.errors for r in (*ours, *peer))
    return 1 if failed else 0


def main() -> None:
    args = parse_args()
    run_main(args, bench, hard_limit_s=args.max_seconds)


if __name__ == "__main__":
    main()
