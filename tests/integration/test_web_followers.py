"""Followers on the pages: the agent workspace lists them, adds a colleague from the list or
anyone by email, and removes them; the portal ticket page lists them, lets the requester add a
colleague by email (the field's message and what was typed kept when it is refused) and lets
a follower unfollow, after which the ticket leaves their list."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from autocrm.people.models import Role, User
from autocrm.tickets import conversation, followers
from tests.factories import Factory, csrf_token, web_login


@pytest.fixture
def desk(factory: Factory, fresh_login_limit: Any) -> dict[str, Any]:
    team = factory.team()
    people: dict[str, Any] = {
        "team": team,
        "agent": factory.agent(team, name="Agnes Agent"),
        "agent2": factory.agent(team, name="Otto Other"),
        "alice": factory.customer(name="Alice"),
        "bob": factory.customer(name="Bob Builder"),
    }
    people["ticket"] = factory.ticket(people["alice"], team=team, subject="Printer on fire")
    return people


def html_of(response: Any) -> str:
    return response.get_data(as_text=True)


# -- the agent workspace -----------------------------------------------------------------------


def test_the_workspace_adds_followers_from_the_list_and_by_email_and_removes_them(
    client, db_session, desk
):
    ticket = desk["ticket"]
    web_login(client, desk["agent"])
    page = f"/agent/tickets/{ticket.id}"
    csrf = csrf_token(client, page)
    assert 'id="ws-followers-none"' in html_of(client.get(page))

    picked = client.post(
        f"{page}/followers", data={"csrf_token": csrf, "user_id": str(desk["agent2"].id)}
    )
    assert picked.status_code == 302
    by_email = client.post(
        f"{page}/followers",
        data={"csrf_token": csrf, "user_id": "", "email": "dana@example.test", "name": "Dana"},
    )
    assert by_email.status_code == 302

    html = html_of(client.get(page))
    assert "Otto Other" in html and "dana@example.test" in html
    assert "Added follower Otto Other" in html  # the history says who was added
    dana = db_session.scalar(select(User).where(User.email == "dana@example.test"))
    assert dana.role is Role.CUSTOMER

    removed = client.post(
        f"{page}/followers/{dana.id}/remove", data={"csrf_token": csrf}, follow_redirects=True
    )
    assert "Follower removed." in html_of(removed)
    assert [u.id for u in followers.followers_of(ticket.id)] == [desk["agent2"].id]


def test_the_workspace_refuses_a_bad_address_at_the_field_keeping_it(client, desk):
    ticket = desk["ticket"]
    web_login(client, desk["agent"])
    page = f"/agent/tickets/{ticket.id}"

    response = client.post(
        f"{page}/followers",
        data={"csrf_token": csrf_token(client, page), "email": "not an address", "name": "X"},
    )

    assert response.status_code == 422
    html = html_of(response)
    assert 'id="ws-follower-email-error"' in html
    assert 'value="not an address"' in html
    assert followers.followers_of(ticket.id) == []


# -- the portal --------------------------------------------------------------------------------


def test_the_requester_adds_a_colleague_who_then_sees_the_ticket_in_their_portal(
    client, db_session, desk
):
    ticket, bob = desk["ticket"], desk["bob"]
    web_login(client, desk["alice"])
    page = f"/portal/tickets/{ticket.id}"
    csrf = csrf_token(client, page)
    assert 'id="no-followers"' in html_of(client.get(page))

    added = client.post(
        f"{page}/followers", data={"csrf_token": csrf, "email": bob.email}, follow_redirects=True
    )
    assert "Bob Builder now follows this ticket." in html_of(added)
    assert f'data-follower-id="{bob.id}"' in html_of(added)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/portal/")})
    web_login(client, bob)
    dashboard = html_of(client.get("/portal/"))
    assert "Printer on fire" in dashboard
    own_page = client.get(page)
    assert own_page.status_code == 200
    assert "Unfollow this ticket" in html_of(own_page)
    assert "is asked to rate the help" in html_of(own_page)  # rating is the requester's
    reply = client.post(
        f"{page}/messages", data={"csrf_token": csrf_token(client, page), "body": "Same here"}
    )
    assert reply.status_code == 302
    assert "Same here" in html_of(client.get(page))


def test_a_colleague_refused_at_the_field_with_the_input_kept(client, desk):
    ticket = desk["ticket"]
    web_login(client, desk["alice"])
    page = f"/portal/tickets/{ticket.id}"

    staff = client.post(
        f"{page}/followers",
        data={"csrf_token": csrf_token(client, page), "email": desk["agent"].email},
    )
    bad = client.post(
        f"{page}/followers",
        data={"csrf_token": csrf_token(client, page), "email": "nope", "name": "Nope"},
    )

    for response, typed in ((staff, desk["agent"].email), (bad, "nope")):
        assert response.status_code == 422
        html = html_of(response)
        assert 'id="follower_email-error"' in html
        assert f'value="{typed}"' in html
    assert followers.followers_of(ticket.id) == []


def test_a_follower_unfollows_and_the_ticket_leaves_their_portal(client, desk):
    ticket, bob = desk["ticket"], desk["bob"]
    followers.do_add_follower(desk["agent"], ticket.id, user_id=bob.id)
    conversation.do_add_message(desk["agent"], ticket.id, "Looking into it")
    web_login(client, bob)
    page = f"/portal/tickets/{ticket.id}"

    response = client.post(
        f"{page}/unfollow", data={"csrf_token": csrf_token(client, page)}, follow_redirects=True
    )

    assert f"You no longer follow ticket #{ticket.id}." in html_of(response)
    assert "Printer on fire" not in html_of(response)
    assert client.get(page).status_code == 404


def test_a_customer_who_does_not_follow_gets_404_on_the_follower_forms(client, factory, desk):
    ticket = desk["ticket"]
    stranger = factory.customer()
    web_login(client, stranger)
    csrf = csrf_token(client, "/portal/profile")
    page = f"/portal/tickets/{ticket.id}"

    add = client.post(f"{page}/followers", data={"csrf_token": csrf, "email": stranger.email})
    leave = client.post(f"{page}/unfollow", data={"csrf_token": csrf})

    assert (add.status_code, leave.status_code) == (404, 404)
    assert followers.followers_of(ticket.id) == []
