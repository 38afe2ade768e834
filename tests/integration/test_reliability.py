"""Reliability: crashes, a broker outage and concurrent writers lose nothing and duplicate
nothing.

Real processes throughout (Celery workers, gunicorn), committed data deleted afterwards (see
``tests/processes.py``). Which failure each crash test covers:

- a pool process SIGKILLed mid-task: ``task_acks_late`` + ``task_reject_on_worker_lost``
  requeue the message at once and another pool process runs the task again;
- the whole worker SIGKILLed mid-task (machine or container lost): the unacknowledged message
  stays with the dead consumer until Redis's visibility timeout (an hour), so the outbox sweep
  (``outbox.relay_pending``) is what delivers the event; when the visibility timeout finally
  hands the old message out again, it changes nothing.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from kombu import Connection
from sqlalchemy import func, select

from autocrm import create_app
from autocrm.automation import actions
from autocrm.columns import utcnow
from autocrm.config import celery_config
from autocrm.events import outbox, relay
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.notifications.models import EmailMessage, Notification
from autocrm.people.models import User
from autocrm.security import issue_token
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket, TicketEvent
from autocrm.webhooks import deliveries, subscriptions
from autocrm.webhooks.models import WebhookDelivery
from tests import processes
from tests.conftest import key_prefix, wait_until
from tests.integration.test_outbox import queued_event_ids
from tests.processes import Desk, open_ticket, snapshot, staffed_team
from tests.webhook_receiver import WebhookReceiver

CRASH_TIMEOUT_S = 30


@pytest.fixture
def committed(app: Any) -> Iterator[datetime]:
    with app.app_context(), processes.committed_data() as started:
        yield started


@pytest.fixture
def fresh_queue(broker: Any) -> None:
    processes.drop_queued_messages(broker)


@pytest.fixture
def republish_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox sweep takes any unprocessed event at once (instead of after 30 s), and this
    process publishes again (after an earlier test's failed publish)."""
    monkeypatch.setattr(outbox, "REPUBLISH_AFTER", timedelta(0))
    monkeypatch.setattr(relay, "_backoff_until", 0.0)


@pytest.fixture
def broker_down(app: Any) -> Iterator[Any]:
    """The app as a web process sees it while Redis is unreachable (nothing listens there)."""
    down = create_app({**app.config, "CELERY": celery_config("redis://127.0.0.1:1/0")})
    yield down
    relay.flush()  # what the relay holds for it, before its connections close
    down.extensions["celery"].close()
    with down.app_context():
        db.engine.dispose()


def stall_env(tmp_path: Path) -> dict[str, str]:
    return {"AUTOCRM_TEST_STALL_LOG": str(tmp_path / "stalls"), "AUTOCRM_TEST_STALL_SECONDS": "60"}


def stalls(tmp_path: Path) -> list[tuple[int, str]]:
    """(pid, event id) of each run of the slow worker's stalling handler."""
    path = tmp_path / "stalls"
    lines = path.read_text().split("\n") if path.exists() else []
    return [(int(pid), event) for pid, event in (line.split() for line in lines if line)]


def unacked(broker: Any) -> int:
    """Messages delivered to a consumer and not yet acknowledged (kombu's ack emulation)."""
    return broker.hlen(key_prefix() + "unacked")


def queued(broker: Any) -> int:
    return broker.llen(key_prefix() + "celery")


def ticket_events(ticket_id: int) -> list[Any]:
    return list(
        db.session.execute(
            select(OutboxEvent.id, OutboxEvent.kind, OutboxEvent.processed_at).where(
                OutboxEvent.ticket_id == ticket_id
            )
        )
    )


def created_event_handled(ticket_id: int) -> bool:
    rows = snapshot(lambda: ticket_events(ticket_id))
    return any(kind == "ticket.created" and done for _, kind, done in rows)


