"""Sending realtime events: the one way to emit what comes from the database.

``publish`` queues the emit on ``autocrm.aftercommit``, so nothing reaches a client before the
change commits and nothing does if it rolls back. Typing and presence are not stored, so they
go out at once (``emit_now``). The Socket.IO server and its client events live in
``autocrm.realtime.sockets``; the rooms in ``rooms``; what a ticket, message or trail entry
looks like in ``autocrm.tickets.representation`` (the REST API's schemas too).

A ticket event sends, after commit:
- ``message``: the message, to the ticket's room (an internal note: its staff room only);
- ``ticket_updated``: the ticket as each audience sees it, rendered just before the commit,
  once per ticket however many events the transaction made (its final state): the staff
  version to the staff room and the team queues (and a queue it left), the customer version
  to the own rooms of its customers (the requester and customer followers);
- ``trail``: each new trail entry, to the staff room, and the public kinds to its customers.
Customers' sockets are never in a staff room or a queue, so staff-only fields, trail kinds and
internal notes cannot reach them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from autocrm import aftercommit
from autocrm.events.kinds import PUBLIC_TRAIL_KINDS, Event, MessageCreated, TicketChange
from autocrm.extensions import db
from autocrm.kvstore import redis_key
from autocrm.people.models import Role, User
from autocrm.realtime.payloads import NotificationEventSchema
from autocrm.realtime.rooms import staff_room, team_room, ticket_room, user_room
from autocrm.tickets import representation
from autocrm.tickets.models import Message, Ticket, TicketEvent, TicketFollower

_TICKETS = "realtime.tickets"  # before commit: (ticket id, a team it left or None)
_NO_MOVE = object()
_RENDERED = "realtime.rendered_message"  # (message, its payload) from publish_message

# -- emitting ---------------------------------------------------------------------------------


def publish(event: str, data: dict[str, Any], rooms: list[str]) -> None:
    """Emit after the current transaction commits (dropped if it rolls back)."""
    aftercommit.add("socketio", (event, data, rooms))


def _emit_queued(items: list[tuple[str, dict[str, Any], list[str]]]) -> None:
    server = current_app.extensions.get("socketio")
    if server is None:
        return
    for event, data, rooms in items:
        # One emit for all its rooms: one message on the queue, encoded once, and a socket in
        # several of the rooms (a ticket's staff room and its team's queue) gets it once.
        targets = list(dict.fromkeys(rooms))
        server.emit(event, data, to=targets[0] if len(targets) == 1 else targets)


def emit_now(event: str, data: dict[str, Any], room: str, skip_sid: str | None = None) -> None:
    """For what is not stored (typing, presence): straight out."""
    current_app.extensions["socketio"].emit(event, data, to=room, skip_sid=skip_sid)


def presence_key(ticket_id: int) -> str:
    """Who has the ticket open: ``<user id>:<socket id>`` members (the socket handlers)."""
    return redis_key(f"presence:ticket:{ticket_id}")


def emit_presence(ticket_id: int) -> None:
    """``presence`` to the ticket's staff: its viewers, each person once."""
    store = current_app.extensions["autocrm.redis"]
    viewers = sorted({int(m.split(b":", 1)[0]) for m in store.smembers(presence_key(ticket_id))})
    emit_now("presence", {"ticket_id": ticket_id, "viewer_ids": viewers}, staff_room(ticket_id))


def publish_event(event: Event, trail: TicketEvent | None = None) -> None:
    """What a ticket event shows the people watching: the message, the ticket, the trail."""
    if not isinstance(event, TicketChange):
        return
    if isinstance(event, MessageCreated):
        publish_message(db.session.get_one(Message, event.message_id))
    changes = getattr(event, "changes", {})
    left = changes["team_id"][0] if "team_id" in changes else _NO_MOVE
    aftercommit.add(_TICKETS, ("ticket", event.ticket_id, left))
    if trail is not None:
        aftercommit.add(_TICKETS, ("trail", trail, None))


def publish_message(message: Message) -> None:
    data = representation.render_message(message)
    room = staff_room(message.ticket_id) if message.internal else ticket_room(message.ticket_id)
    publish("message", data, [room])
    db.session.info[_RENDERED] = (message, data)  # the last one only: nothing piles up


def rendered_message(message: Message) -> dict[str, Any]:
    """The message as ``publish_message`` rendered it in the transaction that wrote it (the
    payload the rooms get), or rendered now: after the commit, rendering it again would read
    the message, its author and its files back for the same result."""
    published, data = db.session.info.pop(_RENDERED, (None, None))
    return data if published is message else representation.render_message(message)


