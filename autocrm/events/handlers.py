"""Who consumes which event: the one table a reader follows from an event to its effects.

``HANDLERS`` maps an event kind to the functions a worker runs for it, in order, named by their
dotted path: the consumers (automation, notifications) depend on the services that emit, so
this table, which ``emit`` reads to leave out the outbox rows nobody would consume, must not
import them. ``resolve`` turns a name into its function (a unit test resolves every entry).
How a worker runs them is ``autocrm.events.dispatch``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import import_module
from typing import Any

Handler = Callable[[Any], None]

RULES = "autocrm.automation.reactions.run_event_rules"
ASSIGN = "autocrm.automation.assignment.on_ticket_event"
NOTIFY = "autocrm.notifications.routing.notify"
ESCALATE = "autocrm.automation.escalations.run_sla_escalation"
THUMBNAILS = "autocrm.files.thumbnails.make_thumbnails"
WEBHOOKS = "autocrm.webhooks.deliveries.record_deliveries"

HANDLERS: dict[str, list[str]] = {
    "ticket.created": [RULES, ASSIGN, NOTIFY, THUMBNAILS, WEBHOOKS],
    "ticket.updated": [RULES, ASSIGN, WEBHOOKS],
    "ticket.assigned": [RULES, NOTIFY, WEBHOOKS],
    "ticket.transitioned": [RULES, ASSIGN, NOTIFY, WEBHOOKS],
    "message.created": [RULES, NOTIFY, THUMBNAILS, WEBHOOKS],
    "feedback.created": [RULES, WEBHOOKS],
    "ticket.merged": [NOTIFY],
    "sla.warning": [ESCALATE, WEBHOOKS],
    "sla.breached": [ESCALATE, WEBHOOKS],
    "email.requested": ["autocrm.notifications.delivery.deliver_email"],
}


@cache
def resolve(name: str) -> Handler:
    module, _, function = name.rpartition(".")
    handler: Handler = getattr(import_module(module), function)
    return handler


class RetryLater(Exception):
    """Not now (a mail server is down, say): the event stays unprocessed. ``after_rollback``
    runs once the handler's work is rolled back, to record what the attempt learned."""

    def __init__(self, message: str, after_rollback: Callable[[], None] | None = None) -> None:
        super().__init__(message)
        self.after_rollback = after_rollback
