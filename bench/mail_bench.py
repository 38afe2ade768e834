"""The email channel: messages ingested per second through ``mail-in`` and IMAP, and the time
from an email landing in the mailbox to its ticket existing with the default poll interval.

A benchmark that prints figures, not a test (issue 14 asks for these figures). It starts what
it needs (an embedded Redis unless ``--redis-url``, a Dovecot IMAP server, a Celery worker and
Celery beat) on a fresh database and stops it all at the end, including on Ctrl-C. Three
measurements:

1. mail-in: ``--messages`` messages shaped like the test corpus (plain, multipart/alternative,
   a quoted reply style, some with a small attachment), each piped into its own
   ``flask --app wsgi mail-in --mailbox bench`` process, ``--pipes`` at a time, as an MTA's
   pipe transport does. Next to it, the same number of messages through
   ``do_receive_email`` in this process, in a loop: the ratio is what a process per message
   costs (interpreter and app start-up).
2. IMAP: ``--messages`` messages APPENDed to a Dovecot folder, then ``poll_mailbox`` in this
   process, batch after batch, until the folder is empty (each batch logs in over TLS, fetches,
   receives and moves every message to the processed folder).
3. landing -> ticket: ``--latency-messages`` messages APPENDed at random moments over
   ``--latency-spread`` seconds while a real worker and beat poll the mailbox with the default
   ``AUTOCRM_MAIL_POLL_INTERVAL`` (not overridden here). Delay = the ticket's ``created_at``
   minus the moment the APPEND was acknowledged (same machine clock).

    .venv/bin/python bench/mail_bench.py          # SQLite in a temp dir
    .venv/bin/python bench/mail_bench.py --pg     # a fresh PostgreSQL database
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

# This checkout's code, not whatever the shared venv's editable install points at; the Dovecot
# server and the message builder live in its tests/.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from common import (
    DEFAULT_PG_ADMIN_URL,
    REPO_ROOT,
    enter_app,
    machine_note,
    percentile,
    run_main,
    service_env,
    stats,
    stop_process,
)
from workflow_bench import Child  # bench/ is sys.path[0] when this file is run as a script

from celeryconfig import WORKER_QUEUES
from celeryconfig import settings as celery_settings
from tests import imap_server
from tests.mail_messages import build_message

KEY_PREFIX = f"mailbench-{os.getpid()}:"
PASSWORD = "bench-password-" + secrets.token_hex(4)
SUPPORT = "support@bench.example"
IMAP_USER = "imap@bench.example"
IMAP_PASSWORD = "imap-" + secrets.token_hex(8)
PIPE_TIMEOUT_S = 120
# A sender may send AUTOCRM_MAIL_SENDER_HOURLY_LIMIT (30) messages an hour; beyond that mail
# waits for an admin. Each bench sender stays well under it.
MESSAGES_PER_SENDER = 10
ATTACHMENT = bytes(range(256)) * 64  # 16 KB, a small PDF or screenshot's size


# -- messages ----------------------------------------------------------------------------------


class Messages:
    """Fresh messages, each with its own Message-ID and subject, cycling through the shapes
    the corpus has; senders drawn from a pool sized to stay under the hourly limit."""

    def __init__(self, total: int, run: str) -> None:
        self.senders = max(20, math.ceil(total / MESSAGES_PER_SENDER))
        self.run = run
        self.count = 0

    def next(self, label: str) -> tuple[str, bytes]:
        i = self.count
        self.count += 1
        sender = (f"Customer {i % self.senders}", f"customer{i % self.senders}@bench.example")
        subject = f"{label} {self.run} {i}: printer on floor {i % 7} is offline"
        body = (
            f"Hello,\n\nsince this morning the printer on floor {i % 7} shows error E{i}.\n"
            "We restarted it twice.\n\nThanks,\n" + sender[0]
        )
        shape = i % 4
        if shape == 1:  # Gmail/Thunderbird-like: text and HTML alternatives
            raw = build_message(
                sender, SUPPORT, subject, body, html=f"<p>{body.replace(chr(10), '<br>')}</p>"
            )
        elif shape == 2:  # a reply style with quoted history (a new ticket: nothing matches)
            quoted = "\n".join("> " + line for line in body.splitlines())
            raw = build_message(
                sender, SUPPORT, subject, f"{body}\n\nOn Mon, 1 Jun, IT wrote:\n{quoted}\n"
            )
        elif shape == 3:  # with a small attachment
            raw = build_message(
                sender,
                SUPPORT,
                subject,
                body,
                attachments=[(f"error-{i}.pdf", "application/pdf", ATTACHMENT)],
            )
        else:
            raw = build_message(sender, SUPPORT, subject, body)
        return subject, raw


# -- setup, in this process -------------------------------------------------------------------


def make_app(env: dict[str, str]) -> Any:
    os.environ.update({k: v for k, v in env.items() if k.startswith("AUTOCRM_")})
    from autocrm import create_app

    return create_app()


def seed(dovecot: imap_server.DovecotServer) -> dict[str, int]:
    """An admin, a team, a mailbox for the pipe and one polled over IMAP (TLS, as in
    production; the bench's CA file is the app's AUTOCRM_MAIL_CA_FILE)."""
    from autocrm.extensions import db
    from autocrm.mail import mailboxes
    from autocrm.people import teams, users
    from autocrm.people.models import Role

    admin = users.create_user("bench-admin@example.com", PASSWORD, Role.ADMIN)
    team = teams.create_team("Bench support")
    db.session.commit()
    piped, _ = mailboxes.do_create_mailbox(
        admin, {"name": "bench", "address": SUPPORT, "team_id": team.id}
    )
    polled, _ = mailboxes.do_create_mailbox(
        admin,
        {
            "name": "bench-imap",
            "address": IMAP_USER,
            "team_id": team.id,
            "imap_host": dovecot.host,
            "imap_port": dovecot.ssl_port,
            "imap_security": "ssl",
            "imap_username": IMAP_USER,
            "imap_password": IMAP_PASSWORD,
        },
    )
    return {"admin": admin.id, "pipe": piped.id, "imap": polled.id}


def outcomes(mailbox_id: int, since_id: int) -> tuple[Counter[str], int]:
    """What the mailbox's messages after ``since_id`` became, and the last id."""
    from sqlalchemy import func, select

    from autocrm.extensions import db
    from autocrm.mail.models import InboundEmail

    rows = db.session.execute(
        select(InboundEmail.status, func.count(), func.max(InboundEmail.id))
        .where(InboundEmail.mailbox_id == mailbox_id, InboundEmail.id > since_id)
        .group_by(InboundEmail.status)
    ).all()
    db.session.rollback()
    counts = Counter({str(status.value): n for status, n, _ in rows})
    return counts, max([since_id, *(last for _, _, last in rows)])


