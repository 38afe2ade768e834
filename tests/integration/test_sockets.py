"""The realtime layer through Flask-SocketIO's test client: who may connect and join which
rooms, what each client event does and acknowledges, and which clients receive each event the
server sends (and that its payload matches the event's schema in ``autocrm.realtime``).

The server and its test clients are fixtures in ``conftest.py`` (``connect(user)``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema
from sqlalchemy import select

from autocrm import aftercommit
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.notifications import services as notifications
from autocrm.people import organizations, sessions, users
from autocrm.people.models import Team, TeamMembership, User
from autocrm.realtime import sockets
from autocrm.realtime.payloads import NotificationEventSchema
from autocrm.realtime.publish import presence_key
from autocrm.realtime.rooms import staff_room, team_room, ticket_room, user_room
from autocrm.security import issue_token, password_fingerprint
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message, Priority, Ticket
from autocrm.tickets.representation import MessageSchema, StaffTicketViewSchema, TicketViewSchema
from tests.conftest import key_prefix
from tests.factories import ApiClient, Factory, csrf_token, drain, refusal, web_login
from tests.integration.conftest import Sock


def assert_matches(schema: Schema, payload: dict[str, Any]) -> None:
    """The payload is exactly what the event's schema describes (by the names it sends)."""
    assert schema.validate(payload) == {}
    assert set(payload) == {field.data_key or name for name, field in schema.fields.items()}


@pytest.fixture
def desk(factory: Factory) -> dict[str, Any]:
    """Two teams; an agent in each; an admin; two customers; a ticket of A's in team 1."""
    team, other_team = factory.team(), factory.team()
    people = {
        "team": team,
        "other_team": other_team,
        "agent": factory.agent(team),
        "agent2": factory.agent(team),
        "outsider": factory.agent(other_team),
        "admin": factory.admin(),
        "alice": factory.customer(),
        "bob": factory.customer(),
    }
    people["ticket"] = factory.ticket(people["alice"], team=team)
    return people


def rest_messages(http: FlaskClient, user: User, ticket_id: int) -> list[dict[str, Any]]:
    response = ApiClient(http, user).get(f"/api/tickets/{ticket_id}/messages")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


# -- connect ---------------------------------------------------------------------------------


def test_connect_without_credentials_is_refused(connect, factory):
    assert not connect().connected
    assert not connect(auth={}).connected
    assert not connect(auth="not a dict").connected


def test_connect_with_a_bad_token_is_refused(connect, factory):
    user = factory.customer()
    assert not connect(auth={"token": "not-a-token"}).connected
    forged = issue_token(user.id, "some other password hash")
    assert not connect(auth={"token": forged}).connected


def test_connect_as_a_deactivated_user_is_refused(connect, factory):
    assert not connect(factory.agent(active=False)).connected


def test_connect_with_a_token_joins_the_users_own_room(connect, factory):
    user = factory.customer()
    sock = connect(user)
    assert sock.connected
    assert user_room(user.id) in sock.rooms()
    assert sockets._actors[sock.sid] == user.id


def test_connect_with_the_web_session_cookie(connect, http, factory):
    user = factory.agent()
    web_login(http, user)
    sock = connect(auth=None)
    assert sock.connected
    assert user_room(user.id) in sock.rooms()


def test_connect_with_a_cookie_whose_session_was_logged_out_is_refused(
    connect, http, client, factory
):
    web_login(client, factory.agent())  # the session app's client: a fresh ``g`` per request
    copied = client.get_cookie("session").value
    logout = client.post("/logout", data={"csrf_token": csrf_token(client, "/notifications")})
    assert logout.status_code == 302
    http.set_cookie("session", copied)
    assert not connect(auth=None).connected


def test_connect_with_a_stale_session_cookie_is_refused(connect, http, factory):
    user = factory.agent()
    with http.session_transaction() as session:
        session["user_id"] = user.id
        session["auth"] = password_fingerprint("the password before it was changed")
    assert not connect(auth=None).connected


def test_logging_a_session_out_closes_the_sockets_it_opened(connect, http, factory):
    user = factory.agent()
    web_login(http, user)
    cookie_sock, token_sock = connect(auth=None), connect(user)
    with http.session_transaction() as cookie:
        key = cookie[sessions.COOKIE_KEY]
    sessions.do_end_session(key)
    assert not cookie_sock.connected
    assert token_sock.connected