def assert_assigned_and_notified_once(desk: Desk, ticket_id: int, started: datetime) -> None:
    """One assignment in the trail, one notification for the assignee (the new ticket and its
    assignment are one change), one email for it, and every event handled."""
    [agent_id] = desk.agent_ids

    def read() -> dict[str, Any]:
        return {
            "assignee": db.session.scalar(select(Ticket.assignee_id).where(Ticket.id == ticket_id)),
            "assigned": db.session.scalars(
                select(TicketEvent.data).where(
                    TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "ticket.assigned"
                )
            ).all(),
            "unprocessed": db.session.scalar(
                select(func.count()).where(
                    OutboxEvent.created_at >= started, OutboxEvent.processed_at.is_(None)
                )
            ),
            "notifications": db.session.execute(
                select(Notification.user_id, Notification.kind, Notification.dedupe_key).where(
                    Notification.ticket_id == ticket_id
                )
            ).all(),
            "emails": db.session.execute(
                select(EmailMessage.to_address, EmailMessage.dedupe_key).where(
                    EmailMessage.created_at >= started
                )
            ).all(),
            "agent_email": db.session.scalar(select(User.email).where(User.id == agent_id)),
        }

    state = snapshot(read)
    assert state["assignee"] == agent_id
    [assigned] = state["assigned"]
    assert assigned["cause"]["rule"] == "assignment:round_robin"
    assert state["unprocessed"] == 0
    notified = Counter((user, kind) for user, kind, _ in state["notifications"])
    assert notified == {(agent_id, "assigned"): 1}
    assert sorted(state["emails"]) == sorted(
        (state["agent_email"], key) for _, _, key in state["notifications"]
    )


# -- crashes ------------------------------------------------------------------------------------


def test_a_pool_process_killed_mid_task_the_task_runs_again_and_takes_effect_once(
    app, committed, fresh_queue, broker, database_url, redis_url, tmp_path
):
    worker = processes.start_worker(
        "slow", database_url, redis_url, tmp_path, pool="prefork", concurrency=1,
        module="tests.slow_worker", env=stall_env(tmp_path),
    )  # fmt: skip
    try:
        desk = staffed_team(agents=1)
        ticket_id = open_ticket(desk)
        assert wait_until(lambda: stalls(tmp_path), timeout=CRASH_TIMEOUT_S), worker.log_text()
        [(child, event_id)] = stalls(tmp_path)
        assert child != worker.pid, "the task runs in a pool process"
        processes.kill(child)

        assert wait_until(lambda: created_event_handled(ticket_id), timeout=CRASH_TIMEOUT_S), (
            worker.log_text()
        )
        assert wait_until(lambda: processes.idle(committed), timeout=CRASH_TIMEOUT_S)
        assert "WorkerLostError" in worker.log_text()
    finally:
        worker.stop()
    [first, second] = stalls(tmp_path)
    assert first[1] == second[1] == event_id
    assert second[0] != child, "ran again in another process"
    assert unacked(broker) == 0
    assert_assigned_and_notified_once(desk, ticket_id, committed)


def test_a_worker_killed_mid_task_the_outbox_sweep_delivers_the_event_once(
    app, committed, fresh_queue, republish_now, broker, database_url, redis_url, tmp_path
):
    slow = processes.start_worker(
        "slow", database_url, redis_url, tmp_path, module="tests.slow_worker",
        env=stall_env(tmp_path),
    )  # fmt: skip
    try:
        desk = staffed_team(agents=1)
        ticket_id = open_ticket(desk)
        assert wait_until(lambda: stalls(tmp_path), timeout=CRASH_TIMEOUT_S), slow.log_text()
    finally:
        slow.kill_group()  # the whole worker, as when its machine goes away
    assert unacked(broker) == 1, "the dead worker's message waits for the visibility timeout"
    assert not created_event_handled(ticket_id)

    worker = processes.start_worker("worker", database_url, redis_url, tmp_path)
    try:
        assert outbox.relay_pending() == 1  # what beat's sweep does every 15 s
        assert wait_until(lambda: created_event_handled(ticket_id), timeout=CRASH_TIMEOUT_S), (
            worker.log_text()
        )
        assert wait_until(lambda: processes.idle(committed), timeout=CRASH_TIMEOUT_S)

        # An hour later Redis hands the dead worker's message out again: a no-op.
        restore_unacked(app)
        assert wait_until(lambda: unacked(broker) == queued(broker) == 0, timeout=CRASH_TIMEOUT_S)
        assert worker.log_text().count("workers.tasks.handle_event") >= 2
    finally:
        worker.stop()
    assert len(stalls(tmp_path)) == 1  # the second run was the normal worker's
    assert_assigned_and_notified_once(desk, ticket_id, committed)