def _render_queued(items: list[tuple[str, Any, Any]]) -> None:
    """Just before commit: each changed ticket once, for each audience, and the new trail
    entries, each rendered in bulk."""
    left: dict[int, set[int | None]] = {}
    trail: list[TicketEvent] = []
    for what, subject, moved_from in items:
        if what == "trail":
            trail.append(subject)
        else:
            left.setdefault(subject, set())
            if moved_from is not _NO_MOVE:
                left[subject].add(moved_from)
    db.session.flush()
    # Read anew: a reply touches the ticket with a plain UPDATE the session's objects miss.
    stmt = select(Ticket).where(Ticket.id.in_(left)).order_by(Ticket.id)
    found = db.session.scalars(stmt.execution_options(populate_existing=True))
    tickets = list(found)
    customers = _customer_audiences(tickets)
    shared = representation.ticket_lookups(tickets) if tickets else None
    for ticket, data in zip(tickets, _render_and_keep(tickets, "staff", shared), strict=True):
        rooms = [staff_room(ticket.id), team_room(ticket.team_id)]
        rooms += [team_room(team) for team in left[ticket.id] if team != ticket.team_id]
        publish("ticket_updated", data, rooms)
    public = [t for t in tickets if customers.get(t.id)]
    for ticket, data in zip(public, _render_and_keep(public, "customer", shared), strict=True):
        publish("ticket_updated", data, [user_room(user) for user in customers[ticket.id]])
    if trail:
        _publish_trail(trail, customers)


def _render_and_keep(
    tickets: list[Ticket],
    audience: representation.Audience,
    shared: representation.TicketLookups | None,
) -> list[Any]:
    """The tickets rendered for ``audience``; their views kept for the change's own response
    (``representation.committed_view``)."""
    views = representation.ticket_views(tickets, audience, shared)
    for ticket, view in zip(tickets, views, strict=True):
        representation.keep_committed_view(ticket.id, audience, view)
    return representation.dump_views(views, audience)


def _publish_trail(entries: list[TicketEvent], customers: dict[int, list[int]]) -> None:
    for entry, data in zip(entries, representation.render_trail(entries), strict=True):
        publish("trail", data, [staff_room(entry.ticket_id)])
        watching = customers.get(entry.ticket_id)
        if entry.kind in PUBLIC_TRAIL_KINDS and watching:
            publish("trail", data, [user_room(user) for user in watching])


def _customer_audiences(tickets: list[Ticket]) -> dict[int, list[int]]:
    """Each ticket's customers, by ticket id: its requester and its followers who are
    customers (staff who opened a ticket for themselves, or follow it, watch it as staff and
    get the staff version only). One query for all the tickets."""
    if not tickets:
        return {}
    ids = [t.id for t in tickets]
    requesters = select(Ticket.id.label("ticket_id"), Ticket.requester_id.label("user_id")).where(
        Ticket.id.in_(ids)
    )
    followers = select(TicketFollower.ticket_id, TicketFollower.user_id).where(
        TicketFollower.ticket_id.in_(ids)
    )
    pairs = requesters.union_all(followers).subquery()
    stmt = (
        select(pairs.c.ticket_id, pairs.c.user_id)
        .join(User, User.id == pairs.c.user_id)
        .where(User.role == Role.CUSTOMER)
    )
    audiences: dict[int, list[int]] = {}
    for row in db.session.execute(stmt):
        audiences.setdefault(int(row[0]), []).append(int(row[1]))
    return audiences


def user_sockets_key(user_id: int) -> str:
    return redis_key(f"sockets:user:{user_id}")


def disconnect_user(user_id: int) -> None:
    """After commit, close every socket of the user, in any web process: their rooms were
    granted to who they were before (deactivation, new role, new password, team left)."""
    aftercommit.add("socketio_disconnect", user_id)


def session_sockets_key(session_id: int) -> str:
    return redis_key(f"sockets:session:{session_id}")


def disconnect_session(session_id: int) -> None:
    """After commit, close the sockets a web session (its cookie) opened, in any web process:
    the session ended (logout), so every copy of its cookie is logged out, sockets included."""
    aftercommit.add("socketio_disconnect_session", session_id)


def _disconnect_queued(user_ids: list[int]) -> None:
    _disconnect_sockets([user_sockets_key(user_id) for user_id in dict.fromkeys(user_ids)])


def _disconnect_sessions_queued(session_ids: list[int]) -> None:
    _disconnect_sockets([session_sockets_key(id_) for id_ in dict.fromkeys(session_ids)])


def _disconnect_sockets(keys: list[str]) -> None:
    """Close the sockets whose ids the Redis sets ``keys`` hold."""
    server = current_app.extensions.get("socketio")
    if server is None:
        return
    store = current_app.extensions["autocrm.redis"]
    for key in keys:
        for sid in store.smembers(key):
            server.server.disconnect(sid.decode(), namespace="/")


def publish_notification(notification: Any) -> None:
    publish(
        "notification",
        NotificationEventSchema().dump(notification),
        [user_room(notification.user_id)],
    )


def install() -> None:
    aftercommit.register_before_commit(_TICKETS, _render_queued)
    aftercommit.register("socketio", _emit_queued)
    aftercommit.register("socketio_disconnect", _disconnect_queued)
    aftercommit.register("socketio_disconnect_session", _disconnect_sessions_queued)