def test_a_redis_that_does_not_answer_refuses_the_socket_and_leaves_nothing_behind(
    connect, factory, rt, sio, monkeypatch
):
    """The socket bookkeeping in Redis timing out (seen under load: ``SADD`` in connect)
    refuses that one socket with a connect_error; nothing of it stays in the server, and the
    next connect, with Redis answering, works and hears its user's room."""
    user = factory.customer()
    manager = sio.server.manager
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        no_answer = redis.Redis(host=host, port=port, socket_timeout=0.2, retry=None)
        monkeypatch.setitem(rt.extensions, "autocrm.redis", no_answer)
        refused = connect(user)
        assert not refused.connected
        monkeypatch.undo()
        no_answer.close()
    assert user.id not in sockets._actors.values()
    assert not manager.pending_connect.get("/")  # no half-made connection left
    assert not list(manager.get_participants("/", user_room(user.id)))

    sock = connect(user)
    assert sock.connected
    assert sockets._actors[sock.sid] == user.id
    sio.emit("marker", {"n": 1}, to=user_room(user.id))
    assert sock.received("marker") == [{"n": 1}]


def test_a_disconnect_does_not_wait_for_a_redis_that_does_not_answer(
    connect, factory, rt, monkeypatch
):
    """A disconnect runs in whatever greenlet noticed it: in a broadcast, the message queue's
    listener. Its Redis bookkeeping must not hold that caller up."""
    sock = connect(factory.customer())
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        no_answer = redis.Redis(host=host, port=port, socket_timeout=5, retry=None)
        monkeypatch.setitem(rt.extensions, "autocrm.redis", no_answer)
        started = time.monotonic()
        sock.client.disconnect()
        assert time.monotonic() - started < 2.5  # waiting for Redis would take 5 s or more
        assert not sock.connected
    no_answer.close()


def test_disconnect_forgets_the_connection(connect, factory):
    sock = connect(factory.customer())
    sid = sock.sid
    sock.client.disconnect()
    assert sid not in sockets._actors


def test_a_user_deactivated_after_connecting_can_do_nothing_more(connect, factory, db_session):
    agent = factory.agent()
    ticket = factory.ticket(factory.customer())
    sock = connect(agent)
    assert sock.connected
    agent.active = False
    db_session.commit()
    assert sock.emit("join_ticket", {"ticket_id": ticket.id}) == {
        "ok": False,
        "error": "Invalid or expired token.",  # the socket's token is checked on every event
        "errors": {},
    }
    assert ticket_room(ticket.id) not in sock.rooms()


def test_a_deactivated_agent_stops_receiving_internal_notes(connect, factory, desk):
    agent, ticket = desk["agent"], desk["ticket"]
    sock = connect(agent)
    assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    users.do_update_user(desk["admin"], agent.id, {"active": False})
    conversation.do_add_message(desk["agent2"], ticket.id, "Refund approved", internal=True)
    assert sock.received("message") == []


def test_the_former_requester_leaves_the_ticket_rooms_when_the_requester_changes(connect, desk):
    ticket, alice, bob = desk["ticket"], desk["alice"], desk["bob"]
    alice_sock = connect(alice)
    assert alice_sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    # No edge changes a requester yet (the PATCH schema leaves it out): the service does.
    tickets.apply_changes(desk["admin"], ticket, {"requester_id": bob.id})
    db.session.commit()
    bob_sock = connect(bob)
    assert bob_sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    conversation.do_add_message(desk["agent"], ticket.id, "Your refund is on its way")
    assert [m["body"] for m in bob_sock.received("message")] == ["Your refund is on its way"]
    assert alice_sock.received("message") == []
    assert ticket_room(ticket.id) not in alice_sock.rooms()


def test_a_team_move_drops_only_the_agents_outside_the_new_team(connect, factory, desk):
    agent, ticket, other_team = desk["agent"], desk["ticket"], desk["other_team"]
    factory.session.add(TeamMembership(team_id=other_team.id, user_id=agent.id))
    factory.session.commit()
    sock, outsider = connect(agent), connect(desk["agent2"])  # agent2: the old team only
    for joining in (sock, outsider):
        assert joining.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    tickets.do_update_ticket(desk["admin"], ticket.id, {"team_id": other_team.id})
    assert staff_room(ticket.id) in sock.rooms()
    assert staff_room(ticket.id) not in outsider.rooms()


# -- join_ticket / leave_ticket --------------------------------------------------------------


def test_requester_joins_own_ticket_room_but_not_the_staff_room(connect, desk):
    ticket = desk["ticket"]
    sock = connect(desk["alice"])
    assert sock.emit("join_ticket", {"ticket_id": ticket.id}) == {"ok": True}
    assert ticket_room(ticket.id) in sock.rooms()
    assert staff_room(ticket.id) not in sock.rooms()


