"""Every event the server sends is complete: applied to what a page holds, it gives exactly what
a fresh REST fetch gives (Zulip's ``verify_action``).

A ``ClientState`` is a small Python mirror of what the workspace and the portal keep of one
ticket: the ticket, its messages, its trail. It starts from the REST API, then changes only by
applying the ``message``, ``ticket_updated`` and ``trail`` events its socket receives, the way
``portal.js`` and ``workspace.js`` apply them. After each action, for a staff viewer and for
the ticket's customer, the state must equal a fresh fetch: a payload that drops or misstates a
field, or an event that does not go out, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.realtime.payloads import EVENT_SCHEMAS
from autocrm.tickets import conversation, representation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from tests.factories import ApiClient, Factory
from tests.integration.conftest import Sock

STATE_EVENTS = ("message", "ticket_updated", "trail")


def payload_of(received: dict[str, Any]) -> Any:
    """The test client files a "message" event's payload as its args, not in a list."""
    return received["args"] if received["name"] == "message" else received["args"][0]


@dataclass
class ClientState:
    """What a page keeps of one ticket, for one viewer."""

    ticket_id: int
    ticket: dict[str, Any] | None = None
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    trail: dict[int, dict[str, Any]] = field(default_factory=dict)

    def apply(self, name: str, payload: dict[str, Any]) -> None:
        if payload.get("ticket_id", payload.get("id")) != self.ticket_id:
            return
        if name == "message":
            self.messages[payload["id"]] = payload
        elif name == "ticket_updated":
            # Events of one ticket arrive in order; a lower version is an older change.
            if self.ticket is None or payload["version"] >= self.ticket["version"]:
                self.ticket = payload
        elif name == "trail":
            self.trail[payload["id"]] = payload

    def snapshot(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "messages": [self.messages[k] for k in sorted(self.messages)],
            "trail": [self.trail[k] for k in sorted(self.trail)],
        }


def fetch(http: FlaskClient, user: User, ticket_id: int) -> dict[str, Any]:
    """The ticket, its conversation and its trail as the REST API gives them to ``user``."""
    api = ApiClient(http, user)
    responses = {
        "ticket": api.get(f"/api/tickets/{ticket_id}"),
        "messages": api.get(f"/api/tickets/{ticket_id}/messages?limit=200"),
        "trail": api.get(f"/api/tickets/{ticket_id}/events"),
    }
    for response in responses.values():
        assert response.status_code == 200, response.get_data(as_text=True)
    return {
        "ticket": responses["ticket"].get_json(),
        "messages": responses["messages"].get_json()["items"],
        "trail": responses["trail"].get_json(),
    }


def rest_transitions(http: FlaskClient, user: User, ticket_id: int) -> list[str]:
    response = ApiClient(http, user).get(f"/api/tickets/{ticket_id}/transitions")
    assert response.status_code == 200
    return sorted(t["name"] for t in response.get_json())


@dataclass
class Viewer:
    """One person with a page open on the ticket: their socket and what their page holds."""

    user: User
    sock: Sock
    state: ClientState
    seen: int = 0  # events of the socket's log already applied

    @property
    def audience(self) -> str:
        return representation.audience_of(self.user)

    def new_events(self) -> list[tuple[str, Any]]:
        names = self.sock.names()
        events = [(e["name"], payload_of(e)) for e in self.sock.log[self.seen :]]
        self.seen = len(names)
        return events


@pytest.fixture
def world(factory: Factory) -> dict[str, Any]:
    team = factory.team()
    return {
        "team": team,
        "agent": factory.agent(team),
        "agent2": factory.agent(team),
        "customer": factory.customer(),
        "other_customer": factory.customer(),
    }


