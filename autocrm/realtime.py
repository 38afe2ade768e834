"""Realtime: Socket.IO rooms, the events the server sends, and the one way to send them.

Rooms: ``ticket:<id>`` (requester and staff: public messages, status changes),
``ticket:<id>:staff`` (internal notes, typing, who is viewing), ``team:<id>`` (queue changes,
with ``team:none`` for the triage queue), ``user:<id>`` (personal notifications).

``publish`` is the only way to emit data that comes from the database: it queues the emit on
``autocrm.aftercommit``, so nothing reaches a client before the change commits and nothing
does if it rolls back. Typing and presence are not stored, so they go out at once (``emit_now``).
The Socket.IO server and its client events live in ``autocrm.sockets``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields

from autocrm import aftercommit, markdown
from autocrm.extensions import db
from autocrm.models import Message, Priority, SlaClock, Ticket


def ticket_room(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


def staff_room(ticket_id: int) -> str:
    return f"ticket:{ticket_id}:staff"


def team_room(team_id: int | None) -> str:
    return f"team:{team_id}" if team_id is not None else "team:none"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


# -- what the server sends (every event type has a schema) ------------------------------------


class MessageEventSchema(Schema):
    """``message``: the message as the REST API serializes it."""

    id = fields.Integer()
    ticket_id = fields.Integer()
    author_id = fields.Integer()
    body = fields.String()
    body_html = fields.Function(lambda message: markdown.render(message.body), deserialize=str)
    internal = fields.Boolean()
    created_at = fields.DateTime()


class TicketUpdatedSchema(Schema):
    """``ticket_updated``: what a queue or an open ticket needs to redraw a row."""

    id = fields.Integer()
    subject = fields.String()
    status = fields.String()
    category = fields.String()
    priority = fields.String()  # low | normal | high | urgent, as in the REST API
    assignee_id = fields.Integer(allow_none=True)
    team_id = fields.Integer(allow_none=True)
    requester_id = fields.Integer()
    tags = fields.List(fields.String())
    version = fields.Integer()
    updated_at = fields.DateTime()
    sla_due = fields.Dict(keys=fields.String(), values=fields.DateTime(allow_none=True))


class NotificationEventSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    ticket_id = fields.Integer(allow_none=True)
    title = fields.String()
    body = fields.String()
    created_at = fields.DateTime()


# -- emitting ---------------------------------------------------------------------------------


def publish(event: str, data: dict[str, Any], rooms: list[str]) -> None:
    """Emit after the current transaction commits (dropped if it rolls back)."""
    aftercommit.add("socketio", (event, data, rooms))


def _emit_queued(items: list[tuple[str, dict[str, Any], list[str]]]) -> None:
    server = current_app.extensions.get("socketio")
    if server is None:
        return
    # One transaction may update a ticket several times: only its last state goes out.
    last_update = {
        data["id"]: i for i, (event, data, _) in enumerate(items) if event == "ticket_updated"
    }
    for i, (event, data, rooms) in enumerate(items):
        if event == "ticket_updated" and last_update[data["id"]] != i:
            continue
        for room in dict.fromkeys(rooms):
            server.emit(event, data, to=room)


def emit_now(event: str, data: dict[str, Any], room: str, skip_sid: str | None = None) -> None:
    """For what is not stored (typing, presence): straight out."""
    current_app.extensions["socketio"].emit(event, data, to=room, skip_sid=skip_sid)


def publish_message(message: Message, ticket: Ticket) -> None:
    data = MessageEventSchema().dump(message)
    rooms = [staff_room(ticket.id)] if message.internal else [ticket_room(ticket.id)]
    publish("message", data, rooms)


def publish_ticket(ticket: Ticket, previous_team_id: int | None = None) -> None:
    """``ticket_updated`` to the ticket's rooms and its team's queue (and the queue it just
    left, when it moved, so that queue drops it)."""
    db.session.flush()  # the version and updated_at the client will see are set at flush
    clocks = db.session.query(SlaClock).filter(SlaClock.ticket_id == ticket.id)
    sla_due = {c.metric: c.due_at for c in clocks if c.stopped_at is None}
    data = TicketUpdatedSchema().dump({**_ticket_fields(ticket), "sla_due": sla_due})
    rooms = [ticket_room(ticket.id), team_room(ticket.team_id)]
    if previous_team_id != ticket.team_id and previous_team_id is not None:
        rooms.append(team_room(previous_team_id))
    publish("ticket_updated", data, rooms)


def _ticket_fields(ticket: Ticket) -> dict[str, Any]:
    names = (
        "id",
        "subject",
        "status",
        "category",
        "priority",
        "assignee_id",
        "team_id",
        "requester_id",
        "version",
        "updated_at",
    )
    fields_ = {n: getattr(ticket, n) for n in names}
    return {**fields_, "priority": Priority(ticket.priority).label, "tags": list(ticket.tags)}


def redis_key(name: str) -> str:
    """A Redis key of this installation (``AUTOCRM_REDIS_KEY_PREFIX``)."""
    return f"{current_app.config['AUTOCRM_REDIS_KEY_PREFIX']}autocrm:{name}"


def user_sockets_key(user_id: int) -> str:
    return redis_key(f"sockets:user:{user_id}")


def disconnect_user(user_id: int) -> None:
    """After commit, close every socket of the user, in any web process: their rooms were
    granted to who they were before (deactivation, new role, new password, team left)."""
    aftercommit.add("socketio_disconnect", user_id)


def _disconnect_queued(user_ids: list[int]) -> None:
    server = current_app.extensions.get("socketio")
    if server is None:
        return
    store = current_app.extensions["autocrm.redis"]
    for user_id in dict.fromkeys(user_ids):
        for sid in store.smembers(user_sockets_key(user_id)):
            server.server.disconnect(sid.decode(), namespace="/")


def publish_notification(notification: Any) -> None:
    publish(
        "notification",
        NotificationEventSchema().dump(notification),
        [user_room(notification.user_id)],
    )


def install() -> None:
    aftercommit.register("socketio", _emit_queued)
    aftercommit.register("socketio_disconnect", _disconnect_queued)