def test_another_customer_cannot_join_and_never_hears_the_conversation(connect, desk):
    ticket, alice, bob = desk["ticket"], desk["alice"], desk["bob"]
    alice_sock, bob_sock = connect(alice), connect(bob)
    assert alice_sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    ack = bob_sock.emit("join_ticket", {"ticket_id": ticket.id})
    assert ack == {"ok": False, "error": f"Ticket {ticket.id} not found.", "errors": {}}
    assert ticket_room(ticket.id) not in bob_sock.rooms()

    assert alice_sock.emit("send_message", {"ticket_id": ticket.id, "body": "Still broken"})["ok"]
    conversation.do_add_message(desk["agent"], ticket.id, "On it")
    tickets.do_transition(desk["agent"], ticket.id, "start")
    assert len(alice_sock.received("message")) == 2
    assert bob_sock.names() == []
    # Nor can Bob write to it or type on it.
    assert not bob_sock.emit("send_message", {"ticket_id": ticket.id, "body": "hi"})["ok"]
    assert not bob_sock.emit("typing", {"ticket_id": ticket.id, "typing": True})["ok"]
    assert alice_sock.received("typing") == []


def test_agent_of_another_team_cannot_join(connect, desk):
    ticket = desk["ticket"]
    sock = connect(desk["outsider"])
    ack = sock.emit("join_ticket", {"ticket_id": ticket.id})
    assert ack["ok"] is False
    assert ack["error"] == f"Ticket {ticket.id} not found."
    assert not {ticket_room(ticket.id), staff_room(ticket.id)} & sock.rooms()


@pytest.mark.parametrize("who", ["agent", "admin"])
def test_staff_who_may_see_the_ticket_join_both_its_rooms(connect, desk, who):
    ticket = desk["ticket"]
    sock = connect(desk[who])
    assert sock.emit("join_ticket", {"ticket_id": ticket.id}) == {"ok": True}
    assert {ticket_room(ticket.id), staff_room(ticket.id)} <= sock.rooms()


def test_any_agent_may_join_a_triage_ticket(connect, factory, desk):
    triage = factory.ticket(desk["alice"])
    assert triage.team_id is None
    sock = connect(desk["outsider"])
    assert sock.emit("join_ticket", {"ticket_id": triage.id}) == {"ok": True}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "ticket_id"),
        (None, "ticket_id"),
        ([1], "ticket_id"),
        ({"ticket_id": "1"}, "ticket_id"),
        ({"ticket_id": 1.5}, "ticket_id"),
        ({"ticket_id": 0}, "ticket_id"),
        ({"ticket_id": None}, "ticket_id"),
        ({"ticket_id": 1, "extra": True}, "extra"),
    ],
)
def test_join_ticket_rejects_bad_payloads(connect, desk, payload, field):
    sock = connect(desk["admin"])
    ack = sock.emit("join_ticket", payload)
    assert ack["ok"] is False
    assert ack["error"] == "Invalid payload."
    assert field in ack["errors"]
    assert not any(room.startswith("ticket:") for room in sock.rooms())


def test_join_ticket_for_an_unknown_ticket(connect, desk):
    sock = connect(desk["admin"])
    assert sock.emit("join_ticket", {"ticket_id": 999_999}) == {
        "ok": False,
        "error": "Ticket 999999 not found.",
        "errors": {},
    }


def test_leave_ticket_stops_the_events(connect, desk):
    ticket = desk["ticket"]
    sock = connect(desk["agent"])
    assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    assert sock.emit("leave_ticket", {"ticket_id": ticket.id}) == {"ok": True}
    assert not {ticket_room(ticket.id), staff_room(ticket.id)} & sock.rooms()
    conversation.do_add_message(desk["alice"], ticket.id, "Anyone?")
    assert sock.received("message") == []


# -- send_message ----------------------------------------------------------------------------


def test_send_message_goes_through_the_service_and_acks_the_message(connect, desk, db_session):
    ticket, alice = desk["ticket"], desk["alice"]
    sock = connect(alice)
    ack = sock.emit("send_message", {"ticket_id": ticket.id, "body": "The printer is smoking"})
    assert ack["ok"] is True
    message = db_session.get(Message, ack["message"]["id"])
    assert (message.ticket_id, message.author_id, message.body, message.internal) == (
        ticket.id,
        alice.id,
        "The printer is smoking",
        False,
    )
    assert ack["message"] == MessageSchema().dump(message)
    assert_matches(MessageSchema(), ack["message"])
    [event] = db_session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.kind == "message.created", OutboxEvent.ticket_id == ticket.id
        )
    )
    assert event.payload["message_id"] == message.id
    assert event.payload["author_role"] == "customer"


