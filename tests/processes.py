"""Real processes for tests: Celery workers, Celery beat and a gunicorn server, plus what tests
that use them need: reading committed data without blocking the workers, and deleting what a
test committed.

Such tests commit for real (another process cannot see a rolled-back test transaction), so
they use the session-wide ``app`` fixture and ``db.session`` directly instead of ``db_session``,
and delete what they committed afterwards (``purge_committed_since``).

On SQLite the test process must not hold a transaction while it waits for a worker: a reader
takes no lock only inside ``database.read_only()``, and any transaction left open would keep
the worker from writing. ``snapshot`` reads that way and ends the transaction at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import redis
from sqlalchemy import delete, select

from autocrm import database
from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.engine.versions import current_version
from autocrm.events import relay
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.files.models import Attachment
from autocrm.mail.models import Mailbox
from autocrm.notifications.models import EmailMessage
from autocrm.people.models import AssignmentPolicy, Team, User
from autocrm.sla import clocks as sla
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from autocrm.webhooks.models import WebhookDelivery, WebhookSubscription
from celeryconfig import WORKER_QUEUES
from tests.conftest import key_prefix, wait_until, worker_env
from tests.factories import Factory
from workflows import default_definition, dump_definition, engine, load_definition

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
T = TypeVar("T")


@dataclass
class Process:
    """A child process in its own process group, its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        def seen() -> bool:
            assert self.popen.poll() is None, f"{self.name} exited:\n{self.log_text()}"
            return text in self.log_text()

        assert wait_until(seen, timeout=timeout, interval=0.1), (
            f"{self.name}: no {text!r} within {timeout}s:\n{self.log_text()}"
        )

    def kill_group(self) -> None:
        """SIGKILL the process and its children (a worker's pool), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM (a Celery warm shutdown), then SIGKILL the group if it lingers."""
        if self.popen.poll() is None:
            self.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_TIMEOUT_S)
        self.kill_group()


def start(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str], ready: str | None
) -> Process:
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(  # noqa: S603 (fixed argv)
            argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, process_group=0
        )
    process = Process(name, popen, log)
    if ready is not None:
        try:
            process.wait_for_log(ready)
        except BaseException:
            process.stop()
            raise
    return process


def kill(pid: int) -> None:
    """SIGKILL one process (say a worker's pool process), as the OOM killer would."""
    os.kill(pid, signal.SIGKILL)


def test_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment that gives a child process the test app's settings."""
    return {**worker_env(database_url, redis_url), "PYTHONUNBUFFERED": "1", **extra}


def start_worker(
    name: str,
    database_url: str,
    redis_url: str,
    log_dir: Path,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    module: str | None = None,
    env: dict[str, str] | None = None,
    queues: str = WORKER_QUEUES,
) -> Process:
    """``celery -A workers worker``, or ``python -m <module> worker`` for a wrapper module
    that registers test-only handlers before starting the worker. It consumes every queue
    (``celeryconfig``) unless ``queues`` names fewer."""
    command = ["-m", module] if module else ["-m", "celery", "-A", "workers"]
    argv = [
        sys.executable, *command, "worker", "--pool", pool, "--concurrency", str(concurrency),
        "--loglevel", "INFO", "--hostname", f"{name}@%h", "--queues", queues,
        "--without-heartbeat", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    return start(
        name, argv, log_dir, {**test_env(database_url, redis_url), **(env or {})}, "ready."
    )


def start_beat(database_url: str, redis_url: str, log_dir: Path) -> Process:
    """Celery beat with its schedule file in ``log_dir`` (never the repository)."""
    argv = [
        sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO",
        "--schedule", str(log_dir / "celerybeat-schedule"),
    ]  # fmt: skip
    return start("beat", argv, log_dir, test_env(database_url, redis_url), "beat: Starting...")


@contextlib.contextmanager
def worker_and_beat(
    database_url: str, redis_url: str, log_dir: Path, **worker_options: Any
) -> Iterator[Process]:
    """A worker (``start_worker``'s options) and beat, for a test module. Messages queued by
    earlier tests are dropped first, and what is left in the queues after."""
    with redis.Redis.from_url(redis_url) as broker:
        drop_queued_messages(broker)
        worker = start_worker("worker", database_url, redis_url, log_dir, **worker_options)
        try:
            beat = start_beat(database_url, redis_url, log_dir)
            try:
                yield worker
            finally:
                beat.stop()
        finally:
            worker.stop()
            drop_queued_messages(broker)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    database_url: str, redis_url: str, log_dir: Path, workers: int = 2
) -> tuple[Process, str]:
    """gunicorn serving ``wsgi:app`` on a free loopback port; returns it and its base URL."""
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", "4",
        "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "wsgi:app",
    ]  # fmt: skip
    process = start("gunicorn", argv, log_dir, test_env(database_url, redis_url), None)
    try:
        process.wait_for_log("Booting worker")
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert process.popen.poll() is None, process.log_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        assert wait_until(answers, timeout=STARTUP_TIMEOUT_S), process.log_text()
    except BaseException:
        process.stop()
        raise
    return process, url


def start_s3_server(log_dir: Path) -> tuple[Process, str]:
    """moto's S3 server (a stand-in for AWS S3, MinIO and the like) on a free loopback port;
    returns it and its endpoint URL."""
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    process = start("s3", argv, log_dir, env, "Running on")
    return process, f"http://127.0.0.1:{port}"


def drop_queued_messages(broker: Any) -> None:
    """Earlier tests' messages (for rolled-back rows): a fresh worker would first work through
    them, each a "vanished" event. This process's relay sends what it holds first."""
    relay.flush()
    broker.delete(*(key_prefix() + queue for queue in WORKER_QUEUES.split(",")))


