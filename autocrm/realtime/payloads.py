"""What the server sends: every realtime event type has a schema.

``message``, ``ticket_updated`` and ``trail`` carry a message, a ticket (as its audience sees
it) and a trail entry exactly as the REST API serializes them, so their schemas are the ones in
``autocrm.tickets.representation``; ``EVENT_SCHEMAS`` names each event's schema.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from autocrm.tickets.representation import (
    MessageSchema,
    StaffTicketViewSchema,
    TicketViewSchema,
    TrailEntrySchema,
)


class NotificationEventSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    ticket_id = fields.Integer(allow_none=True)
    message_id = fields.Integer(allow_none=True)
    title = fields.String()
    body = fields.String()
    created_at = fields.DateTime()


# Event name -> the schema of its payload, per audience where they differ.
EVENT_SCHEMAS: dict[str, dict[str, type[Schema]]] = {
    "message": {"staff": MessageSchema, "customer": MessageSchema},
    "ticket_updated": {"staff": StaffTicketViewSchema, "customer": TicketViewSchema},
    "trail": {"staff": TrailEntrySchema, "customer": TrailEntrySchema},
    "notification": {"staff": NotificationEventSchema, "customer": NotificationEventSchema},
}