def test_a_message_reaches_everyone_in_the_ticket_room_as_the_rest_api_shows_it(
    connect, http, desk
):
    ticket, alice, agent = desk["ticket"], desk["alice"], desk["agent"]
    socks = [connect(alice), connect(agent), connect(desk["admin"])]
    for sock in socks:
        assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    ack = socks[1].emit("send_message", {"ticket_id": ticket.id, "body": "Try turning it off"})
    [item] = rest_messages(http, alice, ticket.id)
    assert ack["message"] == item
    # The sender too (its other tabs must see it); staff, in both rooms, hear it once.
    for sock in socks:
        assert sock.received("message") == [item]
        assert_matches(MessageSchema(), item)


def test_a_message_sent_over_rest_is_fanned_out_too(connect, http, desk):
    ticket, alice, agent = desk["ticket"], desk["alice"], desk["agent"]
    alice_sock = connect(alice)
    assert alice_sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    response = ApiClient(http, agent).post(
        f"/api/tickets/{ticket.id}/messages", json={"body": "Replacement on the way"}
    )
    assert response.status_code == 201
    assert alice_sock.received("message") == [response.get_json()]


def test_an_internal_note_reaches_staff_but_never_the_customer(connect, http, desk):
    ticket, alice, agent, agent2 = desk["ticket"], desk["alice"], desk["agent"], desk["agent2"]
    alice_sock, agent_sock, agent2_sock = connect(alice), connect(agent), connect(agent2)
    outsider_sock = connect(desk["outsider"])
    for sock in (alice_sock, agent_sock, agent2_sock):
        assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    ack = agent_sock.emit(
        "send_message", {"ticket_id": ticket.id, "body": "Customer is VIP", "internal": True}
    )
    assert ack["ok"] is True
    assert ack["message"]["internal"] is True
    [item] = rest_messages(http, agent2, ticket.id)
    assert agent_sock.received("message") == [item]
    assert agent2_sock.received("message") == [item]
    assert alice_sock.received("message") == []
    assert outsider_sock.received("message") == []
    assert rest_messages(http, alice, ticket.id) == []


def test_a_customer_cannot_send_an_internal_note(connect, desk, db_session):
    ticket = desk["ticket"]
    sock = connect(desk["alice"])
    ack = sock.emit("send_message", {"ticket_id": ticket.id, "body": "psst", "internal": True})
    assert ack["ok"] is False
    assert "internal" in ack["error"]
    assert "internal" in ack["errors"]
    assert db_session.scalar(select(Message).where(Message.ticket_id == ticket.id)) is None


def test_no_message_on_a_closed_ticket(connect, desk, db_session):
    ticket, agent = desk["ticket"], desk["agent"]
    tickets.do_transition(agent, ticket.id, "solve")
    tickets.do_transition(agent, ticket.id, "close")
    sock = connect(desk["alice"])
    assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    ack = sock.emit("send_message", {"ticket_id": ticket.id, "body": "One more thing"})
    assert ack["ok"] is False
    assert "closed" in ack["error"]
    assert ack["errors"] == {"ticket": ["Closed tickets take no new messages."]}
    assert sock.received("message") == []
    assert db_session.scalar(select(Message).where(Message.ticket_id == ticket.id)) is None


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"ticket_id": 1}, {"body"}),
        ({"ticket_id": 1, "body": 42}, {"body"}),
        ({"ticket_id": 1, "body": "hi", "internal": "maybe"}, {"internal"}),
        ({"body": "hi"}, {"ticket_id"}),
        ("hello", {"ticket_id", "body"}),
    ],
)
def test_send_message_rejects_bad_payloads(connect, desk, db_session, payload, fields):
    if isinstance(payload, dict) and "ticket_id" in payload:
        payload = {**payload, "ticket_id": desk["ticket"].id}
    ack = connect(desk["agent"]).emit("send_message", payload)
    assert ack["ok"] is False
    assert ack["error"] == "Invalid payload."
    assert set(ack["errors"]) == fields
    assert db_session.scalar(select(Message)) is None


@pytest.mark.parametrize("body", ["", " \n\t", "x" * (conversation.MAX_MESSAGE_LENGTH + 1)])
def test_send_message_answers_a_bad_body_with_the_message_rule(connect, desk, db_session, body):
    rule = refusal(conversation.check_message, body)
    payload = {"ticket_id": desk["ticket"].id, "body": body}
    ack = connect(desk["agent"]).emit("send_message", payload)
    assert ack == {"ok": False, "error": rule.message, "errors": rule.errors}
    assert set(rule.errors) == {"body"}
    assert db_session.scalar(select(Message)) is None


