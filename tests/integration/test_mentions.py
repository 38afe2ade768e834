"""@mentions in internal notes (``autocrm.tickets.mentions``): the syntax and how a note reads,
who may be mentioned (staff who can see the ticket, only from internal notes), the
``mentioned`` notification through the real worker path (``drain``) and a real SMTP server,
once per person per note, linked to the note; customers never see any of it; the API and the
workspace's suggestions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from autocrm.errors import InvalidInput
from autocrm.events import dispatch as events
from autocrm.events.models import OutboxEvent
from autocrm.notifications import preferences
from autocrm.notifications.models import EmailMessage, Notification
from autocrm.people import teams
from autocrm.people.models import User
from autocrm.tickets import conversation, mentions
from autocrm.tickets.models import Message
from tests.factories import ApiClient, Factory, assert_error, csrf_token, drain, web_login
from tests.integration.test_email_delivery import smtp_mailer
from tests.smtp_server import SmtpServer

BASE_URL = "https://help.example.test"


@pytest.fixture
def smtp(app: Flask, db_session: Any) -> Iterator[SmtpServer]:
    with smtp_mailer(app) as server:
        yield server


@pytest.fixture(autouse=True)
def settings(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "AUTOCRM_BASE_URL", BASE_URL)


@pytest.fixture
def desk(factory: Factory) -> dict[str, Any]:
    """Ada and Alan in the team of Carla's ticket (Ada assigned), Bea in another team, an
    admin, a deactivated agent of the team; what opening the ticket told anyone is drained
    and left behind (``mark``)."""
    team, other = factory.team(), factory.team()
    people: dict[str, Any] = {
        "team": team,
        "ada": factory.agent(team, name="Ada Author"),
        "alan": factory.agent(team, name="Alan Turing", email="alan@example.test"),
        "bea": factory.agent(other, name="Bea Outside"),
        "admin": factory.admin(name="Alma Admin"),
        "gone": factory.agent(team, name="Al Gone", active=False),
        "carla": factory.customer(name="Carla Customer"),
    }
    people["ticket"] = factory.ticket(
        people["carla"], by=people["admin"], team=team, assignee_id=people["ada"].id
    )
    drain(factory.session)
    people["mark"] = (
        factory.session.scalar(select(Notification.id).order_by(Notification.id.desc()).limit(1))
        or 0
    )
    return people


def mention(user: User) -> str:
    return mentions.syntax(user)


def notes_of(session: Any, user: User, after: int = 0) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == user.id, Notification.id > after)
    return list(session.scalars(stmt.order_by(Notification.id)))


def mail_to(smtp: SmtpServer, user: User) -> list[Any]:
    return [m for m in smtp.messages if m["To"] == user.email]


def note(desk: dict[str, Any], body: str, *, by: str = "ada") -> Message:
    return conversation.do_add_message(desk[by], desk["ticket"].id, body, internal=True)


# -- the syntax --------------------------------------------------------------------------------


def test_parse_finds_each_person_once_in_order():
    body = (
        "@[Alan Turing](user:7) and @[Bea](user:3), again @[Alan](user:7); not @[x](user:) nor @Bea"
    )
    assert mentions.parse(body) == [
        mentions.Mention(7, "Alan Turing"),
        mentions.Mention(3, "Bea"),
    ]
    assert mentions.plain(body).startswith("@Alan Turing and @Bea, again @Alan;")


def test_a_note_reads_with_highlighted_names_not_the_syntax():
    html = mentions.render("**Look** @[Alan <b>T</b>](user:7), see `code` \ue0000\ue001")
    assert '<span class="mention" data-user-id="7">@Alan &lt;b&gt;T&lt;/b&gt;</span>' in html
    assert "<strong>Look</strong>" in html and "<code>code</code>" in html
    assert "user:7" not in html and "<b>" not in html
    assert html.count('class="mention"') == 1, "typed placeholder characters are no mention"


def test_the_inserted_text_is_the_syntax_for_any_name(factory: Factory):
    odd = factory.agent(name="Al [the] Pal")
    assert mentions.syntax(odd) == f"@[Al the Pal](user:{odd.id})"
    assert mentions.parse(mentions.syntax(odd)) == [mentions.Mention(odd.id, "Al the Pal")]


def test_an_address_typed_by_hand_mentions_the_colleague_with_it(
    db_session: Any, desk: dict[str, Any]
):
    alan, bea = desk["alan"], desk["bea"]
    message = note(
        desk, "@ALAN@example.test look; ask @someone@elsewhere.test and x@alan@example.test"
    )
    assert message.body == (
        f"{mention(alan)} look; ask @someone@elsewhere.test and x@alan@example.test"
    )
    drain(db_session)
    assert [n.kind for n in notes_of(db_session, alan, desk["mark"])] == ["mentioned"]
    with pytest.raises(InvalidInput, match="Bea Outside can't see this ticket"):
        note(desk, f"@{bea.email} please")
    # A public reply keeps an address as written (mentions are for notes).
    reply = conversation.do_add_message(desk["ada"], desk["ticket"].id, f"Write @{alan.email}")
    assert reply.body == f"Write @{alan.email}"


# -- the notification --------------------------------------------------------------------------


def test_a_mentioned_colleague_is_notified_once_in_app_and_by_email_linked_to_the_note(
    db_session: Any, desk: dict[str, Any], smtp: SmtpServer
):
    alan, ticket = desk["alan"], desk["ticket"]
    message = note(desk, f"{mention(alan)} can you check the logs? {mention(alan)} thanks")
    drain(db_session)

    [notified] = notes_of(db_session, alan, desk["mark"])
    assert notified.kind == "mentioned"
    assert notified.message_id == message.id
    assert notified.title == f"Ada Author mentioned you on [#{ticket.id}] Printer on fire"
    assert "Ada Author wrote in an internal note:" in notified.body
    assert "@Alan Turing can you check the logs? @Alan Turing thanks" in notified.body
    assert "user:" not in notified.body
    [email] = mail_to(smtp, alan)
    assert email["Subject"] == notified.title
    link = f"{BASE_URL}/agent/tickets/{ticket.id}#message-{message.id}"
    assert link in email.get_content()
    # Nobody else heard of the note: not its author, not the customer, not other staff.
    for other in ("ada", "carla", "bea", "admin"):
        assert notes_of(db_session, desk[other], desk["mark"]) == [], other
        assert mail_to(smtp, desk[other]) == [], other


def test_a_redelivered_note_notifies_nobody_twice(
    db_session: Any, desk: dict[str, Any], smtp: SmtpServer
):
    note(desk, f"{mention(desk['alan'])} and {mention(desk['admin'])}, please look")
    drain(db_session)
    handled = list(
        db_session.scalars(
            select(OutboxEvent.id).where(
                OutboxEvent.ticket_id == desk["ticket"].id, OutboxEvent.kind == "message.created"
            )
        )
    )
    db_session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_(handled)).values(processed_at=None)
    )
    db_session.commit()
    drain(db_session)
    assert events.do_handle_event(handled[0]) is False

    for who in ("alan", "admin"):
        assert [n.kind for n in notes_of(db_session, desk[who], desk["mark"])] == ["mentioned"]
        assert len(mail_to(smtp, desk[who])) == 1


def test_mentioning_oneself_notifies_nobody(db_session: Any, desk: dict[str, Any]):
    note(desk, f"Reminder to {mention(desk['ada'])}: call back")
    drain(db_session)
    assert notes_of(db_session, desk["ada"], desk["mark"]) == []


def test_email_off_for_mentions_keeps_the_in_app_notification(
    db_session: Any, desk: dict[str, Any], smtp: SmtpServer
):
    preferences.do_set_email_preferences(desk["alan"], {"mentioned": False})
    note(desk, f"{mention(desk['alan'])} FYI")
    drain(db_session)
    assert [n.kind for n in notes_of(db_session, desk["alan"], desk["mark"])] == ["mentioned"]
    assert mail_to(smtp, desk["alan"]) == []
    to_alan = select(EmailMessage).where(EmailMessage.to_address == desk["alan"].email)
    assert db_session.scalars(to_alan).all() == []


def test_someone_who_lost_sight_of_the_ticket_before_delivery_is_not_told(
    db_session: Any, desk: dict[str, Any]
):
    note(desk, f"{mention(desk['alan'])} please look")
    teams.do_remove_member(desk["admin"], desk["team"].id, desk["alan"].id)
    drain(db_session)
    assert notes_of(db_session, desk["alan"], desk["mark"]) == []


# -- who may be mentioned ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "says"),
    [
        ("bea", "Bea Outside can't see this ticket — not notified."),
        ("carla", "@Carla Customer is not a colleague who can be mentioned."),
        ("gone", "Al Gone's account is deactivated"),
    ],
)
def test_a_note_mentioning_someone_who_may_not_read_it_is_refused(
    db_session: Any, desk: dict[str, Any], who: str, says: str
):
    before = db_session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1))
    with pytest.raises(InvalidInput) as refused:
        note(desk, f"{mention(desk['alan'])} and {mention(desk[who])}")
    assert says in refused.value.message
    assert list(refused.value.errors) == ["body"]
    assert db_session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) == before
    drain(db_session)
    assert notes_of(db_session, desk["alan"], desk["mark"]) == []
    assert notes_of(db_session, desk[who], desk["mark"]) == []


def test_an_unknown_or_huge_user_id_is_refused_not_an_error(desk: dict[str, Any]):
    for user_id in (999_999, 2**40):
        with pytest.raises(InvalidInput, match="not a colleague"):
            note(desk, f"@[Nobody](user:{user_id})")


def test_a_public_reply_by_staff_may_not_mention(db_session: Any, desk: dict[str, Any]):
    with pytest.raises(InvalidInput, match="internal notes only"):
        conversation.do_add_message(
            desk["ada"], desk["ticket"].id, f"Hi, {mention(desk['alan'])} will call"
        )


def test_a_customer_writing_the_syntax_mentions_nobody(db_session: Any, desk: dict[str, Any]):
    message = conversation.do_add_message(
        desk["carla"], desk["ticket"].id, f"Ask {mention(desk['alan'])}"
    )
    drain(db_session)
    assert message.body == f"Ask {mention(desk['alan'])}"
    assert notes_of(db_session, desk["alan"], desk["mark"]) == []


# -- customers never see it --------------------------------------------------------------------


def test_customers_see_neither_the_note_nor_the_mention(
    client: Any, db_session: Any, desk: dict[str, Any]
):
    message = note(desk, f"{mention(desk['alan'])} secret plan")
    drain(db_session)
    carla = ApiClient(client, desk["carla"])
    items = carla.get(f"/api/tickets/{desk['ticket'].id}/messages").json["items"]
    assert message.id not in [m["id"] for m in items]
    kinds = [n["kind"] for n in carla.get("/api/notifications").json["items"]]
    assert "mentioned" not in kinds
    url = f"/api/tickets/{desk['ticket'].id}/mentionable"
    assert_error(carla.get(url), 403)


# -- the API -----------------------------------------------------------------------------------


def test_mentionable_lists_active_staff_who_see_the_ticket(client: Any, desk: dict[str, Any]):
    ada = ApiClient(client, desk["ada"])
    url = f"/api/tickets/{desk['ticket'].id}/mentionable"
    everyone = ada.get(url)
    assert everyone.status_code == 200
    assert [p["name"] for p in everyone.json] == ["Alan Turing", "Alma Admin"]
    [alan] = ada.get(url, query_string={"q": "al"}).json[:1]
    assert alan == {
        "id": desk["alan"].id,
        "name": "Alan Turing",
        "email": "alan@example.test",
        "role": "agent",
        "mention": f"@[Alan Turing](user:{desk['alan'].id})",
    }
    assert [p["name"] for p in ada.get(url, query_string={"q": "TUR"}).json] == ["Alan Turing"]
    assert ada.get(url, query_string={"q": "%"}).json == []
    assert_error(ada.get(url, query_string={"q": "x" * 101}), 422)
    assert_error(ada.get(url, query_string={"q": "a\x00b"}), 422)
    assert_error(ada.get(url, query_string={"nope": "1"}), 422)
    assert_error(ApiClient(client, desk["bea"]).get(url), 404)
    assert_error(ada.get("/api/tickets/999999/mentionable"), 404)


def test_the_message_api_takes_mentions_and_renders_them(
    client: Any, db_session: Any, desk: dict[str, Any]
):
    ada = ApiClient(client, desk["ada"])
    url = f"/api/tickets/{desk['ticket'].id}/messages"
    created = ada.post(url, json={"body": f"{mention(desk['alan'])} look", "internal": True})
    assert created.status_code == 201, created.json
    assert (
        f'<span class="mention" data-user-id="{desk["alan"].id}">@Alan Turing</span>'
        in (created.json["body_html"])
    )
    refused = assert_error(
        ada.post(url, json={"body": f"{mention(desk['bea'])} look", "internal": True}), 422
    )
    assert refused["errors"] == {
        "body": [
            "Bea Outside can't see this ticket — not notified. "
            "Remove the mention, or move the ticket to a team they are in."
        ]
    }
    drain(db_session)
    alan = ApiClient(client, desk["alan"])
    [notified] = [
        n for n in alan.get("/api/notifications").json["items"] if n["kind"] == "mentioned"
    ]
    assert notified["message_id"] == created.json["id"]
    assert notified["ticket_id"] == desk["ticket"].id
    assert alan.get("/api/users/me/notification-preferences").json["mentioned"] is True


# -- the pages ---------------------------------------------------------------------------------


def test_the_workspace_suggests_colleagues_and_shows_the_name(
    client: Any, db_session: Any, desk: dict[str, Any]
):
    message = note(desk, f"{mention(desk['alan'])} over to you")
    web_login(client, desk["ada"])
    page = client.get(f"/agent/tickets/{desk['ticket'].id}").get_data(as_text=True)
    assert 'class="mention"' in page and "@Alan Turing" in page
    assert f"(user:{desk['alan'].id})" not in page.split('id="ws-body"')[0]
    assert f'id="message-{message.id}"' in page
    found = client.get(f"/agent/tickets/{desk['ticket'].id}/mentionable.json?q=tur").json
    assert found["items"] == [
        {
            "id": desk["alan"].id,
            "name": "Alan Turing",
            "email": "alan@example.test",
            "mention": mention(desk["alan"]),
        }
    ]
    too_long = client.get(f"/agent/tickets/{desk['ticket'].id}/mentionable.json?q={'x' * 101}")
    assert too_long.status_code == 422 and too_long.json["ok"] is False


def test_the_notification_opens_the_ticket_at_the_note(
    client: Any, db_session: Any, desk: dict[str, Any]
):
    message = note(desk, f"{mention(desk['alan'])} over to you")
    drain(db_session)
    [notified] = notes_of(db_session, desk["alan"], desk["mark"])
    web_login(client, desk["alan"])
    token = csrf_token(client, "/notifications")
    opened = client.post(
        f"/notifications/tickets/{desk['ticket'].id}/open",
        data={"csrf_token": token, "up_to": str(notified.id)},
    )
    assert opened.status_code == 303
    assert opened.headers["Location"].endswith(
        f"/agent/tickets/{desk['ticket'].id}#message-{message.id}"
    )
    assert db_session.get(Notification, notified.id).read_at is not None


# -- live --------------------------------------------------------------------------------------


def test_a_note_sent_over_the_socket_reaches_the_colleagues_socket(
    connect: Any, db_session: Any, desk: dict[str, Any]
):
    author, alan, carla = connect(desk["ada"]), connect(desk["alan"]), connect(desk["carla"])
    ticket_id = desk["ticket"].id
    refused = author.emit(
        "send_message", {"ticket_id": ticket_id, "body": mention(desk["bea"]), "internal": True}
    )
    assert refused["ok"] is False
    assert refused["error"].startswith("Bea Outside can't see this ticket — not notified.")

    body = f"{mention(desk['alan'])} over to you"
    sent = author.emit("send_message", {"ticket_id": ticket_id, "body": body, "internal": True})
    assert sent["ok"] is True, sent
    assert 'class="mention"' in sent["message"]["body_html"]
    drain(db_session)

    [payload] = alan.received("notification")
    assert payload["kind"] == "mentioned"
    assert payload["message_id"] == sent["message"]["id"]
    assert payload["ticket_id"] == ticket_id
    assert author.received("notification") == []
    assert carla.received("notification") == []
