"""Handling an outbox event exactly once: its handlers (``handlers.HANDLERS``), in order.

The handlers run with the ticket locked, each in a savepoint, inside ``causes.handling(event)``
so that what they do belongs to the change that caused the event. A handler that is refused (a
``DomainError``: say a rule's team no longer exists) records ``automation.failed`` with the
reason and the others still run. A handler that raises ``RetryLater`` leaves the event
unprocessed for the outbox sweep to deliver again; any other exception is a bug and does the
same. The event row is locked while it is handled and marked processed in the same transaction
as the handlers' effects, so a redelivered event changes nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from autocrm import aftercommit
from autocrm.columns import utcnow
from autocrm.errors import DomainError
from autocrm.events import causes
from autocrm.events.emit import emit
from autocrm.events.handlers import HANDLERS, RetryLater, resolve
from autocrm.events.kinds import AutomationFailed, Event, TicketChange, from_row
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.tickets.models import Ticket
from autocrm.transaction import rolls_back_on_error

log = logging.getLogger(__name__)


@rolls_back_on_error
def do_handle_event(event_id: str) -> bool:
    """Handle one event; False when it is unknown or was handled before."""
    row = db.session.scalar(select(OutboxEvent).where(OutboxEvent.id == event_id).with_for_update())
    if row is None:
        log.info("event %s vanished (its transaction rolled back?)", event_id)
        return False
    if row.processed_at is not None:
        return False
    event = from_row(row)
    if (
        isinstance(event, TicketChange)
        and db.session.get(Ticket, event.ticket_id, with_for_update=True) is None
    ):
        row.processed_at = utcnow()  # the ticket is gone: nothing to react to
        db.session.commit()
        return True
    try:
        for name in HANDLERS.get(row.kind, []):
            _run(name, event)
    except RetryLater as exc:
        db.session.rollback()
        if exc.after_rollback is not None:
            exc.after_rollback()
        raise
    row.processed_at = utcnow()
    db.session.commit()
    return True


def _run(name: str, event: Event) -> None:
    with causes.handling(event):
        try:
            with aftercommit.savepoint():
                resolve(name)(event)
        except DomainError as exc:
            log.warning("%s on event %s refused: %s", name, event.id, exc.message)
            if isinstance(event, TicketChange):
                emit(
                    AutomationFailed(
                        ticket_id=event.ticket_id,
                        action={"handler": name, "event": event.kind},
                        error=exc.message,
                    )
                )