def test_send_message_to_a_ticket_one_may_not_see(connect, desk, db_session):
    ticket = desk["ticket"]
    ack = connect(desk["outsider"]).emit("send_message", {"ticket_id": ticket.id, "body": "hi"})
    assert ack == {"ok": False, "error": f"Ticket {ticket.id} not found.", "errors": {}}
    assert db_session.scalar(select(Message)) is None


# -- typing ----------------------------------------------------------------------------------


def _join_all(ticket: Ticket, *socks: Sock) -> None:
    for sock in socks:
        assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]


def test_customer_typing_reaches_staff_but_not_the_typist(connect, desk):
    ticket, alice, agent = desk["ticket"], desk["alice"], desk["agent"]
    alice_sock, agent_sock, admin_sock = connect(alice), connect(agent), connect(desk["admin"])
    _join_all(ticket, alice_sock, agent_sock, admin_sock)
    assert alice_sock.emit("typing", {"ticket_id": ticket.id, "typing": True}) == {"ok": True}
    expected = {"ticket_id": ticket.id, "user_id": alice.id, "name": alice.name, "typing": True}
    assert agent_sock.received("typing") == [expected]
    assert admin_sock.received("typing") == [expected]
    assert alice_sock.received("typing") == []


def test_staff_typing_reaches_other_staff_but_never_the_customer(connect, desk):
    ticket, alice, agent = desk["ticket"], desk["alice"], desk["agent"]
    alice_sock, agent_sock, agent2_sock = connect(alice), connect(agent), connect(desk["agent2"])
    _join_all(ticket, alice_sock, agent_sock, agent2_sock)
    assert agent_sock.emit("typing", {"ticket_id": ticket.id, "typing": True}) == {"ok": True}
    assert agent_sock.emit("typing", {"ticket_id": ticket.id, "typing": False}) == {"ok": True}
    assert agent2_sock.received("typing") == [
        {"ticket_id": ticket.id, "user_id": agent.id, "name": agent.name, "typing": True},
        {"ticket_id": ticket.id, "user_id": agent.id, "name": agent.name, "typing": False},
    ]
    assert agent_sock.received("typing") == []
    assert alice_sock.received("typing") == []


@pytest.mark.parametrize(
    "payload", [{"ticket_id": 1}, {"ticket_id": 1, "typing": "yes please"}, {"typing": True}]
)
def test_typing_rejects_bad_payloads(connect, desk, payload):
    ticket = desk["ticket"]
    if "ticket_id" in payload:
        payload = {**payload, "ticket_id": ticket.id}
    alice_sock, agent_sock = connect(desk["alice"]), connect(desk["agent"])
    _join_all(ticket, alice_sock, agent_sock)
    ack = alice_sock.emit("typing", payload)
    assert ack["ok"] is False
    assert ack["error"] == "Invalid payload."
    assert agent_sock.received("typing") == []


def test_typing_on_a_ticket_one_may_not_see_is_refused(connect, desk):
    ticket = desk["ticket"]
    agent_sock, outsider_sock = connect(desk["agent"]), connect(desk["outsider"])
    _join_all(ticket, agent_sock)
    ack = outsider_sock.emit("typing", {"ticket_id": ticket.id, "typing": True})
    assert ack["ok"] is False
    assert agent_sock.received("typing") == []


# -- presence --------------------------------------------------------------------------------


@pytest.fixture
def no_stale_presence(rt: Flask, desk: dict[str, Any]) -> None:
    """Ticket ids are reused after a rollback; presence lives in Redis beyond the test."""
    rt.extensions["autocrm.redis"].delete(presence_key(desk["ticket"].id))


def test_presence_tells_staff_who_is_viewing(connect, desk, no_stale_presence):
    ticket, agent, agent2 = desk["ticket"], desk["agent"], desk["agent2"]
    alice_sock = connect(desk["alice"])
    _join_all(ticket, alice_sock)
    one, two = connect(agent), connect(agent2)

    assert one.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    assert one.received("presence") == [{"ticket_id": ticket.id, "viewer_ids": [agent.id]}]
    assert two.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    both = {"ticket_id": ticket.id, "viewer_ids": sorted([agent.id, agent2.id])}
    assert one.received("presence")[-1] == both
    assert two.received("presence") == [both]

    assert two.emit("leave_ticket", {"ticket_id": ticket.id}) == {"ok": True}
    assert one.received("presence")[-1] == {"ticket_id": ticket.id, "viewer_ids": [agent.id]}
    assert two.received("presence") == [both]  # no longer in the staff room

    assert two.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    assert one.received("presence")[-1] == both
    two.client.disconnect()
    assert one.received("presence")[-1] == {"ticket_id": ticket.id, "viewer_ids": [agent.id]}

    assert alice_sock.received("presence") == []


