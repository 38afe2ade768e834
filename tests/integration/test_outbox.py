"""The transactional outbox: events exist iff their change committed, are published after
commit to the real broker, survive a broker outage, and are handled at most once."""

import base64
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from autocrm import create_app
from autocrm.columns import utcnow
from autocrm.config import celery_config
from autocrm.events import dispatch as events
from autocrm.events import outbox, relay
from autocrm.events.handlers import HANDLERS
from autocrm.events.kinds import Event
from autocrm.events.models import OutboxEvent
from autocrm.sla import sweep as sla_sweep
from autocrm.sla.models import SlaClock
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket, TicketEvent
from celeryconfig import ESCALATIONS_QUEUE
from tests.conftest import key_prefix

QUEUE = "celery"


def queued_event_ids(broker, queue: str = QUEUE) -> list[str]:
    """Event ids of the handle_event tasks waiting in one of the test broker's queues, once
    this process's relay has sent what was committed before the call."""
    assert relay.flush()
    ids = []
    for raw in broker.lrange(key_prefix() + queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == outbox.HANDLE_EVENT_TASK:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            ids.append(args[0])
    return ids


def events_for(db_session, ticket_id: int) -> list[OutboxEvent]:
    stmt = select(OutboxEvent).where(OutboxEvent.ticket_id == ticket_id)
    return list(db_session.scalars(stmt.order_by(OutboxEvent.created_at)))


def test_a_change_writes_its_audit_and_outbox_rows_and_publishes_after_commit(
    factory, db_session, broker
):
    customer = factory.customer()
    ticket = factory.ticket(customer)
    rows = events_for(db_session, ticket.id)
    assert [r.kind for r in rows] == ["ticket.created"]
    assert rows[0].payload["ticket_id"] == ticket.id
    assert rows[0].processed_at is None
    assert rows[0].id in queued_event_ids(broker)
    trail = db_session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
    assert [e.kind for e in trail] == ["ticket.created"]


def test_a_rolled_back_change_leaves_no_event_and_publishes_nothing(factory, db_session, broker):
    customer = factory.customer()
    ticket = factory.ticket(customer)
    before = set(queued_event_ids(broker))
    loaded = db_session.get(Ticket, ticket.id)
    tickets.fire_transition(factory.admin(), loaded, "start")  # records, does not commit
    pending = [r.id for r in events_for(db_session, ticket.id) if r.kind == "ticket.transitioned"]
    assert len(pending) == 1
    db_session.rollback()
    assert [r.kind for r in events_for(db_session, ticket.id)] == ["ticket.created"]
    db_session.commit()  # a later commit must not publish the rolled-back event
    assert pending[0] not in queued_event_ids(broker)
    assert set(queued_event_ids(broker)) == before


def test_broker_down_the_request_succeeds_and_the_sweep_delivers_later(
    app, factory, db_session, broker, monkeypatch, request
):
    down = create_app({**app.config, "CELERY": celery_config("redis://127.0.0.1:1/0")})
    request.addfinalizer(down.extensions["celery"].close)
    customer = factory.customer()
    admin = factory.admin()
    with down.app_context():
        started = time.monotonic()
        ticket_id = tickets.do_create_ticket(
            admin, subject="Broker down", description="x", requester_id=customer.id
        ).id
        assert time.monotonic() - started < 2, "a dead broker must not stall the request"
        started = time.monotonic()
        tickets.do_transition(admin, ticket_id, "start")
        assert time.monotonic() - started < 0.5, "the request does not wait for the broker"
    assert relay.flush()  # the relay has tried once, failed, and backs off
    monkeypatch.setattr(relay, "_backoff_until", 0.0)  # the broker is back
    rows = events_for(db_session, ticket_id)
    assert [r.kind for r in rows] == ["ticket.created", "ticket.transitioned"]
    row = rows[0]
    assert row.id not in queued_event_ids(broker)

    assert outbox.relay_pending() == 0, "too young: the first publish may still be in flight"
    db_session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.ticket_id == ticket_id)
        .values(created_at=utcnow() - timedelta(minutes=5))
    )
    assert outbox.relay_pending() >= 2
    assert {r.id for r in rows} <= set(queued_event_ids(broker))
    db_session.refresh(row)
    assert row.publish_attempts == 1
    assert row.last_published_at is not None