def outcome_line(counts: Counter[str], expected: int) -> tuple[str, int]:
    text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
    return f"stored: {text} (of {expected})", expected - counts["processed"]


# -- 1. mail-in -------------------------------------------------------------------------------


class Pipes:
    """``mail-in`` processes, as an MTA starts them; whichever still runs when the bench stops
    is killed with its process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.live: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.done = 0
        self.argv = [sys.executable, "-m", "flask", "--app", "wsgi", "mail-in", "--mailbox"]

    def deliver(self, mailbox: str, raw: bytes) -> tuple[float, int, str]:
        """Wall seconds, exit status and output of one delivery."""
        began = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 (fixed argv)
            [*self.argv, mailbox],
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        with self.lock:
            self.live.add(process)
        try:
            output, _ = process.communicate(raw, timeout=PIPE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop_process(process)
            output = b"timed out"
        finally:
            with self.lock:
                self.live.discard(process)
                self.done += 1
                if self.done % 50 == 0:
                    print(f"  ... {self.done} piped", flush=True)
        return time.perf_counter() - began, process.returncode, output.decode(errors="replace")

    def stop_all(self) -> None:
        with self.lock:
            live = list(self.live)
        for process in live:
            stop_process(process)


def bench_mail_in(
    pipes: Pipes, mailbox_ids: dict[str, int], messages: Messages, n: int, concurrency: int
) -> int:
    from autocrm.extensions import db
    from autocrm.mail import receive
    from autocrm.mail.models import Mailbox

    mailbox = db.session.get_one(Mailbox, mailbox_ids["pipe"])
    _, mark = outcomes(mailbox.id, 0)
    baseline = [messages.next("In-process")[1] for _ in range(n)]
    began = time.perf_counter()
    for raw in baseline:
        receive.do_receive_email(mailbox, raw, via="pipe")
    in_process_wall = time.perf_counter() - began
    in_process, mark = outcomes(mailbox.id, mark)

    print(f"  ... {n} received in-process; piping {n}", flush=True)
    piped = [messages.next("Piped")[1] for _ in range(n)]
    results: list[tuple[float, int, str]] = []
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda raw: pipes.deliver("bench", raw), piped))
    pipe_wall = time.perf_counter() - began
    through_pipe, _ = outcomes(mailbox.id, mark)

    exits = Counter(code for _, code, _ in results)
    pipe_rate = n / pipe_wall
    in_process_rate = n / in_process_wall
    print(
        f"\n== 1. mail-in: {n} messages, one `flask --app wsgi mail-in --mailbox bench` process "
        f"each, {concurrency} at a time (an MTA's pipe) =="
    )
    line, missing = outcome_line(through_pipe, n)
    print(f"{line}; exit codes: {dict(exits)}")
    print(f"throughput:   {pipe_rate:7.1f} messages/s ({pipe_wall:.1f}s)")
    print(f"per message:  {stats([wall for wall, _, _ in results], '8.1f')}")
    line_in, missing_in = outcome_line(in_process, n)
    print(f"in-process do_receive_email loop, {n} messages: {line_in}")
    print(f"throughput:   {in_process_rate:7.1f} messages/s ({in_process_wall:.1f}s)")
    p50 = percentile(sorted(wall for wall, _, _ in results), 50)
    print(
        f"ratio in-process/pipe: {in_process_rate / pipe_rate:.1f}x (per message: pipe p50 "
        f"{p50:.2f}s vs {1 / in_process_rate:.3f}s in-process; the difference is the "
        "process's start-up, while sharing the CPUs with the other pipes)"
    )
    print(
        f"argon2 hash_password: {password_hash_seconds() * 1000:.0f} ms each "
        "(find_or_create_customer does one per email, known sender or not)"
    )
    failed = [output for _, code, output in results if code != 0]
    if failed:
        print(f"first failed delivery:\n{failed[0][-2000:]}")
    return missing + missing_in + len(failed)


def password_hash_seconds(rounds: int = 5) -> float:
    """What one password hash costs here: ``find_or_create_customer`` hashes one per email
    (a new customer's password, or a dummy one so that both paths take as long)."""
    from autocrm.security import hash_password

    began = time.perf_counter()
    for _ in range(rounds):
        hash_password(secrets.token_urlsafe(16))
    return (time.perf_counter() - began) / rounds


# -- 2. IMAP ----------------------------------------------------------------------------------


def bench_imap(
    dovecot: imap_server.DovecotServer, mailbox_id: int, messages: Messages, n: int
) -> int:
    from autocrm.mail import polling

    _, mark = outcomes(mailbox_id, 0)
    raws = [messages.next("Polled")[1] for _ in range(n)]
    began = time.perf_counter()
    for raw in raws:
        dovecot.append(IMAP_USER, raw)
    append_wall = time.perf_counter() - began

    batches: list[int] = []
    began = time.perf_counter()
    while received := polling.poll_mailbox(mailbox_id):
        batches.append(received)
    poll_wall = time.perf_counter() - began
    left = len(dovecot.list_messages(IMAP_USER))
    counts, _ = outcomes(mailbox_id, mark)
    print(
        f"\n== 2. IMAP: {n} messages APPENDed to Dovecot, then poll_mailbox in this process "
        f"until the folder is empty (TLS, batches of {polling.BATCH}, each moved to the "
        "processed folder) =="
    )
    line, missing = outcome_line(counts, n)
    print(f"{line}; left in INBOX: {left}; batches: {len(batches)}")
    print(f"APPEND:       {n / append_wall:7.1f} messages/s (the bench filling the mailbox)")
    print(f"throughput:   {sum(batches) / poll_wall:7.1f} messages/s ({poll_wall:.1f}s)")
    return missing + left


# -- 3. landing -> ticket ----------------------------------------------------------------------


def forget_published(redis_client: Any) -> None:
    """Phases 1 and 2 created tickets with nobody consuming their events; the workers of
    phase 3 must not start with that backlog."""
    from sqlalchemy import update

    from autocrm.columns import utcnow
    from autocrm.events.models import OutboxEvent
    from autocrm.extensions import db

    db.session.execute(
        update(OutboxEvent).where(OutboxEvent.processed_at.is_(None)).values(processed_at=utcnow())
    )
    db.session.commit()
    redis_client.delete(*(KEY_PREFIX + queue for queue in WORKER_QUEUES.split(",")))


def tickets_created(subjects: list[str]) -> dict[str, datetime]:
    from sqlalchemy import select

    from autocrm import database
    from autocrm.extensions import db
    from autocrm.tickets.models import Ticket

    with database.read_only():
        rows = db.session.execute(
            select(Ticket.subject, Ticket.created_at).where(Ticket.subject.in_(subjects))
        ).all()
        db.session.rollback()
    return {str(subject): created for subject, created in rows}


def bench_latency(
    dovecot: imap_server.DovecotServer, messages: Messages, args: argparse.Namespace
) -> int:
    from autocrm.columns import utcnow

    rng = random.Random(args.seed)
    moments = sorted(rng.uniform(0, args.latency_spread) for _ in range(args.latency_messages))
    landed: dict[str, datetime] = {}
    began = time.monotonic()
    for moment in moments:
        time.sleep(max(0.0, began + moment - time.monotonic()))
        subject, raw = messages.next("Latency")
        dovecot.append(IMAP_USER, raw)
        landed[subject] = utcnow()
    print(f"  ... {len(landed)} messages appended over {time.monotonic() - began:.0f}s", flush=True)

    subjects = list(landed)
    deadline = time.monotonic() + 3 * args.poll_interval + 30
    found = tickets_created(subjects)
    while len(found) < len(subjects) and time.monotonic() < deadline:
        time.sleep(0.5)
        found = tickets_created(subjects)
    delays = sorted((found[s] - landed[s]).total_seconds() for s in found)
    print(
        f"\n== 3. landing in the mailbox -> ticket exists: {len(subjects)} messages APPENDed at "
        f"random moments over {args.latency_spread:g}s; real worker + beat =="
    )
    print(f"tickets: {len(found)}/{len(subjects)}")
    if delays:
        print(
            "delay:    "
            + "  ".join(f"p{q} {percentile(delays, q):6.2f}s" for q in (50, 90, 99))
            + f"  max {delays[-1]:6.2f}s  min {delays[0]:6.2f}s"
        )
    return len(subjects) - len(found)


def start_workers(
    env: dict[str, str], tmp: Path, logs: Path, stack: contextlib.ExitStack, concurrency: int
) -> tuple[Child, Child]:
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    worker = Child(
        "worker",
        [*celery, "worker", "--pool", "prefork", "--concurrency", str(concurrency),
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
    worker.wait_for("ready.")
    beat.wait_for("beat: Starting...")
    return worker, beat


# -- main --------------------------------------------------------------------------------------


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    print("command:  " + shlex.join(sys.orig_argv), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="mlb-"))  # short: the redis unix socket lives here
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    dovecot = stack.enter_context(imap_server.running(users={IMAP_USER: IMAP_PASSWORD}))
    env = service_env(args, stack, tmp, KEY_PREFIX)
    env["AUTOCRM_MAIL_CA_FILE"] = dovecot.ca_file
    # The latency figure is for the default poll interval: whatever this shell says is ignored.
    env.pop("AUTOCRM_MAIL_POLL_INTERVAL", None)
    os.environ.pop("AUTOCRM_MAIL_POLL_INTERVAL", None)
    app = make_app(env)
    redis_client = enter_app(stack, app, env["AUTOCRM_REDIS_URL"], (f"{KEY_PREFIX}*",))
    args.poll_interval = app.config["AUTOCRM_MAIL_POLL_INTERVAL"]

    from autocrm.extensions import db
    from autocrm.mail import polling

    machine_note(db.engine)
    print(f"code:     {Path(sys.modules['autocrm'].__file__ or '').parent}")
    request_period = celery_settings["beat_schedule"]["request-mailbox-polls"]["schedule"]
    request_period = request_period.total_seconds()
    print(
        f"settings: AUTOCRM_MAIL_POLL_INTERVAL={args.poll_interval}s (default), beat's "
        f"request-mailbox-polls every {request_period:g}s, poll batch {polling.BATCH}, "
        f"AUTOCRM_MAIL_SENDER_HOURLY_LIMIT={app.config['AUTOCRM_MAIL_SENDER_HOURLY_LIMIT']}; "
        f"celery worker --concurrency {args.concurrency} (prefork) + beat; Dovecot "
        f"{dovecot.host}:{dovecot.ssl_port} (TLS)"
    )
    mailbox_ids = seed(dovecot)
    total = 3 * args.messages + args.latency_messages
    messages = Messages(total, secrets.token_hex(3))
    print(
        f"messages: 1 in 4 each: plain, text+HTML, quoted reply style, 16 KB PDF attached; "
        f"{messages.senders} senders",
        flush=True,
    )

    pipes = Pipes(env)
    stack.callback(pipes.stop_all)
    failures = bench_mail_in(pipes, mailbox_ids, messages, args.messages, args.pipes)
    failures += bench_imap(dovecot, mailbox_ids["imap"], messages, args.messages)

    forget_published(redis_client)
    logs = Path(args.log_dir) if args.log_dir else tmp
    logs.mkdir(parents=True, exist_ok=True)
    print("\nstarting a worker and beat ...", flush=True)
    worker, beat = start_workers(env, tmp, logs, stack, args.concurrency)
    failures += bench_latency(dovecot, messages, args)

    print()
    for child in (worker, beat):
        problems = child.problems()
        print(
            f"{child.name} log: "
            + (", ".join(f"{k!r} x{v}" for k, v in problems.items()) or "no errors")
        )
        if problems:
            print(child.first_error())
    if failures:
        print(f"\nRESULT: {failures} message(s) not processed, not delivered or not polled.")
        return 1
    print("\nRESULT: every message became a ticket.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    db = parser.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="a throwaway database; default: SQLite in a temp dir")
    db.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database, dropped after")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", help="default: an embedded redis-server in the temp dir")
    parser.add_argument(
        "--messages", type=int, default=200, help="phases 1 and 2: messages per path"
    )
    parser.add_argument("--pipes", type=int, default=4, help="concurrent mail-in processes")
    parser.add_argument("--latency-messages", type=int, default=40, help="phase 3 messages")
    parser.add_argument(
        "--latency-spread", type=float, default=150, help="phase 3 appends over this many s"
    )
    parser.add_argument("--seed", type=int, default=14, help="phase 3's random moments")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--log-dir", help="keep the worker's and beat's logs here")
    parser.add_argument("--max-seconds", type=float, default=1500, help="hard stop after this")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    run_main(args, bench, hard_limit_s=args.max_seconds)


if __name__ == "__main__":
    main()