def test_presence_counts_a_person_once_across_tabs(connect, desk, no_stale_presence):
    ticket, agent = desk["ticket"], desk["agent"]
    tab1, tab2 = connect(agent), connect(agent)
    _join_all(ticket, tab1, tab2)
    assert tab1.received("presence")[-1] == {"ticket_id": ticket.id, "viewer_ids": [agent.id]}
    tab2.client.disconnect()  # the other tab still has it open
    assert tab1.received("presence")[-1] == {"ticket_id": ticket.id, "viewer_ids": [agent.id]}


def test_customers_do_not_count_as_viewers(connect, desk, no_stale_presence):
    ticket, agent = desk["ticket"], desk["agent"]
    agent_sock = connect(agent)
    _join_all(ticket, agent_sock)
    _join_all(ticket, connect(desk["alice"]))
    assert agent_sock.received("presence") == [{"ticket_id": ticket.id, "viewer_ids": [agent.id]}]


def test_presence_keys_live_under_the_installations_redis_prefix(rt, connect, desk):
    ticket = desk["ticket"]
    _join_all(ticket, connect(desk["agent"]))
    store = rt.extensions["autocrm.redis"]
    keys = [k.decode() for k in store.scan_iter(match=f"{key_prefix()}*presence*")]
    assert any(k.endswith(f":{ticket.id}") for k in keys)


# -- join_queue ------------------------------------------------------------------------------


def test_agent_joins_own_teams_queue(connect, desk):
    team = desk["team"]
    sock = connect(desk["agent"])
    assert sock.emit("join_queue", {"team_id": team.id}) == {"ok": True}
    assert team_room(team.id) in sock.rooms()


def test_agent_cannot_join_another_teams_queue(connect, desk):
    sock = connect(desk["outsider"])
    ack = sock.emit("join_queue", {"team_id": desk["team"].id})
    assert ack == {"ok": False, "error": "Not a member of this team.", "errors": {}}
    assert team_room(desk["team"].id) not in sock.rooms()


def test_admin_joins_any_queue(connect, desk):
    sock = connect(desk["admin"])
    assert sock.emit("join_queue", {"team_id": desk["other_team"].id}) == {"ok": True}


@pytest.mark.parametrize("team_id", ["team", None])
def test_customer_cannot_join_a_queue(connect, desk, team_id):
    team_id = desk["team"].id if team_id else None
    sock = connect(desk["alice"])
    ack = sock.emit("join_queue", {"team_id": team_id})
    assert ack == {"ok": False, "error": "Only staff have queues.", "errors": {}}
    assert not any(room.startswith("team:") for room in sock.rooms())


@pytest.mark.parametrize("who", ["agent", "outsider", "admin"])
def test_staff_join_the_triage_queue(connect, desk, who):
    sock = connect(desk[who])
    assert sock.emit("join_queue", {"team_id": None}) == {"ok": True}
    assert "team:none" in sock.rooms()


@pytest.mark.parametrize("payload", [{}, {"team_id": "1"}, {"team_id": True, "x": 1}, 7])
def test_join_queue_rejects_bad_payloads(connect, desk, payload):
    ack = connect(desk["admin"]).emit("join_queue", payload)
    assert ack["ok"] is False
    assert ack["error"] == "Invalid payload."


def test_join_queue_of_an_unknown_team(connect, desk):
    ack = connect(desk["admin"]).emit("join_queue", {"team_id": 999_999})
    assert ack == {"ok": False, "error": "Team 999999 not found.", "errors": {}}


# -- ticket_updated --------------------------------------------------------------------------


def _queue_socket(connect: Callable[..., Sock], user: User, team: Team | None) -> Sock:
    sock = connect(user)
    assert sock.emit("join_queue", {"team_id": team.id if team else None})["ok"]
    return sock