def open_page(
    connect: Callable[..., Sock], http: FlaskClient, user: User, ticket: Ticket
) -> Viewer:
    """A page as the browser opens it: the state from REST, then the socket joins the ticket."""
    sock = connect(user)
    assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    state = ClientState(ticket.id)
    fresh = fetch(http, user, ticket.id)
    state.ticket = fresh["ticket"]
    state.messages = {m["id"]: m for m in fresh["messages"]}
    state.trail = {e["id"]: e for e in fresh["trail"]}
    viewer = Viewer(user, sock, state)
    viewer.new_events()  # what joining sent (presence) is not state
    return viewer


def verify(http: FlaskClient, viewers: list[Viewer], action: Callable[[], Any]) -> dict[str, Any]:
    """Run ``action``; each viewer applies what it received and must hold a fresh fetch.
    Returns the names of the state events each viewer received, by user id."""
    action()
    received: dict[str, Any] = {}
    for viewer in viewers:
        names = []
        for name, payload in viewer.new_events():
            if name not in STATE_EVENTS:
                continue
            schema = EVENT_SCHEMAS[name][viewer.audience]()
            assert schema.validate(payload) == {}, (name, payload)
            wire = {f.data_key or key for key, f in schema.fields.items()}  # names as sent
            assert set(payload) == wire, (name, viewer.audience, set(payload))
            viewer.state.apply(name, payload)
            names.append(name)
        fresh = fetch(http, viewer.user, viewer.state.ticket_id)
        assert viewer.state.snapshot() == fresh, f"{viewer.audience} page differs from a fetch"
        ticket = viewer.state.ticket
        assert ticket is not None
        offered = representation.allowed_for(ticket, viewer.user.role.value, viewer.user.id)
        assert sorted(t["name"] for t in offered) == rest_transitions(
            http, viewer.user, ticket["id"]
        )
        received[viewer.audience] = names
    return received


def test_every_event_applied_to_a_page_equals_a_fresh_fetch(connect, http, world):
    agent, customer = world["agent"], world["customer"]
    ticket = tickets.do_create_ticket(
        customer, subject="Printer on fire", description="It **smokes**.", channel="web"
    )
    tickets.do_update_ticket(world["agent2"], ticket.id, {"team_id": world["team"].id})
    staff = open_page(connect, http, agent, ticket)
    mine = open_page(connect, http, customer, ticket)
    stranger = connect(world["other_customer"])
    viewers = [staff, mine]
    v, tid = (lambda: ticket.version), ticket.id

    # message: public, both ways; the first staff reply stops an SLA clock and sets
    # first_responded_at, which the ticket_updated of the same change carries.
    got = verify(http, viewers, lambda: conversation.do_add_message(customer, tid, "Any news?"))
    assert got == {"staff": ["message", "ticket_updated"], "customer": got["customer"]}
    assert "message" in got["customer"]
    got = verify(http, viewers, lambda: conversation.do_add_message(agent, tid, "On it."))
    assert "message" in got["customer"] and "ticket_updated" in got["staff"]
    # message: internal, to staff only.
    got = verify(
        http, viewers, lambda: conversation.do_add_message(agent, tid, "Shh", internal=True)
    )
    assert "message" in got["staff"] and "message" not in got["customer"]

    # ticket_updated from each row kind, and the trail entries each one writes.
    got = verify(
        http,
        viewers,
        lambda: tickets.do_update_ticket(
            agent, tid, {"priority": Priority.HIGH, "tags": ["fire"]}, v()
        ),
    )
    assert got["staff"] == ["ticket_updated", "trail"]
    assert got["customer"] == ["ticket_updated"]  # ticket.updated is not a public trail kind
    got = verify(
        http, viewers, lambda: tickets.do_update_ticket(agent, tid, {"assignee_id": agent.id}, v())
    )
    assert got["staff"] == ["ticket_updated", "trail", "trail"]  # updated, assigned
    got = verify(http, viewers, lambda: tickets.do_transition(agent, tid, "solve", v()))
    assert got == {"staff": ["ticket_updated", "trail"], "customer": ["ticket_updated", "trail"]}
    assert mine.state.ticket and mine.state.ticket["solved_at"] is not None
    # feedback: a staff-only trail kind.
    got = verify(http, viewers, lambda: conversation.do_give_feedback(customer, tid, 5, "Thanks"))
    assert "trail" in got["staff"] and "trail" not in got["customer"]
    got = verify(http, viewers, lambda: tickets.do_transition(customer, tid, "reopen", v()))
    assert got["customer"] == ["ticket_updated", "trail"]
    assert mine.state.ticket and mine.state.ticket["solved_at"] is None

    # The marker: a last public message after everything reached both pages, so nothing the
    # customer should not get is still on its way.
    verify(http, viewers, lambda: conversation.do_add_message(agent, tid, "Marker"))
    customer_events = mine.sock.log
    customer_messages = [payload_of(e) for e in customer_events if e["name"] == "message"]
    assert customer_messages[-1]["body"] == "Marker"
    assert all(not m["internal"] for m in customer_messages)
    assert "Shh" not in repr(customer_events)
    updates = [payload_of(e) for e in customer_events if e["name"] == "ticket_updated"]
    assert updates and not any("sla_due" in u or "sla_clocks" in u for u in updates)
    assert {e["args"][0]["kind"] for e in customer_events if e["name"] == "trail"} <= {
        "ticket.created",
        "ticket.transitioned",
    }
    assert [e["name"] for e in stranger.log + stranger.client.get_received()] == []


