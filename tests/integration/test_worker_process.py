"""A real Celery worker process consumes what the outbox relay publishes.

This test commits for real (a worker in another process cannot see a rolled-back test
transaction) and deletes what it made afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from autocrm import database
from autocrm.columns import utcnow
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.notifications.models import EmailMessage
from autocrm.people import users
from autocrm.people.models import User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket, TicketEvent
from tests import processes
from tests.conftest import wait_until
from tests.factories import PASSWORD
from tests.processes import Process


@pytest.fixture
def worker(database_url: str, redis_url: str, broker, tmp_path: Path) -> Iterator[Process]:
    processes.drop_queued_messages(broker)
    process = processes.start_worker("worker", database_url, redis_url, tmp_path)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def committed(app) -> Iterator[list]:
    """Objects this test commits; deleted (with their events) afterwards."""
    made: list = []
    started = utcnow()
    with app.app_context():
        yield made
        ticket_ids = [o.id for o in made if isinstance(o, Ticket)]
        # Everything the run wrote, including follow-up events and emails of no ticket.
        db.session.execute(delete(OutboxEvent).where(OutboxEvent.created_at >= started))
        db.session.execute(delete(EmailMessage).where(EmailMessage.created_at >= started))
        db.session.execute(delete(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids)))
        db.session.execute(delete(Ticket).where(Ticket.id.in_(ticket_ids)))
        user_ids = [o.id for o in made if isinstance(o, User)]
        db.session.execute(delete(User).where(User.id.in_(user_ids)))
        db.session.commit()


def test_worker_handles_each_published_event_once(worker, committed, tmp_path):
    admin = users.create_user("worker-test-admin@example.test", PASSWORD, "admin")
    customer = users.create_user("worker-test-customer@example.test", PASSWORD, "customer")
    db.session.commit()
    committed.extend([admin, customer])
    ticket = tickets.do_create_ticket(
        admin, subject="Worker", description="x", requester_id=customer.id
    )
    committed.append(ticket)
    tickets.do_transition(admin, ticket.id, "start")

    ticket_id = ticket.id

    def all_processed() -> bool:
        # A read-only transaction, ended at once: on SQLite a writer's lock held while we
        # wait would keep the worker from recording its work.
        with database.read_only():
            rows = db.session.execute(
                select(OutboxEvent.kind, OutboxEvent.processed_at).where(
                    OutboxEvent.ticket_id == ticket_id
                )
            ).all()
            db.session.rollback()
        kinds = {kind for kind, _ in rows}
        return {"ticket.created", "ticket.transitioned"} <= kinds and all(p for _, p in rows)

    assert wait_until(all_processed, timeout=30), worker.log_text()