def test_a_patch_updates_the_ticket_room_and_the_teams_queue(connect, http, desk):
    ticket, agent, team = desk["ticket"], desk["agent"], desk["team"]
    alice_sock, viewer = connect(desk["alice"]), connect(desk["agent2"])
    _join_all(ticket, alice_sock, viewer)
    queue = _queue_socket(connect, agent, team)
    other_queue = _queue_socket(connect, desk["outsider"], desk["other_team"])
    triage = _queue_socket(connect, desk["outsider"], None)

    response = ApiClient(http, agent).patch(
        f"/api/tickets/{ticket.id}",
        json={"priority": "urgent", "assignee_id": agent.id, "version": ticket.version},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    # Two audit events (updated, assigned) in one transaction: one event, the last state.
    for sock in (alice_sock, viewer, queue):
        [payload] = sock.received("ticket_updated")
        assert_matches(
            TicketViewSchema() if sock is alice_sock else StaffTicketViewSchema(), payload
        )
        assert {k: payload[k] for k in ("id", "status", "priority", "assignee_id", "version")} == {
            "id": ticket.id,
            "status": body["status"],
            "priority": "urgent",
            "assignee_id": agent.id,
            "version": body["version"],
        }
        assert {k: payload[k] for k in ("team_id", "requester_id", "tags", "subject")} == {
            k: body[k] for k in ("team_id", "requester_id", "tags", "subject")
        }
        assert payload["updated_at"] == body["updated_at"]
    assert other_queue.received("ticket_updated") == []
    assert triage.received("ticket_updated") == []


def test_a_transition_updates_the_ticket_room_and_the_queue(connect, http, desk):
    ticket, agent = desk["ticket"], desk["agent"]
    alice_sock = connect(desk["alice"])
    _join_all(ticket, alice_sock)
    queue = _queue_socket(connect, desk["agent2"], desk["team"])
    response = ApiClient(http, agent).post(
        f"/api/tickets/{ticket.id}/transitions", json={"name": "start"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    for sock in (alice_sock, queue):
        [payload] = sock.received("ticket_updated")
        assert_matches(
            TicketViewSchema() if sock is alice_sock else StaffTicketViewSchema(), payload
        )
        assert (payload["status"], payload["version"]) == ("open", response.get_json()["version"])


def test_a_new_ticket_appears_in_its_queue_and_again_with_its_sla(connect, desk, factory):
    team = desk["team"]
    queue = _queue_socket(connect, desk["agent"], team)
    triage = _queue_socket(connect, desk["agent"], None)
    ticket = factory.ticket(desk["bob"], team=team, priority=Priority.HIGH)
    [created] = queue.received("ticket_updated")
    assert_matches(StaffTicketViewSchema(), created)
    assert (created["id"], created["team_id"], created["priority"]) == (ticket.id, team.id, "high")
    drain(db.session)  # the worker starts the SLA clocks and publishes the row again
    with_sla = queue.received("ticket_updated")[-1]
    assert_matches(StaffTicketViewSchema(), with_sla)
    assert set(with_sla["sla_due"]) == {"first_response", "resolution"}
    assert all(isinstance(v, str) for v in with_sla["sla_due"].values())
    assert triage.received("ticket_updated") == []


def test_a_triage_ticket_updates_the_triage_queue(connect, desk, factory):
    triage = _queue_socket(connect, desk["outsider"], None)
    ticket = factory.ticket(desk["bob"])
    tickets.do_update_ticket(desk["admin"], ticket.id, {"priority": Priority.LOW})
    payloads = triage.received("ticket_updated")
    assert [p["priority"] for p in payloads] == ["normal", "low"]
    assert all(p["team_id"] is None for p in payloads)


def test_a_change_that_rolls_back_emits_nothing(connect, desk, db_session):
    ticket, agent = desk["ticket"], desk["agent"]
    viewer = connect(desk["agent2"])
    _join_all(ticket, viewer)
    queue = _queue_socket(connect, agent, desk["team"])

    tickets.apply_changes(agent, ticket, {"priority": Priority.URGENT})
    db_session.rollback()
    db_session.commit()
    assert viewer.received("ticket_updated") == []
    assert queue.received("ticket_updated") == []
    # ... and does not go out with the next commit either.
    tickets.do_update_ticket(agent, ticket.id, {"priority": Priority.LOW})
    assert [p["priority"] for p in viewer.received("ticket_updated")] == ["low"]


def test_a_change_in_a_savepoint_that_rolls_back_emits_nothing(connect, desk, db_session):
    ticket, agent = desk["ticket"], desk["agent"]
    viewer = connect(desk["agent2"])
    _join_all(ticket, viewer)

    with pytest.raises(RuntimeError), aftercommit.savepoint():
        tickets.apply_changes(agent, ticket, {"priority": Priority.URGENT})
        db_session.flush()
        raise RuntimeError("boom")
    tickets.apply_changes(agent, ticket, {"tags": ["printer"]})
    db_session.commit()
    [payload] = viewer.received("ticket_updated")
    assert (payload["priority"], payload["tags"]) == ("normal", ["printer"])


def test_nothing_is_emitted_before_the_commit(connect, desk, db_session):
    ticket, agent = desk["ticket"], desk["agent"]
    viewer = connect(desk["agent2"])
    _join_all(ticket, viewer)
    tickets.apply_changes(agent, ticket, {"priority": Priority.HIGH})
    db_session.flush()
    assert viewer.received("ticket_updated") == []
    db_session.commit()
    assert [p["priority"] for p in viewer.received("ticket_updated")] == ["high"]


def test_moving_a_ticket_to_another_team_updates_the_old_queue_too(connect, desk):
    ticket, team, other_team = desk["ticket"], desk["team"], desk["other_team"]
    old_queue = _queue_socket(connect, desk["agent"], team)
    new_queue = _queue_socket(connect, desk["outsider"], other_team)
    tickets.do_update_ticket(desk["admin"], ticket.id, {"team_id": other_team.id})
    [arrived] = new_queue.received("ticket_updated")
    assert arrived["team_id"] == other_team.id
    [left] = old_queue.received("ticket_updated")
    assert left["team_id"] == other_team.id


# -- notification ----------------------------------------------------------------------------


def test_a_notification_reaches_only_its_user(connect, desk, db_session):
    agent, ticket = desk["agent"], desk["ticket"]
    mine, my_other_tab = connect(agent), connect(agent)
    others = [connect(desk["agent2"]), connect(desk["admin"]), connect(desk["alice"])]
    _join_all(ticket, *others)
    note = notifications.notify(
        agent, "assigned", title="You got one", dedupe_key="socket-test", ticket=ticket
    )
    assert mine.received("notification") == []  # not before the commit
    db_session.commit()
    expected = NotificationEventSchema().dump(note)
    for sock in (mine, my_other_tab):
        [payload] = sock.received("notification")
        assert_matches(NotificationEventSchema(), payload)
        assert payload == expected
        assert (payload["kind"], payload["ticket_id"]) == ("assigned", ticket.id)
    for sock in others:
        assert sock.received("notification") == []


def test_notification_event_schema_describes_a_notification(desk, db_session):
    note = notifications.notify(
        desk["agent"], "assigned", title="t", dedupe_key="schema-test", ticket=desk["ticket"]
    )
    db_session.commit()
    payload = NotificationEventSchema().dump(note)
    assert_matches(NotificationEventSchema(), payload)
    assert payload["ticket_id"] == desk["ticket"].id


@pytest.mark.parametrize("ticket_id", [2**31, 2**63, -(2**31) - 1])
@pytest.mark.parametrize(
    ("event", "extra"),
    [("join_ticket", {}), ("send_message", {"body": "hi"}), ("typing", {"typing": True})],
)
def test_ids_past_32_bits_are_acknowledged_as_invalid(connect, desk, event, extra, ticket_id):
    sock = connect(desk["admin"])
    ack = sock.emit(event, {"ticket_id": ticket_id, **extra})
    assert ack["ok"] is False
    assert ack["error"] == "Invalid payload."
    assert "ticket_id" in ack["errors"]


@pytest.mark.parametrize("body", ["a\u0000b", "a\ud800b"])
def test_a_message_with_unstorable_text_is_refused_by_its_field(connect, desk, body):
    ticket = desk["ticket"]
    sock = connect(desk["admin"])
    ack = sock.emit("send_message", {"ticket_id": ticket.id, "body": body})
    assert ack["ok"] is False
    assert list(ack["errors"]) == ["body"]
    assert not db.session.scalars(select(Message).where(Message.ticket_id == ticket.id)).all()


def test_an_organization_manager_follows_colleagues_tickets_until_removed(connect, desk):
    ticket, alice, bob, admin = desk["ticket"], desk["alice"], desk["bob"], desk["admin"]
    org = organizations.do_create_organization(admin, name="Alice and Bob Ltd")
    organizations.do_add_member(admin, org.id, alice.id)
    organizations.do_add_member(admin, org.id, bob.id, manager=True)
    sock = connect(bob)
    assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    conversation.do_add_message(desk["agent"], ticket.id, "Looking into it")
    assert [m["body"] for m in sock.received("message")] == ["Looking into it"]

    organizations.do_remove_member(admin, org.id, bob.id)
    conversation.do_add_message(desk["agent"], ticket.id, "Fixed")

    assert [m["body"] for m in sock.received("message")] == ["Looking into it"]
    assert not connect(bob).emit("join_ticket", {"ticket_id": ticket.id})["ok"]
