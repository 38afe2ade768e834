"""Ticket followers (CC) over /api/tickets/<id>/followers and through the services: a customer
follower sees and hears exactly what the requester does (never internal notes), a customer
who does not follow sees nothing, staff followers hear every reply and status change, nobody
hears of their own change, and anyone may unfollow."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from autocrm.audit.models import AdminAuditEntry
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.notifications.models import EmailMessage, Notification
from autocrm.people.models import Role, User
from autocrm.realtime.rooms import staff_room, ticket_room
from autocrm.security import issue_token
from autocrm.tickets import conversation, followers
from autocrm.tickets import services as tickets
from autocrm.tickets.models import TicketEvent, TicketFollower
from tests import processes
from tests.factories import ApiClient, Factory, assert_error, drain
from tests.integration.test_duplicate_race import RACERS, race


@pytest.fixture
def desk(factory: Factory) -> dict[str, Any]:
    """A team with two agents, an agent of another team, an admin, and Alice's ticket in the
    team; Bob and Carol are other customers."""
    team, other_team = factory.team(), factory.team()
    people: dict[str, Any] = {
        "team": team,
        "agent": factory.agent(team),
        "agent2": factory.agent(team),
        "outsider": factory.agent(other_team),
        "admin": factory.admin(),
        "alice": factory.customer(name="Alice"),
        "bob": factory.customer(name="Bob"),
        "carol": factory.customer(name="Carol"),
    }
    people["ticket"] = factory.ticket(people["alice"], team=team, assignee_id=people["agent"].id)
    drain(factory.session)
    # What opening it told the assignee is not the followers' business: notes_of counts later.
    people["mark"] = factory.session.scalar(select(func.max(Notification.id))) or 0
    return people


def follow(actor: User, ticket_id: int, user: User) -> None:
    followers.do_add_follower(actor, ticket_id, user_id=user.id)


def notes_of(session: Any, user: User, after: int = 0) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == user.id, Notification.id > after)
    return list(session.scalars(stmt.order_by(Notification.id)))


# -- seeing a ticket ---------------------------------------------------------------------------


def test_a_customer_follower_sees_the_ticket_as_the_requester_does(client, desk):
    ticket, agent = desk["ticket"], desk["agent"]
    added = ApiClient(client, agent).post(
        f"/api/tickets/{ticket.id}/followers", json={"user_id": desk["bob"].id}
    )
    assert added.status_code == 201, added.json
    assert added.json == {
        "id": desk["bob"].id,
        "name": "Bob",
        "role": "customer",
        "email": desk["bob"].email,
    }
    conversation.do_add_message(agent, ticket.id, "We are on it")
    conversation.do_add_message(agent, ticket.id, "Customer seems upset", internal=True)
    bob, alice = ApiClient(client, desk["bob"]), ApiClient(client, desk["alice"])

    for path in ("", "/messages", "/events", "/followers"):
        url = f"/api/tickets/{ticket.id}{path}"
        assert bob.get(url).json == alice.get(url).json, path
    bodies = [m["body"] for m in bob.get(f"/api/tickets/{ticket.id}/messages").json["items"]]
    assert bodies == ["We are on it"]
    assert [t["id"] for t in bob.get("/api/tickets").json["items"]] == [ticket.id]
    # The follower may reply, like the requester.
    reply = bob.post(f"/api/tickets/{ticket.id}/messages", json={"body": "Any news?"})
    assert reply.status_code == 201, reply.json


def test_a_customer_who_does_not_follow_sees_nothing(client, desk):
    ticket = desk["ticket"]
    follow(desk["agent"], ticket.id, desk["bob"])
    carol = ApiClient(client, desk["carol"])

    for path in ("", "/messages", "/events", "/followers"):
        assert_error(carol.get(f"/api/tickets/{ticket.id}{path}"), 404)
    assert_error(
        carol.post(f"/api/tickets/{ticket.id}/followers", json={"email": "x@example.test"}), 404
    )
    assert_error(carol.delete(f"/api/tickets/{ticket.id}/followers/{desk['bob'].id}"), 404)
    assert carol.get("/api/tickets").json["items"] == []


def test_the_staff_trail_records_who_added_and_removed_followers_customers_never_see_it(
    client, db_session, desk
):
    ticket, agent, bob = desk["ticket"], desk["agent"], desk["bob"]
    follow(agent, ticket.id, bob)
    followers.do_remove_follower(bob, ticket.id, bob.id)

    trail = db_session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind.like("follower.%")
        )
    ).all()
    assert [(e.kind, e.actor_id, e.data["user_id"]) for e in trail] == [
        ("follower.added", agent.id, bob.id),
        ("follower.removed", bob.id, bob.id),
    ]
    kinds = {
        e["kind"]
        for e in ApiClient(client, desk["alice"]).get(f"/api/tickets/{ticket.id}/events").json
    }
    assert not {"follower.added", "follower.removed"} & kinds


# -- adding ------------------------------------------------------------------------------------


def test_the_requester_adds_a_colleague_by_email_who_is_made_a_customer(client, db_session, desk):
    ticket = desk["ticket"]
    alice = ApiClient(client, desk["alice"])

    added = alice.post(
        f"/api/tickets/{ticket.id}/followers",
        json={"email": " Dave@Example.TEST ", "name": "Dave Doe"},
    )

    assert added.status_code == 201, added.json
    dave = db_session.scalar(select(User).where(User.email == "dave@example.test"))
    assert (dave.role, dave.name, dave.email_verified_at) == (Role.CUSTOMER, "Dave Doe", None)
    assert added.json == {
        "id": dave.id,
        "name": "Dave Doe",
        "role": "customer",
        "email": "dave@example.test",
    }
    created = db_session.scalar(
        select(AdminAuditEntry).where(
            AdminAuditEntry.action == "user.created", AdminAuditEntry.target_id == dave.id
        )
    )
    assert created.changes["source"] == [None, "follower"]
    [told] = db_session.scalars(
        select(EmailMessage).where(EmailMessage.to_address == "dave@example.test")
    ).all()
    assert told.subject == f"You now follow [#{ticket.id}] Printer on fire"
    assert "Alice added you" in told.body and "/password/reset/" in told.body
    assert [f["id"] for f in alice.get(f"/api/tickets/{ticket.id}/followers").json] == [dave.id]
    # A follower adds a colleague too, an existing customer this time.
    follow_by_bob = ApiClient(client, dave).post(
        f"/api/tickets/{ticket.id}/followers", json={"email": desk["bob"].email}
    )
    assert follow_by_bob.status_code == 201, follow_by_bob.json
    [told_bob] = db_session.scalars(
        select(EmailMessage).where(EmailMessage.to_address == desk["bob"].email)
    ).all()
    assert f"/portal/tickets/{ticket.id}" in told_bob.body  # Bob has a password: log in


def test_staff_add_staff_who_may_see_the_ticket_and_customers_by_email(client, desk):
    ticket = desk["ticket"]
    agent = ApiClient(client, desk["agent"])
    url = f"/api/tickets/{ticket.id}/followers"

    assert agent.post(url, json={"user_id": desk["agent2"].id}).status_code == 201
    assert agent.post(url, json={"email": desk["carol"].email}).status_code == 201
    body = assert_error(agent.post(url, json={"user_id": desk["outsider"].id}), 422)
    assert "cannot see this ticket" in body["errors"]["user_id"][0]
    listed = agent.get(url).json
    assert [f["id"] for f in listed] == [desk["agent2"].id, desk["carol"].id]
    # A customer sees the support team's followers by name, without their address.
    seen_by_alice = ApiClient(client, desk["alice"]).get(url).json
    assert seen_by_alice[0] == {
        "id": desk["agent2"].id,
        "name": desk["agent2"].name,
        "role": "agent",
        "email": None,
    }


@pytest.mark.parametrize(
    ("who", "body", "field"),
    [
        ("alice", {"email": "not-an-address"}, "email"),
        ("alice", {"email": "a@b.test", "name": "x" * 121}, "name"),
        ("alice", {}, "email"),
        ("alice", {"email": "a@b.test", "user_id": 1}, "email"),
        ("alice", {"user_id": "bob"}, "user_id"),  # customers may not pick users by id
        ("alice", {"email": "STAFF"}, "email"),  # a customer adding an agent
        ("alice", {"email": "ALICE"}, "email"),  # the requester
        ("agent", {"user_id": 2_000_000}, "user_id"),
        ("agent", {"user_id": 0}, "user_id"),
        ("agent", {"user_id": "alice"}, "user_id"),
        ("agent", {"email": "a@b.test", "colour": "red"}, "colour"),
    ],
)
def test_bad_followers_are_refused_naming_the_field(client, db_session, desk, who, body, field):
    ticket = desk["ticket"]
    named = {"bob": desk["bob"].id, "alice": desk["alice"].id}
    body = {k: named.get(v, v) if k == "user_id" else v for k, v in body.items()}
    if body.get("email") == "STAFF":
        body["email"] = desk["agent2"].email
    if body.get("email") == "ALICE":
        body["email"] = desk["alice"].email
    users_before = db_session.scalar(select(User.id).order_by(User.id.desc()).limit(1))

    response = ApiClient(client, desk[who]).post(f"/api/tickets/{ticket.id}/followers", json=body)

    errors = assert_error(response, 422)["errors"]
    assert field in errors.get("json", errors), response.json  # the schema's, or the service's
    assert db_session.scalars(select(TicketFollower)).all() == []
    assert db_session.scalar(select(User.id).order_by(User.id.desc()).limit(1)) == users_before


def test_following_twice_is_refused_and_leaves_one_row(client, db_session, desk):
    ticket = desk["ticket"]
    follow(desk["agent"], ticket.id, desk["bob"])
    response = ApiClient(client, desk["agent"]).post(
        f"/api/tickets/{ticket.id}/followers", json={"user_id": desk["bob"].id}
    )
    assert "already follows" in assert_error(response, 422)["errors"]["user_id"][0]
    assert len(db_session.scalars(select(TicketFollower)).all()) == 1


def test_add_followers_skips_the_requester_and_existing_followers_without_committing(
    db_session, desk
):
    ticket, bob, carol = desk["ticket"], desk["bob"], desk["carol"]
    follow(desk["agent"], ticket.id, bob)

    added = followers.add_followers(ticket, [desk["alice"], bob, carol, carol], actor=None)

    assert added == [carol]
    assert followers.followers_of(ticket.id) == [bob, carol]
    db_session.rollback()  # the caller's transaction decides
    assert followers.followers_of(ticket.id) == [bob]


# -- removing ----------------------------------------------------------------------------------


def test_a_follower_unfollows_and_then_sees_the_ticket_no_more(client, desk):
    ticket = desk["ticket"]
    follow(desk["agent"], ticket.id, desk["bob"])
    bob = ApiClient(client, desk["bob"])

    gone = bob.delete(f"/api/tickets/{ticket.id}/followers/{desk['bob'].id}")
    assert gone.json == {"ticket_id": ticket.id, "user_id": desk["bob"].id, "deleted": True}

    assert_error(bob.get(f"/api/tickets/{ticket.id}"), 404)
    assert bob.get("/api/tickets").json["items"] == []


def test_only_staff_remove_someone_else(client, desk):
    ticket = desk["ticket"]
    for user in (desk["bob"], desk["carol"]):
        follow(desk["agent"], ticket.id, user)
    url = f"/api/tickets/{ticket.id}/followers/{desk['carol'].id}"

    assert_error(ApiClient(client, desk["bob"]).delete(url), 403)
    assert_error(ApiClient(client, desk["alice"]).delete(url), 403)
    assert ApiClient(client, desk["agent"]).delete(url).status_code == 200
    assert_error(ApiClient(client, desk["agent"]).delete(url), 404)  # no longer a follower


# -- notifications -----------------------------------------------------------------------------


def test_customer_followers_hear_public_replies_and_status_changes_never_notes(db_session, desk):
    ticket, agent, bob = desk["ticket"], desk["agent"], desk["bob"]
    follow(agent, ticket.id, bob)
    drain(db_session)

    conversation.do_add_message(agent, ticket.id, "Refund approved", internal=True)
    drain(db_session)
    conversation.do_add_message(agent, ticket.id, "We sent a new printer")
    drain(db_session)
    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)

    # The reply moved the ticket on (waiting for the customer): one notification of both.
    told = [(n.kind, n.body) for n in notes_of(db_session, bob)]
    assert [kind for kind, _ in told] == ["status_changed", "status_changed"]
    assert "We sent a new printer" in told[0][1]
    assert "Solved" in told[1][1]
    assert all("Refund" not in body for _, body in told)
    # The requester heard the same (and is asked for feedback, which is hers to give).
    alice_told = [n.body for n in notes_of(db_session, desk["alice"])]
    assert len(alice_told) == 2 and alice_told[0] == told[0][1]
    assert notes_of(db_session, desk["carol"]) == []


def test_a_followers_reply_reaches_the_requester_and_staff_never_its_author(db_session, desk):
    ticket, agent, bob = desk["ticket"], desk["agent"], desk["bob"]
    follow(agent, ticket.id, bob)
    follow(agent, ticket.id, desk["agent2"])
    drain(db_session)

    conversation.do_add_message(bob, ticket.id, "Still on fire")
    drain(db_session)

    assert notes_of(db_session, bob) == []
    assert [n.kind for n in notes_of(db_session, desk["alice"])] == ["public_reply"]
    for staff in (agent, desk["agent2"]):
        assert [n.kind for n in notes_of(db_session, staff, desk["mark"])] == ["customer_reply"]


def test_staff_followers_hear_replies_and_status_changes_of_others(db_session, desk):
    ticket, agent, agent2 = desk["ticket"], desk["agent"], desk["agent2"]
    follow(agent, ticket.id, agent2)
    drain(db_session)

    conversation.do_add_message(agent, ticket.id, "We sent a new printer")
    drain(db_session)
    tickets.do_transition(agent2, ticket.id, "solve")  # agent2's own change: not told
    drain(db_session)

    [told] = notes_of(db_session, agent2)  # the reply (and the status it caused), not the solve
    assert "We sent a new printer" in told.body
    # Nothing was left unhandled: the silence above is the handlers' decision.
    pending = select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None))
    assert db_session.scalars(pending).all() == []


# -- realtime ----------------------------------------------------------------------------------


def test_a_follower_joins_the_ticket_room_and_leaves_it_on_unfollowing(connect, desk):
    ticket, agent, bob = desk["ticket"], desk["agent"], desk["bob"]
    carol_sock = connect(desk["carol"])
    assert not carol_sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    follow(agent, ticket.id, bob)
    sock = connect(bob)
    assert sock.emit("join_ticket", {"ticket_id": ticket.id}) == {"ok": True}
    assert staff_room(ticket.id) not in sock.rooms()

    conversation.do_add_message(agent, ticket.id, "A note", internal=True)
    conversation.do_add_message(agent, ticket.id, "On its way")
    tickets.do_transition(agent, ticket.id, "solve")

    assert [m["body"] for m in sock.received("message")] == ["On its way"]
    assert sock.received("ticket_updated")[-1]["status"] == "solved"
    assert "priority" in sock.received("ticket_updated")[-1]
    assert {e["kind"] for e in sock.received("trail")} == {"ticket.transitioned"}

    followers.do_remove_follower(bob, ticket.id, bob.id)
    assert ticket_room(ticket.id) not in sock.rooms()
    assert carol_sock.names() == []


# -- a race ------------------------------------------------------------------------------------


def test_simultaneous_adds_of_one_follower_leave_one_row_and_422s(app):
    """Real threads committing for real: the unique constraint decides, the losers get the
    sequential duplicate's 422, never a 500."""
    with app.app_context(), processes.committed_data():
        factory = Factory(db.session)
        admin, bob = factory.admin(), factory.customer()
        ticket_id = factory.ticket(factory.customer(), by=admin).id
        token, bob_id = issue_token(admin.id, admin.password_hash), bob.id
        db.session.rollback()  # SQLite: hold no lock while the threads write
        app.config["PROPAGATE_EXCEPTIONS"] = False
        try:
            responses = race(
                app, token, f"/api/tickets/{ticket_id}/followers", lambda i: {"user_id": bob_id}
            )
        finally:
            app.config["PROPAGATE_EXCEPTIONS"] = None
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [422] * (RACERS - 1), [r.get_data(as_text=True) for r in responses]
        assert all("user_id" in r.json["errors"] for r in responses if r.status_code == 422)
        rows = db.session.scalars(
            select(TicketFollower).where(TicketFollower.ticket_id == ticket_id)
        )
        assert [row.user_id for row in rows] == [bob_id]
        db.session.rollback()
