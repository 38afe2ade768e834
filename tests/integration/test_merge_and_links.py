"""Merging a duplicate ticket into another and linking related tickets (issue 15), over
/api/tickets/<id>/merge and /api/tickets/<id>/links: the duplicate's conversation, files,
followers and received emails move to the target, an email reply to the old thread lands on
the target, the duplicate is closed with a note and seen only by its own requester, both
requesters are told, and bad input is a 4xx naming the field."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import select

from autocrm.files import services as files
from autocrm.mail import mailboxes, receive
from autocrm.notifications.models import Notification
from autocrm.tickets import conversation, followers
from autocrm.tickets.models import Message, Ticket, TicketEvent
from tests.factories import ApiClient, Factory, assert_error, drain
from tests.mail_messages import build_message

SUPPORT = "support@acme.test"


@pytest.fixture
def desk(factory: Factory) -> dict[str, Any]:
    """A team with an agent; Alice's ticket (the target) and Bob's duplicate (the source) in
    it; Carol follows Bob's ticket; Dora is a customer with nothing to do with either."""
    team = factory.team()
    people: dict[str, Any] = {
        "team": team,
        "agent": factory.agent(team),
        "admin": factory.admin(),
        "alice": factory.customer(name="Alice"),
        "bob": factory.customer(name="Bob"),
        "carol": factory.customer(name="Carol"),
        "dora": factory.customer(name="Dora"),
    }
    people["target"] = factory.ticket(people["alice"], team=team, subject="Printer on fire")
    people["source"] = factory.ticket(people["bob"], team=team, subject="Printer burning")
    followers.do_add_follower(people["agent"], people["source"].id, user_id=people["carol"].id)
    drain(factory.session)
    return people


def merge(actor: Any, client: Any, source_id: int, into: Any) -> Any:
    return ApiClient(client, actor).post(f"/api/tickets/{source_id}/merge", json={"into": into})


def messages_of(session: Any, ticket_id: int) -> list[Message]:
    stmt = select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)
    return list(session.scalars(stmt))


def kinds_of(session: Any, ticket_id: int) -> list[str]:
    stmt = select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)
    return list(session.scalars(stmt.order_by(TicketEvent.id)))


# -- merging -----------------------------------------------------------------------------------


def test_merging_moves_the_conversation_files_and_followers_and_closes_the_source(
    client, desk, db_session
):
    agent, source, target = desk["agent"], desk["source"], desk["target"]
    reply = conversation.do_add_message(desk["bob"], source.id, "Still burning")
    [upload] = files.do_upload(
        desk["bob"], [files.Upload("smoke.txt", io.BytesIO(b"lots of smoke"))]
    )
    with_file = conversation.do_add_message(
        desk["bob"], source.id, "A note on the smoke", attachment_ids=[upload.id]
    )

    response = merge(agent, client, source.id, target.id)

    assert response.status_code == 200, response.json
    assert response.json["id"] == target.id and response.json["merged_into_id"] is None
    moved = messages_of(db_session, target.id)
    assert [m.id for m in moved][:2] == [reply.id, with_file.id]
    assert [a.id for a in moved[1].attachments] == [upload.id]
    assert moved[1].attachments[0].ticket_id == target.id
    assert moved[-1].author_id == desk["bob"].id and "Printer burning" in moved[-1].body
    assert [m.body for m in messages_of(db_session, source.id)] == [f"Merged into #{target.id}."]
    follower_ids = {u.id for u in followers.followers_of(target.id)}
    assert follower_ids == {desk["carol"].id, desk["bob"].id}
    assert followers.followers_of(source.id) == []
    db_session.refresh(source)
    assert source.merged_into_id == target.id and source.category == "closed"
    assert "ticket.merged" in kinds_of(db_session, source.id)
    assert "ticket.merged" in kinds_of(db_session, target.id)
    assert "ticket.transitioned" in kinds_of(db_session, source.id)

    shown = ApiClient(client, agent).get(f"/api/tickets/{source.id}").json
    assert shown["merged_into_id"] == target.id and shown["status"] == "closed"


def test_both_requesters_are_told_when_they_differ(client, desk, db_session):
    merge(desk["agent"], client, desk["source"].id, desk["target"].id)
    drain(db_session)

    for user, ticket in ((desk["alice"], desk["target"]), (desk["bob"], desk["source"])):
        stmt = select(Notification.title).where(
            Notification.user_id == user.id, Notification.ticket_id == ticket.id
        )
        titles = list(db_session.scalars(stmt))
        assert any("merged" in title for title in titles), (user.name, titles)


def test_a_customer_never_sees_someone_elses_merged_ticket(client, desk):
    source, target = desk["source"], desk["target"]
    merge(desk["agent"], client, source.id, target.id)
    carol, bob, dora = (ApiClient(client, desk[name]) for name in ("carol", "bob", "dora"))

    # Carol followed the duplicate: she follows the target now, and no longer sees the source.
    assert carol.get(f"/api/tickets/{source.id}").status_code == 404
    assert carol.get(f"/api/tickets/{target.id}").status_code == 200
    assert dora.get(f"/api/tickets/{source.id}").status_code == 404
    listed = carol.get("/api/tickets").json["items"]
    assert [t["id"] for t in listed] == [target.id]
    # Bob sees where his request went, and can open it (he follows it).
    own = bob.get(f"/api/tickets/{source.id}").json
    assert own["merged_into_id"] == target.id
    assert bob.get(f"/api/tickets/{target.id}").status_code == 200
    messages = bob.get(f"/api/tickets/{target.id}/messages").json
    assert any("Printer burning" in m["body"] for m in messages["items"])


