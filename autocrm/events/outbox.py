"""Recording domain events and relaying them to Celery after the transaction commits.

``record`` adds an event's ``OutboxEvent`` row to the current session: the event exists if and
only if the change that caused it committed. ``autocrm.aftercommit`` then hands the new event
ids to Celery, each on its kind's queue (``queue_for``); a rollback drops them. If the broker
is unreachable the request still succeeds: the rows wait, and the beat task
``workers.tasks.relay_pending_outbox`` publishes them later (to the same queues).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from autocrm import aftercommit
from autocrm.columns import utcnow
from autocrm.events.kinds import Event
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from celeryconfig import DEFAULT_QUEUE, ESCALATIONS_QUEUE

log = logging.getLogger(__name__)

HANDLE_EVENT_TASK = "workers.tasks.handle_event"
# How long an unprocessed event may wait before the sweep publishes it again.
REPUBLISH_AFTER = timedelta(seconds=30)
# After a failed publish this process leaves events to the sweep for a while, so that a dead
# broker costs one failed connection attempt, not one per request.
BACKOFF_SECONDS = 10.0
_backoff_until = 0.0
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
    """Hand events to the broker; returns how many went. Never raises: what fails is retried.
    After a failure, requests leave their events to the sweep for a while (the back-off); the
    sweep itself (``sweeping``) always tries, and its success ends the back-off."""
    global _backoff_until
    if not events or not current_app.config["AUTOCRM_OUTBOX_RELAY"]:
        return 0
    if not sweeping and time.monotonic() < _backoff_until:
        return 0
    celery = current_app.extensions["celery"]
    sent = 0
    try:
        for event_id, kind in events:
            celery.send_task(HANDLE_EVENT_TASK, args=[event_id], queue=queue_for(kind), retry=False)
            sent += 1
        _backoff_until = 0.0
    except Exception as exc:  # the broker's errors vary by transport; all mean "try again later"
        _backoff_until = time.monotonic() + BACKOFF_SECONDS
        log.warning(
            "broker unavailable (%s): %d event(s) left for the outbox sweep",
            exc,
            len(events) - sent,
        )
    return sent


def install() -> None:
    aftercommit.register("outbox", publish)


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