def test_sla_events_go_to_the_escalations_queue_also_when_the_relay_publishes_them_again(
    factory, db_session, broker
):
    ticket = factory.ticket(factory.customer(), priority=Priority.URGENT)
    due = db_session.scalar(
        select(SlaClock.due_at).where(
            SlaClock.ticket_id == ticket.id, SlaClock.metric == "first_response"
        )
    )
    assert sla_sweep.do_fire_due(sla_sweep.BREACH, due + timedelta(seconds=1)) >= 1
    rows = {row.kind: row.id for row in events_for(db_session, ticket.id)}
    breach, created = rows["sla.breached"], rows["ticket.created"]
    assert breach in queued_event_ids(broker, ESCALATIONS_QUEUE)
    assert breach not in queued_event_ids(broker)
    assert created in queued_event_ids(broker)
    assert created not in queued_event_ids(broker, ESCALATIONS_QUEUE)

    db_session.execute(  # nobody handled them: old enough for the relay to publish again
        update(OutboxEvent)
        .where(OutboxEvent.ticket_id == ticket.id)
        .values(created_at=utcnow() - timedelta(minutes=5))
    )
    assert outbox.relay_pending() >= 2
    assert queued_event_ids(broker, ESCALATIONS_QUEUE).count(breach) == 2
    assert breach not in queued_event_ids(broker)


SEEN: list[Event] = []


def remember(event: Event) -> None:
    """A test-only handler (named in ``HANDLERS`` by its path, as real ones are)."""
    SEEN.append(event)


def explode(event: Event) -> None:
    raise RuntimeError("handler failed")


@pytest.fixture
def extra_handler(monkeypatch):
    """Add a handler of ``ticket.created`` for one test."""

    def add(name: str) -> None:
        monkeypatch.setitem(
            HANDLERS, "ticket.created", [*HANDLERS["ticket.created"], f"{__name__}.{name}"]
        )

    SEEN.clear()
    return add


def test_handling_an_event_is_idempotent(factory, db_session, extra_handler):
    extra_handler("remember")
    ticket = factory.ticket(factory.customer())
    [row] = events_for(db_session, ticket.id)
    assert events.do_handle_event(row.id) is True
    assert events.do_handle_event(row.id) is False  # redelivered: nothing happens
    assert [e.id for e in SEEN] == [row.id]
    db_session.refresh(row)
    assert row.processed_at is not None
    row.created_at = utcnow() - timedelta(hours=1)
    db_session.commit()
    assert outbox.relay_pending() == 0, "a processed event is never published again"


def test_a_vanished_event_is_ignored(db_session):
    assert events.do_handle_event("00000000-0000-0000-0000-000000000000") is False


def test_a_failing_handler_leaves_the_event_unprocessed_for_a_retry(
    factory, db_session, extra_handler
):
    extra_handler("explode")
    ticket = factory.ticket(factory.customer())
    [row] = events_for(db_session, ticket.id)
    with pytest.raises(RuntimeError):
        events.do_handle_event(row.id)
    db_session.rollback()
    assert db_session.get(OutboxEvent, row.id).processed_at is None


def test_the_relay_publishes_a_tickets_events_in_the_order_they_were_committed(
    factory, db_session, broker
):
    """Each change returns before its event is published (the relay's thread sends it); what
    one process commits reaches the broker in commit order."""
    ticket = factory.ticket(factory.customer())
    admin = factory.admin()
    for name in ("start", "hold", "resume", "solve"):
        tickets.do_transition(admin, ticket.id, name)
    committed = [row.id for row in events_for(db_session, ticket.id)]
    assert len(committed) == 5
    # Redis queues are LPUSHed and consumed from the right: oldest last in the list.
    queued = [i for i in reversed(queued_event_ids(broker)) if i in committed]
    assert queued == committed
