"""The Socket.IO server: who may connect, join which rooms, and send what.

Handlers are thin, like the REST API's: authenticate on connect (a bearer token in ``auth``,
or the web session cookie), authorize through the same services and policies, and answer each
client event with an acknowledgement ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``.
Web processes run this server; workers and CLI commands get a write-only emitter on the same
Redis message queue, in threading mode, so they never import eventlet.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis
import socketio as python_socketio
from flask import Flask, current_app, request, session
from flask_socketio import SocketIO, join_room, leave_room
from marshmallow import Schema, ValidationError, fields, validate

from autocrm import database, policies
from autocrm.columns import MAX_INT32
from autocrm.errors import DomainError, Forbidden
from autocrm.extensions import db
from autocrm.people import sessions, teams, users
from autocrm.people.models import User
from autocrm.realtime.publish import (
    emit_now,
    emit_presence,
    presence_key,
    rendered_message,
    session_sockets_key,
    user_sockets_key,
)
from autocrm.realtime.rooms import staff_room, team_room, ticket_room, user_room
from autocrm.requestguard import json_problems
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets

ASYNC_MODES = ("eventlet", "gevent", "threading")
# A connect refused because Redis did not answer: the client may retry.
UNAVAILABLE = "Temporarily unavailable, try again."

log = logging.getLogger(__name__)


# Ids an integer column can hold: a larger one is an invalid payload, not a database error.
ID_RANGE = validate.Range(min=1, max=MAX_INT32)


class JoinTicketSchema(Schema):
    ticket_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)


class SendMessageSchema(JoinTicketSchema):
    body = fields.String(required=True)  # conversation.check_message says what may be sent
    internal = fields.Boolean(load_default=False)


class TypingSchema(JoinTicketSchema):
    typing = fields.Boolean(required=True)


class JoinQueueSchema(Schema):
    team_id = fields.Integer(required=True, strict=True, allow_none=True, validate=ID_RANGE)


_actors: dict[str, int] = {}  # sid -> user id, for this process's connections
_viewing: dict[str, set[int]] = {}  # sid -> tickets a staff member has open
_web_sessions: dict[str, int] = {}  # sid -> the web session (cookie) it connected with
_tokens: dict[str, str] = {}  # sid -> the bearer token it connected with


def _actor() -> User:
    """The connection's user, re-read so that a deactivation takes effect at once; with a
    bearer token, the token is checked again (revoked, expired, its scope)."""
    sid = request.sid  # type: ignore[attr-defined]
    if sid in _tokens:
        return users.user_for_token(_tokens[sid])
    user = db.session.get(User, _actors.get(sid, 0))
    if user is None or not user.active:
        raise DomainError("Not authenticated.")
    user.token_scope = None  # a web session's socket
    return user


def _handler(schema: Schema | None, action: Callable[..., Any], *, read_only: bool) -> Callable:
    """Wrap a client event: validate the payload, run it, acknowledge."""

    def handle(payload: Any = None) -> dict[str, Any]:
        if (problem := json_problems(payload, location=None)) is not None:
            return {"ok": False, "error": problem.message, "errors": problem.errors}
        try:
            data = schema.load(payload if isinstance(payload, dict) else {}) if schema else {}
        except ValidationError as exc:
            return {"ok": False, "error": "Invalid payload.", "errors": exc.messages}
        try:
            if read_only:
                with database.read_only():
                    result = action(_actor(), **data)
            else:
                actor = _actor()
                if not policies.may_change(actor):
                    raise Forbidden("This token may only read.")
                result = action(actor, **data)
        except DomainError as exc:
            return {"ok": False, "error": exc.message, "errors": exc.errors}
        return {"ok": True, **(result or {})}

    handle.__name__ = getattr(action, "__name__", "handler")
    return handle


def _connect(auth: Any = None) -> bool:
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        with database.read_only():
            web_session = None
            if token:
                user = users.user_for_token(str(token))
            else:
                cookie = (session.get(k) for k in ("user_id", "auth", sessions.COOKIE_KEY))
                web_session = sessions.live_session(*cookie)
                user = db.session.get_one(User, web_session.user_id)
    except DomainError:
        return False  # refused: the client sees a connect_error
    sid = request.sid  # type: ignore[attr-defined]
    # Redis first, this process's state after: a socket refused here leaves nothing behind.
    keys = [user_sockets_key(user.id)]
    if web_session is not None:  # logging that session out closes this socket
        keys.append(session_sockets_key(web_session.id))
    try:
        for key in keys:
            _sockets_in(key, add=sid)
    except redis.RedisError as exc:
        # Refused, not raised: an exception here would leave python-socketio's half-made
        # connection behind (pending, never disconnected) and the client with no answer.
        log.warning("socket %s refused: Redis error in connect: %r", sid, exc)
        for key in keys:
            with contextlib.suppress(redis.RedisError):
                _sockets_in(key, remove=sid)
        raise python_socketio.exceptions.ConnectionRefusedError(UNAVAILABLE) from None
    _actors[sid] = user.id
    if token:
        _tokens[sid] = str(token)
    if web_session is not None:
        _web_sessions[sid] = web_session.id
    join_room(user_room(user.id))
    return True


def _disconnect(*_: Any) -> None:
    sid = request.sid  # type: ignore[attr-defined]
    user_id = _actors.pop(sid, None)
    _tokens.pop(sid, None)
    viewed = _viewing.pop(sid, set())
    web_session_id = _web_sessions.pop(sid, None)
    keys = [user_sockets_key(user_id)] if user_id is not None else []
    if web_session_id is not None:
        keys.append(session_sockets_key(web_session_id))
    if keys:
        # Not waited for: a disconnect runs in whatever greenlet noticed it, and that may be
        # the message queue's listener, sending a broadcast to a socket whose ping timed out.
        # Behind a busy Redis (pool exhausted: 10 s each) it would hold up every later
        # broadcast. A stale id left in these sets costs nothing (it is disconnected again).
        store = current_app.extensions["autocrm.redis"]
        current_app.extensions["socketio"].start_background_task(_forget_socket, store, keys, sid)
    # Each step on its own: one Redis hiccup must not leave the others undone.
    for ticket_id in viewed:
        with contextlib.suppress(redis.RedisError):
            _presence_changed(ticket_id, user_id, viewing=False)


def _forget_socket(store: redis.Redis, keys: list[str], sid: str) -> None:
    for key in keys:  # each on its own: one Redis hiccup must not leave the others undone
        with contextlib.suppress(redis.RedisError):
            store.srem(key, sid)


def _sockets_in(key: str, *, add: str | None = None, remove: str | None = None) -> None:
    """Socket ids in Redis by user (``user_sockets_key``) and by web session
    (``session_sockets_key``), so any process can disconnect them all."""
    store = current_app.extensions["autocrm.redis"]
    if add:
        store.sadd(key, add)
        store.expire(key, 86400)
    if remove:
        store.srem(key, remove)


def _presence_changed(ticket_id: int, user_id: int | None, *, viewing: bool) -> None:
    """Who is viewing, kept in Redis so every web process sees the same list."""
    store = current_app.extensions["autocrm.redis"]
    key = presence_key(ticket_id)
    member = f"{user_id}:{request.sid}"  # type: ignore[attr-defined]
    if viewing:
        store.sadd(key, member)
        store.expire(key, 3600)
    else:
        store.srem(key, member)
    emit_presence(ticket_id)


def join_ticket(actor: User, ticket_id: int) -> dict[str, Any]:
    ticket = tickets.access_ticket_by_id(actor, ticket_id)
    join_room(ticket_room(ticket.id))
    if actor.role.is_staff:
        join_room(staff_room(ticket.id))
        _viewing.setdefault(request.sid, set()).add(ticket.id)  # type: ignore[attr-defined]
        _presence_changed(ticket.id, actor.id, viewing=True)
    return {}


def leave_ticket(actor: User, ticket_id: int) -> dict[str, Any]:
    leave_room(ticket_room(ticket_id))
    leave_room(staff_room(ticket_id))
    if ticket_id in _viewing.get(request.sid, set()):  # type: ignore[attr-defined]
        _viewing[request.sid].discard(ticket_id)  # type: ignore[attr-defined]
        _presence_changed(ticket_id, actor.id, viewing=False)
    return {}


def send_message(actor: User, ticket_id: int, body: str, internal: bool) -> dict[str, Any]:
    message = conversation.do_add_message(actor, ticket_id, body, internal=internal, channel="chat")
    return {"message": rendered_message(message)}


def typing(actor: User, ticket_id: int, typing: bool) -> dict[str, Any]:
    ticket = tickets.access_ticket_by_id(actor, ticket_id)
    data = {"ticket_id": ticket.id, "user_id": actor.id, "name": actor.name, "typing": typing}
    # Staff typing (maybe an internal note) only to staff; customers' typing to everyone.
    room = staff_room(ticket.id) if actor.role.is_staff else ticket_room(ticket.id)
    emit_now("typing", data, room, skip_sid=request.sid)  # type: ignore[attr-defined]
    return {}


def join_queue(actor: User, team_id: int | None) -> dict[str, Any]:
    """A team's queue (None: the triage queue of tickets without a team): the tickets an
    agent may see, as policies.visible_tickets defines them."""
    if not policies.is_staff(actor):
        raise DomainError("Only staff have queues.")
    if team_id is not None:
        team = teams.access_team_by_id(actor, team_id)
        if not (policies.is_admin(actor) or team.id in actor.team_ids):
            raise DomainError("Not a member of this team.")
    join_room(team_room(team_id))
    return {}


def init_app(app: Flask, *, server: bool) -> None:
    """A Socket.IO server for web processes, a write-only emitter for workers and CLI."""
    mode = app.config["AUTOCRM_ASYNC_MODE"]
    if mode not in ASYNC_MODES:
        raise ValueError(f"AUTOCRM_ASYNC_MODE must be one of {ASYNC_MODES}, not {mode!r}")
    url = app.config["AUTOCRM_SOCKETIO_MESSAGE_QUEUE"]
    channel = f"{app.config['AUTOCRM_REDIS_KEY_PREFIX']}autocrm-socketio"
    manager = (
        python_socketio.RedisManager(url, channel=channel, write_only=not server) if url else None
    )
    options: dict[str, Any] = {"client_manager": manager} if manager else {}
    if not server:
        if manager is not None:
            emitter = SocketIO()
            # An emitter without an app is supported (Flask-SocketIO checks for None); the stubs
            # type ``app`` as Flask only.
            emitter.init_app(None, client_manager=manager, async_mode="threading")  # type: ignore[arg-type]
            app.extensions["socketio"] = emitter
        return
    sio = SocketIO(app, async_mode=mode, **options)
    sio.on_event("connect", _connect)
    sio.on_event("disconnect", _disconnect)
    for name, schema, action, read_only in (
        ("join_ticket", JoinTicketSchema(), join_ticket, True),
        ("leave_ticket", JoinTicketSchema(), leave_ticket, True),
        ("send_message", SendMessageSchema(), send_message, False),
        ("typing", TypingSchema(), typing, True),
        ("join_queue", JoinQueueSchema(), join_queue, True),
    ):
        sio.on_event(name, _handler(schema, action, read_only=read_only))