def test_a_worker_killed_mid_webhook_delivery_the_sweep_redelivers_it_once(
    app, committed, fresh_queue, broker, database_url, redis_url, tmp_path, monkeypatch
):
    """The endpoint has the request but the worker dies before its answer is recorded: the
    delivery's lease keeps the sweep off it while a worker may still be at it, then the sweep
    sends it again, under the same delivery id; the dead worker's message, handed out again
    later, sends nothing."""
    monkeypatch.setitem(app.config, "AUTOCRM_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    hooks_env = {"AUTOCRM_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}
    receiver = WebhookReceiver()
    receiver.hold = held = threading.Event()
    receiver.start()
    try:
        desk = staffed_team(agents=1)
        admin = db.session.get_one(User, desk.admin_id)
        hook, _ = subscriptions.do_create_subscription(
            admin, {"url": receiver.url, "event_kinds": ["ticket.created"]}
        )
        hook_id = hook.id
        worker = processes.start_worker("hooks", database_url, redis_url, tmp_path, env=hooks_env)
        try:
            first = open_ticket(desk)
            assert wait_until(lambda: len(receiver.requests) == 1, timeout=CRASH_TIMEOUT_S), (
                worker.log_text()
            )
        finally:
            worker.kill_group()
        receiver.hold = None  # answers at once from now on
        [(delivery_id, status)] = snapshot(lambda: delivery_states(hook_id))
        assert status == "pending" and unacked(broker) == 1
        assert deliveries.do_send_due() == [], "its lease holds while a worker may be at it"

        worker = processes.start_worker("hooks-2", database_url, redis_url, tmp_path, env=hooks_env)
        try:
            lease_over = utcnow() + deliveries.LEASE + timedelta(seconds=1)
            assert deliveries.do_send_due(now=lease_over) == [delivery_id]
            assert wait_until(
                lambda: snapshot(lambda: delivery_states(hook_id)) == [(delivery_id, "delivered")],
                timeout=CRASH_TIMEOUT_S,
            ), worker.log_text()

            # An hour later Redis hands the dead worker's message out again: it sends nothing,
            # as the next ticket's delivery, arriving after it, shows.
            restore_unacked(app)
            assert wait_until(lambda: unacked(broker) == 0, timeout=CRASH_TIMEOUT_S)
            second = open_ticket(desk)
            assert wait_until(lambda: len(receiver.requests) == 3, timeout=CRASH_TIMEOUT_S), (
                worker.log_text()
            )
            assert wait_until(lambda: processes.idle(committed), timeout=CRASH_TIMEOUT_S)
        finally:
            worker.stop()
    finally:
        held.set()
        receiver.stop()
    sent = [(r.headers["X-AutoCRM-Delivery"], r.document["data"]["ticket"]["id"]) for r in
            receiver.requests]  # fmt: skip
    assert sent[:2] == [(str(delivery_id), first)] * 2
    assert sent[2][1] == second and len(sent) == 3


def delivery_states(subscription_id: int) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.status)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id)
    )
    return [(delivery_id, str(status)) for delivery_id, status in rows]


def restore_unacked(app: Any) -> None:
    """What Redis's visibility timeout does after an hour: unacknowledged messages are queued
    again."""
    transport = app.extensions["celery"].conf.broker_transport_options
    with Connection(
        app.extensions["celery"].conf.broker_url,
        transport_options={**transport, "visibility_timeout": 0},
    ) as connection:
        connection.default_channel.qos.restore_visible(num=100)