# -- reading and cleaning up committed data --------------------------------------------------


def snapshot(read: Callable[[], T]) -> T:
    """Run ``read`` in a read-only transaction and end it, so a worker is never blocked.
    ``read`` returns plain values (columns, not ORM objects, which would expire at once)."""
    db.session.rollback()  # end whatever an attribute refresh began: it may hold the lock
    with database.read_only():
        try:
            return read()
        finally:
            db.session.rollback()


def idle(since: datetime) -> bool:
    """Every outbox event recorded since ``since`` has been handled."""
    return not snapshot(
        lambda: db.session.scalar(
            select(OutboxEvent.id)
            .where(OutboxEvent.created_at >= since, OutboxEvent.processed_at.is_(None))
            .limit(1)
        )
    )


def purge_committed_since(started: datetime) -> None:
    """Delete what a test (and the processes it ran) committed since ``started``.

    Nothing else commits while such a test runs (the other tests roll back), so "created since
    the test began" is exactly what it made. Deleting tickets cascades to their trail, SLA
    clocks, rule firings, notifications and messages; deleting users to their sessions and API
    tokens. Audit entries go too: logins and refused logins are recorded as they happen.
    """
    db.session.rollback()
    version_ids = db.session.scalars(
        select(WorkflowVersion.id).where(WorkflowVersion.created_at >= started)
    ).all()
    for model in (
        AdminAuditEntry,
        OutboxEvent,
        EmailMessage,
        Ticket,
        Mailbox,  # and, by cascade, what it received
        Attachment,
        WebhookDelivery,  # no key to its ticket: the log outlives it
        WebhookSubscription,
        Team,
        WorkflowVersion,
        Workflow,
        User,
    ):
        db.session.execute(delete(model).where(model.created_at >= started))
    db.session.commit()
    # SQLite may hand a deleted row's id to the next row: forget what was compiled for these.
    for version_id in version_ids:
        engine._cache.pop(version_id, None)
    sla.calendar_of.cache_clear()


@contextlib.contextmanager
def committed_data() -> Iterator[datetime]:
    """Yields the start time; afterwards deletes everything committed since (pass or fail)."""
    db.session.rollback()
    started = utcnow()
    try:
        yield started
    finally:
        purge_committed_since(started)


# -- committed test data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    """A team with a lead (an admin, so never auto-assigned), agents, a customer and an admin
    who opens tickets for the customer. Ids only: ORM objects expire at every commit."""

    team_id: int
    lead_id: int
    agent_ids: list[int]
    customer_id: int
    admin_id: int


def staffed_team(
    agents: int = 2,
    policy: AssignmentPolicy = AssignmentPolicy.ROUND_ROBIN,
    cap: int | None = None,
) -> Desk:
    factory = Factory(db.session)
    lead = factory.admin()
    team = factory.team(lead=lead)
    team.assignment_policy = policy
    team.max_open_per_agent = cap
    db.session.commit()
    members = [factory.agent(team) for _ in range(agents)]
    desk = Desk(
        team_id=team.id,
        lead_id=lead.id,
        agent_ids=[agent.id for agent in members],
        customer_id=factory.customer().id,
        admin_id=factory.admin().id,
    )
    db.session.rollback()  # ends the reads that refreshed the ids
    return desk


def open_ticket(desk: Desk, *, team: bool = True, **fields: Any) -> int:
    """A ticket the desk's admin opens for its customer (in its team unless ``team=False``);
    returns its id."""
    admin = db.session.get_one(User, desk.admin_id)
    ticket = tickets.do_create_ticket(
        admin,
        subject=fields.pop("subject", "Printer on fire"),
        description="It is on fire.",
        requester_id=desk.customer_id,
        team_id=desk.team_id if team else None,
        **fields,
    )
    # Reading the id after the commit starts a transaction: a read-only one, since on SQLite a
    # worker may already hold the write lock for this very ticket (the crash tests stall it).
    with database.read_only():
        ticket_id = ticket.id
        db.session.rollback()
    return ticket_id


@contextlib.contextmanager
def fast_sla_workflow(first_response_s: float) -> Iterator[int]:
    """The default workflow with an always-open calendar and a first response of
    ``first_response_s`` seconds for high priority, committed and made the default for new
    tickets inside the block only. Yields its version id."""
    previous = current_version().workflow
    db.session.commit()  # installs the bundled default if this is the first use
    definition = default_definition()
    definition["sla"]["calendar"] = None
    definition["sla"]["targets"]["high"] = {
        "first_response": first_response_s / 60,
        "next_reply": 60,
        "resolution": 600,
    }
    workflow = Workflow(name=f"fast-sla-{uuid.uuid4().hex[:8]}", is_default=True)
    version = WorkflowVersion(
        workflow=workflow, number=1, definition=dump_definition(load_definition(definition))
    )
    previous.is_default = False
    db.session.add(version)
    db.session.commit()
    version_id, previous_id, workflow_id = version.id, previous.id, workflow.id
    db.session.rollback()
    try:
        yield version_id
    finally:
        db.session.rollback()
        db.session.get_one(Workflow, previous_id).is_default = True
        db.session.get_one(Workflow, workflow_id).is_default = False
        db.session.commit()


def wait_for(read: Callable[[], T], predicate: Callable[[T], bool], timeout: float) -> T:
    """Poll ``read`` (in read-only snapshots) until ``predicate`` holds; returns the last value."""
    value: list[T] = []

    def check() -> bool:
        value[:] = [snapshot(read)]
        return predicate(value[0])

    wait_until(check, timeout=timeout, interval=0.1)
    return value[0]
