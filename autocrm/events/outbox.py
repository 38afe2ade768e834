"""Recording domain events and relaying them to Celery after the transaction commits.

``record`` adds an event's ``OutboxEvent`` row to the current session: the event exists if and
only if the change that caused it committed. ``autocrm.aftercommit`` then hands the new event
ids to this process's relay (``autocrm.events.relay``), whose thread publishes them to Celery,
each on its kind's queue (``queue_for``), off the request's path; a rollback drops them. If the
broker is unreachable the request still succeeds: the rows wait, and the beat task
``workers.tasks.relay_pending_outbox`` publishes them later (to the same queues).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from autocrm import aftercommit
from autocrm.columns import utcnow
from autocrm.events import relay
from autocrm.events.kinds import Event
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from celeryconfig import DEFAULT_QUEUE, ESCALATIONS_QUEUE

HANDLE_EVENT_TASK = "workers.tasks.handle_event"
# How long an unprocessed event may wait before the sweep publishes it again.
REPUBLISH_AFTER = timedelta(seconds=30)
# An event is published as (its id, its kind): the kind chooses the queue.
Published = tuple[str, str]


def queue_for(kind: str) -> str:
    """SLA warnings and breaches go to the escalations queue, so that a burst of them is
    handled beside the ordinary events, not behind them (or they behind it)."""
    return ESCALATIONS_QUEUE if kind.startswith("sla.") else DEFAULT_QUEUE


def record(event: Event) -> OutboxEvent:
    """Add an event to the current transaction; it is published after commit. (Its id is made
    in Python: no flush needed.)"""
    row = OutboxEvent(
        id=event.id,
        kind=event.kind,
        payload=event.payload(),
        ticket_id=getattr(event, "ticket_id", None),
    )
    db.session.add(row)
    aftercommit.add("outbox", (row.id, row.kind))
    return row


def publish(events: list[Published], *, sweeping: bool = False) -> int:
    """Hand events to the broker now, from this thread; returns how many went. The sweep's
    way (``sweeping``: it tries even during the relay's back-off, and its success ends it);
    after a commit, events go to the relay's thread instead (``_relay``)."""
    if not events or not current_app.config["AUTOCRM_OUTBOX_RELAY"]:
        return 0
    return relay.send(current_app.extensions["celery"], _messages(events), sweeping=sweeping)


def _relay(events: list[Published]) -> None:
    """After commit: queue the events for this process's relay thread, and return."""
    relay.after_commit(_messages(events))


def _messages(events: list[Published]) -> list[relay.Message]:
    return [
        relay.Message(HANDLE_EVENT_TASK, (event_id,), queue_for(kind)) for event_id, kind in events
    ]


def install() -> None:
    aftercommit.register("outbox", _relay)


def relay_pending(limit: int = 500) -> int:
    """Re-publish events nobody has processed within the grace period. Returns how many."""
    cutoff = utcnow() - REPUBLISH_AFTER
    pending = list(
        db.session.execute(
            select(OutboxEvent.id, OutboxEvent.kind)
            .where(
                OutboxEvent.processed_at.is_(None),
                OutboxEvent.created_at < cutoff,
                or_(
                    OutboxEvent.last_published_at.is_(None), OutboxEvent.last_published_at < cutoff
                ),
            )
            .order_by(OutboxEvent.created_at)
            .limit(limit)
        )
    )
    if not pending:
        return 0
    db.session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_([event_id for event_id, _ in pending]))
        .values(last_published_at=utcnow(), publish_attempts=OutboxEvent.publish_attempts + 1)
    )
    db.session.commit()
    return publish([(event_id, kind) for event_id, kind in pending], sweeping=True)