# -- the broker goes away -----------------------------------------------------------------------


def test_broker_down_changes_succeed_then_every_event_is_delivered_once(
    app,
    committed,
    fresh_queue,
    republish_now,
    broker,
    broker_down,
    database_url,
    redis_url,
    tmp_path,
):
    desk = staffed_team(agents=1)
    with broker_down.app_context():
        admin = db.session.get_one(User, desk.admin_id)
        ticket_id = open_ticket(desk)
        for name in ("start", "solve", "reopen"):
            tickets.do_transition(admin, ticket_id, name)
        db.session.rollback()
    assert relay.flush()
    assert queued(broker) == 0, "nothing reached the broker"
    kinds = snapshot(lambda: Counter(kind for _, kind, _ in ticket_events(ticket_id)))
    assert kinds == {"ticket.created": 1, "ticket.transitioned": 3}

    worker = processes.start_worker("worker", database_url, redis_url, tmp_path)
    try:
        events = [
            (event_id, kind) for event_id, kind, _ in snapshot(lambda: ticket_events(ticket_id))
        ]
        assert outbox.relay_pending() == 4  # the broker is back: beat's sweep
        # A second publish of the same events, as when a sweep overlaps a late first publish.
        assert outbox.publish(events) == 4
        assert wait_until(lambda: processes.idle(committed), timeout=CRASH_TIMEOUT_S), (
            worker.log_text()
        )
    finally:
        worker.stop()
    assert outbox.relay_pending() == 0

    [agent_id] = desk.agent_ids

    def read() -> tuple[Any, ...]:
        notes = db.session.execute(
            select(
                Notification.user_id, Notification.kind, Notification.dedupe_key,
                Notification.email_id,
            ).where(Notification.ticket_id == ticket_id)
        ).all()  # fmt: skip
        emails = db.session.execute(
            select(EmailMessage.id, EmailMessage.to_address).where(
                EmailMessage.created_at >= committed
            )
        ).all()
        assigned = db.session.scalar(
            select(func.count()).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "ticket.assigned"
            )
        )
        return notes, emails, assigned

    notes, emails, assigned = snapshot(read)
    assert assigned == 1
    # One notification per person per change: the new ticket and its assignment are one for
    # the agent; solving and the feedback request it set off are one for the customer.
    assert Counter((user, kind) for user, kind, _, _ in notes) == {
        (agent_id, "assigned"): 1,
        (desk.customer_id, "status_changed"): 2,
        (desk.customer_id, "feedback_request"): 1,
    }
    # The agent's email at once; the customer's three changes within the window wait as one.
    by_user = {user: {email_id for u, _, _, email_id in notes if u == user} for user, *_ in notes}
    assert len(by_user[agent_id]) == len(by_user[desk.customer_id]) == 1
    assert sorted(email_id for email_id, _ in emails) == sorted(
        by_user[agent_id] | by_user[desk.customer_id]
    ), "one email per notification, a customer's changes in one"


class SilentBroker:
    """A broker that accepts connections and answers nothing for ``hold`` seconds, then hangs
    up: a publish to it is slow, then fails."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        self.stopped.wait(self.hold)
        conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()


def post_ticket(post: Callable[..., tuple[int, Any]], desk: Desk) -> tuple[int, float]:
    """The desk's admin opens a ticket over the API (``post(path, body, headers)`` answers
    its status and document); returns its id and the request's time."""
    token = processes.snapshot(
        lambda: issue_token(desk.admin_id, db.session.get_one(User, desk.admin_id).password_hash)
    )
    body = {
        "subject": "Printer on fire",
        "description": "It is on fire.",
        "requester_id": desk.customer_id,
        "team_id": desk.team_id,
    }
    began = time.monotonic()
    status, document = post("/api/tickets", body, {"Authorization": f"Bearer {token}"})
    took = time.monotonic() - began
    assert status == 201, document
    return document["id"], took


