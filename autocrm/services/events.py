"""Consuming domain events from the outbox: dispatch to handlers, exactly once per event id.

Handlers register per event kind with ``@handles("ticket.created")``. The event row is locked
while it is handled and marked processed in the same transaction as the handlers' effects, so a
redelivered or re-published event finds it processed and changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select

from autocrm.extensions import db
from autocrm.models import OutboxEvent, utcnow
from autocrm.services.transaction import rolls_back_on_error

log = logging.getLogger(__name__)
Handler = Callable[[OutboxEvent], None]
HANDLERS: dict[str, list[Handler]] = defaultdict(list)


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind].append(handler)
        return handler

    return register


@rolls_back_on_error
def do_handle_event(event_id: str) -> bool:
    """Handle one event; False when it is unknown or was handled before."""
    row = db.session.scalar(select(OutboxEvent).where(OutboxEvent.id == event_id).with_for_update())
    if row is None:
        log.info("event %s vanished (its transaction rolled back?)", event_id)
        return False
    if row.processed_at is not None:
        return False
    for handler in HANDLERS.get(row.kind, []):
        handler(row)
    row.processed_at = utcnow()
    db.session.commit()
    return True