def test_a_new_ticket_reaches_its_customer_and_its_queue_complete(connect, http, world):
    """ticket.created: nobody has the ticket open yet; the requester's own room and the team's
    queue get it, and a page built from those events alone equals a fetch."""
    customer, agent, team = world["customer"], world["agent"], world["team"]
    mine, queue = connect(customer), connect(agent)
    assert queue.emit("join_queue", {"team_id": team.id})["ok"]
    queue.names()
    ticket = tickets.do_create_ticket(
        world["agent2"],
        subject="New",
        description="Hello",
        channel="web",
        requester_id=customer.id,
        team_id=team.id,
    )
    for user, sock, kinds in ((customer, mine, STATE_EVENTS), (agent, queue, ("ticket_updated",))):
        state = ClientState(ticket.id)
        for e in sock.log + sock.client.get_received():
            if e["name"] in kinds:
                state.apply(e["name"], payload_of(e))
        fresh = fetch(http, user, ticket.id)
        assert state.ticket == fresh["ticket"]
        if sock is mine:
            assert state.snapshot()["trail"] == fresh["trail"] != []


def test_a_staff_requester_gets_only_the_staff_version(connect, http, world):
    """A ticket an agent opened for themselves: one ticket_updated, the staff one."""
    agent, team = world["agent"], world["team"]
    sock = connect(agent)
    assert sock.emit("join_queue", {"team_id": team.id})["ok"]
    ticket = tickets.do_create_ticket(
        agent, subject="Mine", description="x", channel="web", team_id=team.id
    )
    updates = [p for p in sock.received("ticket_updated") if p["id"] == ticket.id]
    assert len(updates) == 1 and "sla_due" in updates[0]


def test_tickets_render_in_a_fixed_number_of_queries(factory: Factory, world):
    """One change touching many tickets renders them in bulk, not a few queries per ticket."""
    team = world["team"]
    many = [
        factory.ticket(world["customer"], team=team, assignee_id=world["agent"].id)
        for _ in range(6)
    ]
    other: Team = factory.team()
    many.append(factory.ticket(world["other_customer"], team=other))

    def queries(ts: list[Ticket], audience: str) -> int:
        statements: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        db.session.expire_all()
        loaded = [db.session.get_one(Ticket, t.id) for t in ts]
        [t.tags for t in loaded]  # loaded with the tickets, as a service has them
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            representation.render_tickets(loaded, audience)  # type: ignore[arg-type]
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        return len(statements)

    for audience in ("staff", "customer"):
        # People, teams, SLA clocks and linked tickets (staff), the files sent with them and
        # the custom field definitions.
        assert queries(many, audience) == queries(many[:1], audience) <= 6