def test_a_slow_broker_does_not_hold_up_the_request_and_the_sweep_delivers_later(
    app, committed, fresh_queue, republish_now, broker, database_url, redis_url, tmp_path
):
    """The request returns without waiting for the broker (the relay's thread waits); the
    failed publish leaves the event in the outbox, and once the broker is back the sweep
    delivers it to a real worker, once."""
    silent = SilentBroker(hold=3.0)
    slow = create_app({**app.config, "CELERY": celery_config(silent.url)})
    try:
        desk = staffed_team(agents=1)
        with slow.test_client() as web:

            def post(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
                response = web.post(path, json=body, headers=headers)
                return response.status_code, response.get_json()

            ticket_id, took = post_ticket(post, desk)
        assert took < 1.5, f"the request waited {took:.1f} s for the broker"
        assert relay.flush(), "the relay gave up on the silent broker"
        assert queued(broker) == 0, "nothing reached the (real) broker"
        assert not created_event_handled(ticket_id)
    finally:
        silent.stop()
        slow.extensions["celery"].close()
        with slow.app_context():
            db.engine.dispose()

    worker = processes.start_worker("worker", database_url, redis_url, tmp_path)
    try:
        assert outbox.relay_pending() >= 1  # the broker is back: beat's sweep
        assert wait_until(lambda: processes.idle(committed), timeout=CRASH_TIMEOUT_S), (
            worker.log_text()
        )
    finally:
        worker.stop()
    assert_assigned_and_notified_once(desk, ticket_id, committed)


def test_a_request_to_a_forked_web_process_is_handled_by_a_real_worker(
    app, committed, fresh_queue, server, database_url, redis_url, tmp_path
):
    """gunicorn's forked gthread workers each start their own relay; the event committed by
    the request, and those the worker's handlers commit (the assignment), reach the worker
    without the sweep (none runs here, and it would wait REPUBLISH_AFTER)."""
    desk = staffed_team(agents=1)
    worker = processes.start_worker("worker", database_url, redis_url, tmp_path)
    try:
        with requests.Session() as web:

            def post(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
                response = web.post(server + path, json=body, headers=headers, timeout=30)
                return response.status_code, response.json()

            ticket_id, _ = post_ticket(post, desk)
        assert wait_until(lambda: processes.idle(committed), timeout=CRASH_TIMEOUT_S), (
            worker.log_text()
        )
    finally:
        worker.stop()
    assert_assigned_and_notified_once(desk, ticket_id, committed)


CHANGE_AND_EXIT = """
import sys
from autocrm import create_app
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.tickets import services as tickets

app = create_app({"AUTOCRM_SOCKET_SERVER": False})
with app.app_context():
    admin = db.session.get_one(User, int(sys.argv[1]))
    ticket = tickets.do_create_ticket(
        admin, subject="Exiting", description="x", requester_id=int(sys.argv[2])
    )
    print(ticket.id)
"""


def test_a_process_that_exits_right_after_its_commit_still_publishes_the_event(
    app, committed, fresh_queue, broker, database_url, redis_url
):
    """A short-lived process (a CLI command, say) exits as soon as it has committed: its
    relay's queue is flushed at exit, not left to the sweep."""
    desk = staffed_team(agents=1)
    finished = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-c", CHANGE_AND_EXIT, str(desk.admin_id), str(desk.customer_id)],
        cwd=processes.REPO, env=processes.test_env(database_url, redis_url),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    ticket_id = int(finished.stdout.split()[-1])
    [(event_id, kind, _)] = snapshot(lambda: ticket_events(ticket_id))
    assert kind == "ticket.created"
    assert event_id in queued_event_ids(broker)


def test_a_dead_broker_costs_one_connection_attempt_not_one_per_change(
    factory, db_session, broker_down, monkeypatch
):
    monkeypatch.setattr(relay, "_backoff_until", 0.0)
    attempts = []
    send_task = broker_down.extensions["celery"].send_task

    def counting_send_task(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        return send_task(*args, **kwargs)

    monkeypatch.setattr(broker_down.extensions["celery"], "send_task", counting_send_task)
    customer, admin = factory.customer(), factory.admin()
    with broker_down.app_context():
        ticket_id = tickets.do_create_ticket(
            admin, subject="Broker down", description="x", requester_id=customer.id
        ).id
        for name in ("start", "hold", "resume"):
            tickets.do_transition(admin, ticket_id, name)
    assert relay.flush()
    assert len(attempts) == 1


def test_events_recorded_inside_a_savepoint_are_published_only_after_commit(
    factory, db_session, broker
):
    ticket = factory.ticket(factory.customer())
    loaded = db_session.get(Ticket, ticket.id)
    with db_session.begin_nested():  # as actions.run_actions does around every action
        actions.apply_action(loaded, {"action": "add_tag", "tag": "vip"}, dedupe="x")
    [event_id] = [
        row.id
        for row in db_session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.ticket_id == ticket.id, OutboxEvent.kind == "ticket.updated"
            )
        )
    ]
    assert event_id not in queued_event_ids(broker), "published before the commit"
    db_session.commit()
    assert event_id in queued_event_ids(broker)


# -- concurrent writers -------------------------------------------------------------------------


def race(url: str, token: str, bodies: list[tuple[dict[str, Any], dict[str, str]]]) -> list[Any]:
    """Send the requests at the same moment, one thread each; returns the responses."""
    barrier = threading.Barrier(len(bodies))
    responses: list[Any] = [None] * len(bodies)

    def client(i: int) -> None:
        body, headers = bodies[i]
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            session.get(url.rsplit("/", 1)[0], timeout=30)  # connect before the barrier
            barrier.wait()
            responses[i] = session.post(url, json=body, headers=headers, timeout=30)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


def final_state(ticket_id: int) -> tuple[str, int, list[str]]:
    def read() -> tuple[str, int, list[str]]:
        status, version = db.session.execute(
            select(Ticket.status, Ticket.version).where(Ticket.id == ticket_id)
        ).one()
        moves = db.session.scalars(
            select(TicketEvent.to_state)
            .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "ticket.transitioned")
            .order_by(TicketEvent.id)
        ).all()
        return status, version, list(moves)

    return snapshot(read)


