"""Two SLA sweeps at once: batches of their own, and no clock fired twice.

Sweeps claim due clocks a batch per transaction (``autocrm.sla.sweep``). On PostgreSQL two
sweeps must take disjoint batches without waiting for each other (``FOR UPDATE SKIP
LOCKED``); on SQLite the second waits for the first one's write lock. Either way each clock
fires once. The sweeps need their own connections, so the data is committed for real and
deleted afterwards (``tests/processes.py``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from autocrm.columns import utcnow
from autocrm.engine.versions import current_version
from autocrm.extensions import db
from autocrm.sla import sweep
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Priority, Ticket, TicketEvent
from tests import processes
from tests.factories import Factory

CLOCKS = 2 * sweep.BATCH + 100


@pytest.fixture
def committed(app: Any, broker: Any) -> Iterator[None]:
    with app.app_context(), processes.committed_data():
        yield
    processes.drop_queued_messages(broker)  # the escalations nobody here consumes


def due_clocks(n: int, due: datetime) -> list[int]:
    """``n`` new tickets whose running first-response clocks all fell due at ``due``."""
    customer_id = Factory(db.session).customer().id
    version_id = current_version().id
    db.session.commit()
    now = utcnow()
    db.session.execute(
        insert(Ticket),
        [
            {
                "subject": f"Due {i}", "description": "x", "status": "new", "category": "new",
                "priority": Priority.NORMAL, "channel": "api", "requester_id": customer_id,
                "workflow_version_id": version_id, "created_at": now, "updated_at": now,
                "status_changed_at": now, "version": 1,
            }
            for i in range(n)
        ],
    )  # fmt: skip
    ticket_ids = list(db.session.scalars(select(Ticket.id).where(Ticket.created_at == now)))
    db.session.execute(
        insert(SlaClock),
        [
            {
                "ticket_id": ticket_id, "metric": "first_response",
                "workflow_version_id": version_id, "target_seconds": 60.0,
                "consumed_seconds": 0.0, "started_at": now, "segment_started_at": now,
                "due_at": due, "warn_at": None,
            }
            for ticket_id in ticket_ids
        ],
    )  # fmt: skip
    db.session.commit()
    return ticket_ids


def breaches(ticket_ids: list[int]) -> Counter[int]:
    return Counter(
        processes.snapshot(
            lambda: list(
                db.session.scalars(
                    select(TicketEvent.ticket_id).where(
                        TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == "sla.breached"
                    )
                )
            )
        )
    )


def breached_clocks(clock_ids: list[int]) -> int:
    """How many of these clocks other connections see breached (committed)."""
    return processes.snapshot(
        lambda: db.session.scalar(
            select(func.count()).where(
                SlaClock.id.in_(clock_ids), SlaClock.breached_at.is_not(None)
            )
        )
    )


def test_a_second_sweep_claims_its_own_batch_while_the_first_holds_one(app, committed):
    ticket_ids = due_clocks(CLOCKS, due=utcnow() - timedelta(seconds=5))
    now = utcnow()
    first = sweep.claim_due(sweep.BREACH, now)  # claimed, not committed yet
    assert len(first) == sweep.BATCH

    second: list[int] = []

    def other_sweep() -> None:
        with app.app_context():
            second.extend(sweep.claim_due(sweep.BREACH, now))
            db.session.commit()

    other = threading.Thread(target=other_sweep)
    other.start()
    if db.engine.dialect.name == "postgresql":
        other.join(timeout=30)
        assert not other.is_alive(), "the second sweep waited for the first one's clocks"
        with app.app_context():  # another connection: sees only what was committed
            assert breached_clocks(second) == len(second) == sweep.BATCH
            assert breached_clocks(first) == 0, "the first batch is one open transaction"
    db.session.commit()
    other.join(timeout=30)  # SQLite: the second sweep had to wait for the write lock
    assert not other.is_alive()

    assert len(second) == sweep.BATCH
    assert not set(first) & set(second), "two sweeps claimed the same clock"
    assert sweep.do_fire_due(sweep.BREACH, utcnow()) == CLOCKS - 2 * sweep.BATCH
    assert sweep.do_fire_due(sweep.BREACH, utcnow()) == 0
    fired = breaches(ticket_ids)
    assert set(fired) == set(ticket_ids)
    assert set(fired.values()) == {1}, "a clock fired more than once"


def test_two_sweeps_racing_fire_every_clock_exactly_once(app, committed):
    ticket_ids = due_clocks(CLOCKS, due=utcnow() - timedelta(seconds=5))
    start = threading.Barrier(2)
    batches: list[int] = []
    failures: list[BaseException] = []

    def sweep_until_done() -> None:
        with app.app_context():
            try:
                start.wait(timeout=10)
                while fired := sweep.do_fire_due(sweep.BREACH, utcnow()):
                    batches.append(fired)
            except BaseException as exc:  # reported by the test, not lost in the thread
                failures.append(exc)

    sweeps = [threading.Thread(target=sweep_until_done) for _ in range(2)]
    for thread in sweeps:
        thread.start()
    for thread in sweeps:
        thread.join(timeout=60)
    assert not failures, failures
    assert sum(batches) == CLOCKS
    assert max(batches) <= sweep.BATCH
    fired = breaches(ticket_ids)
    assert set(fired) == set(ticket_ids)
    assert set(fired.values()) == {1}, "a clock fired more than once"