def test_a_customer_cannot_merge(client, desk):
    response = merge(desk["bob"], client, desk["source"].id, desk["target"].id)
    assert_error(response, 403)


@pytest.mark.parametrize("into", ["self", 999_999, "closed", "merged", "text"])
def test_bad_merges_are_refused_naming_the_field(client, desk, factory, into):
    agent, source = desk["agent"], desk["source"]
    status = 422
    if into == "self":
        into = source.id
    elif into == "closed":
        closed = factory.ticket(desk["alice"], team=desk["team"])
        ApiClient(client, agent).post(
            f"/api/tickets/{closed.id}/transitions", json={"name": "solve"}
        )
        ApiClient(client, agent).post(
            f"/api/tickets/{closed.id}/transitions", json={"name": "close"}
        )
        into, status = closed.id, 409
    elif into == "merged":
        other = factory.ticket(desk["alice"], team=desk["team"])
        assert merge(agent, client, other.id, desk["target"].id).status_code == 200
        into, status = other.id, 409

    body = assert_error(merge(agent, client, source.id, into), status)

    assert "into" in body["errors"] or "into" in str(body["errors"])
    assert ApiClient(client, agent).get(f"/api/tickets/{source.id}").json["merged_into_id"] is None


def test_a_ticket_merged_once_cannot_be_merged_again(client, desk, factory):
    agent, source, target = desk["agent"], desk["source"], desk["target"]
    assert merge(agent, client, source.id, target.id).status_code == 200
    third = factory.ticket(desk["alice"], team=desk["team"])
    body = assert_error(merge(agent, client, source.id, third.id), 409)
    assert "ticket" in body["errors"]


def test_an_email_reply_to_the_old_thread_lands_on_the_target(client, factory, db_session):
    team = factory.team()
    agent, admin = factory.agent(team), factory.admin()
    mailbox, _ = mailboxes.do_create_mailbox(
        admin, {"name": "support", "address": SUPPORT, "team_id": team.id}
    )
    first = build_message("dana@example.org", SUPPORT, "Hi", "One", message_id="a1@example.org")
    source_id = receive.do_receive_email(mailbox, first, via="pipe").ticket_id
    target = factory.ticket(factory.customer(), team=team)
    drain(db_session)
    assert merge(agent, client, source_id, target.id).status_code == 200

    answer = build_message(
        "dana@example.org", SUPPORT, "Re: Hi", "Two", in_reply_to="a1@example.org"
    )
    inbound = receive.do_receive_email(mailbox, answer, via="pipe")

    assert inbound.ticket_id == target.id
    assert messages_of(db_session, target.id)[-1].body == "Two"
    assert db_session.get(Ticket, source_id).merged_into_id == target.id


# -- links -------------------------------------------------------------------------------------


def test_links_are_shown_on_both_tickets_and_removed_from_either(client, desk, db_session):
    api = ApiClient(client, desk["agent"])
    source, target = desk["source"], desk["target"]

    added = api.post(f"/api/tickets/{target.id}/links", json={"linked_id": source.id})

    assert added.status_code == 201, added.json
    assert added.json["id"] == source.id
    assert [t["id"] for t in api.get(f"/api/tickets/{source.id}/links").json] == [target.id]
    assert api.get(f"/api/tickets/{target.id}").json["linked_ticket_ids"] == [source.id]
    assert api.get(f"/api/tickets/{source.id}").json["linked_ticket_ids"] == [target.id]
    assert "ticket.linked" in kinds_of(db_session, source.id)
    assert "ticket.linked" in kinds_of(db_session, target.id)
    again = api.post(f"/api/tickets/{source.id}/links", json={"linked_id": target.id})
    assert "linked_id" in assert_error(again, 409)["errors"]

    removed = api.delete(f"/api/tickets/{source.id}/links/{target.id}")

    assert removed.json == {"ticket_id": source.id, "linked_id": target.id, "deleted": True}
    assert api.get(f"/api/tickets/{target.id}/links").json == []
    assert "ticket.unlinked" in kinds_of(db_session, target.id)
    assert_error(api.delete(f"/api/tickets/{source.id}/links/{target.id}"), 404)


@pytest.mark.parametrize("linked_id", ["self", 999_999, "other-team"])
def test_bad_links_are_refused_naming_the_field(client, desk, factory, linked_id):
    api = ApiClient(client, desk["agent"])
    source = desk["source"]
    if linked_id == "self":
        linked_id = source.id
    elif linked_id == "other-team":
        linked_id = factory.ticket(desk["alice"], team=factory.team()).id

    body = assert_error(
        api.post(f"/api/tickets/{source.id}/links", json={"linked_id": linked_id}), 422
    )

    assert "linked_id" in body["errors"]


def test_customers_cannot_link(client, desk):
    bob = ApiClient(client, desk["bob"])
    response = bob.post(
        f"/api/tickets/{desk['source'].id}/links", json={"linked_id": desk["target"].id}
    )
    assert_error(response, 403)