@pytest.fixture
def server(app, committed, database_url, redis_url, tmp_path) -> Iterator[str]:
    process, url = processes.start_gunicorn(database_url, redis_url, tmp_path, workers=2)
    try:
        yield url
    finally:
        process.stop()


def test_two_transitions_at_once_one_wins_and_the_other_gets_409(app, committed, server):
    desk = staffed_team(agents=1)
    admin = db.session.get_one(User, desk.admin_id)
    token = issue_token(admin.id, admin.password_hash)
    db.session.rollback()
    targets = {"start": "open", "solve": "solved"}
    for _ in range(4):
        # Both clients edited version 1: exactly one may win, on any database.
        ticket_id = open_ticket(desk, team=False)
        url = f"{server}/api/tickets/{ticket_id}/transitions"
        if_match = {"If-Match": '"1"'}
        responses = race(url, token, [({"name": n}, if_match) for n in targets])
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 409], [r.text for r in responses]
        [winner] = [r for r in responses if r.status_code == 200]
        assert winner.headers["ETag"] == '"2"'
        assert final_state(ticket_id) == (winner.json()["status"], 2, [winner.json()["status"]])

        # Blind writes (no version): each is applied in full or refused, never half or lost.
        ticket_id = open_ticket(desk, team=False)
        url = f"{server}/api/tickets/{ticket_id}/transitions"
        responses = race(url, token, [({"name": n}, {}) for n in targets])
        assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
        won = sum(r.status_code == 200 for r in responses)
        status, version, moves = final_state(ticket_id)
        assert won >= 1
        assert version == 1 + won and len(moves) == won and status == moves[-1]
        if won == 2:  # they did not overlap: start, then solve (solve first refuses start)
            assert moves == ["open", "solved"]
