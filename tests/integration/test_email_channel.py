"""The email channel (issue 14) through ``do_receive_email`` and the real delivery path: a
new email opens a ticket in its mailbox's team, replies thread both ways (by Message-ID, a
signed reply address, a subject token from a participant), noise and loops never become
tickets, the same message twice is one change, and what cannot be handled is kept for admins.
Outgoing email is captured by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from email.message import EmailMessage as MimeMessage
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from autocrm.files import services as files
from autocrm.files.models import Attachment
from autocrm.mail import mailboxes, receive
from autocrm.mail.models import InboundEmail, InboundStatus, Mailbox
from autocrm.people.models import Role, User
from autocrm.security import hash_password
from autocrm.tickets import conversation, followers
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message, Ticket
from tests.factories import PASSWORD, drain, web_login
from tests.files_data import png
from tests.integration.test_email_delivery import smtp_mailer
from tests.mail_messages import big_message, build_message
from tests.smtp_server import SmtpServer

SUPPORT = "support@acme.test"


@pytest.fixture
def smtp(app: Flask, db_session: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """Customer emails go at once (no digest window) to a real SMTP server."""
    monkeypatch.setitem(app.config, "AUTOCRM_CUSTOMER_EMAIL_WINDOW", 0)
    with smtp_mailer(app) as server:
        yield server


@pytest.fixture
def desk(factory: Any) -> dict[str, Any]:
    team = factory.team()
    agent = factory.agent(team, name="Alex Agent")
    admin = factory.admin()
    mailbox, _ = mailboxes.do_create_mailbox(
        admin, {"name": "support", "address": SUPPORT, "team_id": team.id}
    )
    return {"team": team, "agent": agent, "admin": admin, "mailbox": mailbox}


def receive_mail(mailbox: Mailbox, raw: bytes, via: str = "pipe") -> InboundEmail:
    return receive.do_receive_email(mailbox, raw, via=via)


def user(address: str) -> User | None:
    from autocrm.extensions import db

    return db.session.scalar(select(User).where(User.email == address))


def messages_of(db_session: Any, ticket_id: int) -> list[Message]:
    return list(
        db_session.scalars(
            select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)
        )
    )


def reply_from(agent: User, ticket_id: int, text: str, db_session: Any) -> None:
    conversation.do_add_message(agent, ticket_id, text)
    drain(db_session)


def only(messages: list[MimeMessage]) -> MimeMessage:
    assert len(messages) == 1, [m["Subject"] for m in messages]
    return messages[0]


# -- a new email -------------------------------------------------------------------------------


def test_a_new_email_opens_a_ticket_in_the_mailboxs_team_for_a_new_customer(desk, db_session):
    raw = build_message(
        "Dana Customer <dana@example.org>",
        SUPPORT,
        "Printer on fire",
        "Hello,\n\nmy printer is on fire.\n\nDana",
        message_id="first@example.org",
        attachments=[("photo.png", "image/png", PNG)],
    )

    inbound = receive_mail(desk["mailbox"], raw)

    assert inbound.status is InboundStatus.PROCESSED
    ticket = db_session.get(Ticket, inbound.ticket_id)
    assert ticket.subject == "Printer on fire"
    assert ticket.channel == "email"
    assert ticket.team_id == desk["team"].id
    assert ticket.mailbox_id == desk["mailbox"].id
    assert "my printer is on fire" in ticket.description
    requester = user("dana@example.org")
    assert requester is not None and requester.role is Role.CUSTOMER
    assert requester.name == "Dana Customer"
    assert ticket.requester_id == requester.id
    [photo] = db_session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert (photo.filename, photo.content_type, photo.size) == ("photo.png", "image/png", len(PNG))


def test_addresses_in_cc_become_followers_but_not_our_own_mailbox(desk, db_session):
    raw = build_message(
        "dana@example.org",
        SUPPORT,
        "Invoice question",
        "See the attached invoice.",
        cc=["Bo Colleague <bo@example.org>", SUPPORT],
    )

    ticket_id = receive_mail(desk["mailbox"], raw).ticket_id

    assert [u.email for u in followers.followers_of(ticket_id)] == ["bo@example.org"]


def test_a_denied_attachment_is_left_out_and_named_and_the_original_keeps_it(desk, db_session):
    raw = build_message(
        "dana@example.org",
        SUPPORT,
        "Setup",
        "Run this.",
        attachments=[("setup.exe", "application/octet-stream", b"MZ" + b"\x00" * 200)],
    )

    inbound = receive_mail(desk["mailbox"], raw)

    ticket = db_session.get(Ticket, inbound.ticket_id)
    assert "setup.exe" in ticket.description and "Not attached" in ticket.description
    assert (
        db_session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all() == []
    )
    assert receive.read_raw(inbound) == raw


# -- replies, both ways --------------------------------------------------------------------------


def test_the_agents_reply_goes_out_from_the_mailbox_threaded_and_the_answer_lands_on_the_ticket(
    desk, db_session, smtp
):
    first = build_message(
        "dana@example.org", SUPPORT, "Printer on fire", "Help!", message_id="first@example.org"
    )
    ticket_id = receive_mail(desk["mailbox"], first).ticket_id
    drain(db_session)

    reply_from(desk["agent"], ticket_id, "Unplug it, please.", db_session)

    sent = only(smtp.to("dana@example.org"))
    assert SUPPORT in sent["From"]
    assert SUPPORT in sent["Reply-To"]
    assert sent["In-Reply-To"] == "<first@example.org>"
    assert "<first@example.org>" in sent["References"]
    assert f"[#{ticket_id}]" in sent["Subject"] and "Printer on fire" in sent["Subject"]
    assert sent["Auto-Submitted"] == "auto-generated"
    assert "Unplug it, please." in sent.get_content()
    assert f"/portal/tickets/{ticket_id}" in sent.get_content()

    answer = build_message(
        "dana@example.org",
        SUPPORT,
        "Re: " + sent["Subject"],
        "Done, thanks.\n\nOn Monday Alex Agent wrote:\n> Unplug it, please.",
        message_id="second@example.org",
        in_reply_to=sent["Message-ID"].strip("<>"),
        references=["first@example.org", sent["Message-ID"].strip("<>")],
    )
    inbound = receive_mail(desk["mailbox"], answer)

    assert inbound.ticket_id == ticket_id
    last = messages_of(db_session, ticket_id)[-1]
    assert last.body == "Done, thanks."
    assert last.channel == "email" and last.inbound_email_id == inbound.id
    assert last.author.email == "dana@example.org"


def test_the_second_reply_answers_the_thread_as_the_customer_saw_it(desk, db_session, smtp):
    first = build_message("dana@example.org", SUPPORT, "Hi", "One", message_id="a1@example.org")
    ticket_id = receive_mail(desk["mailbox"], first).ticket_id
    drain(db_session)
    reply_from(desk["agent"], ticket_id, "First answer.", db_session)
    first_sent = only(smtp.to("dana@example.org"))
    answer = build_message(
        "dana@example.org",
        SUPPORT,
        "Re: Hi",
        "Two",
        message_id="a2@example.org",
        in_reply_to=first_sent["Message-ID"].strip("<>"),
    )
    receive_mail(desk["mailbox"], answer)
    drain(db_session)

    reply_from(desk["agent"], ticket_id, "Second answer.", db_session)

    second_sent = smtp.to("dana@example.org")[-1]
    assert second_sent["In-Reply-To"] == "<a2@example.org>"
    assert second_sent["References"].split() == [
        "<a1@example.org>",
        first_sent["Message-ID"],
        "<a2@example.org>",
    ]


def test_a_signed_reply_address_threads_when_the_mailbox_uses_sub_addresses(desk, db_session, smtp):
    mailboxes.do_update_mailbox(desk["admin"], desk["mailbox"].id, {"plus_addressing": True})
    ticket_id = receive_mail(
        desk["mailbox"], build_message("dana@example.org", SUPPORT, "Hi", "One")
    ).ticket_id
    drain(db_session)
    reply_from(desk["agent"], ticket_id, "Answer.", db_session)
    reply_to = only(smtp.to("dana@example.org"))["Reply-To"]
    assert reply_to.startswith(f"support+t{ticket_id}-")

    # A client that drops the threading headers and rewrites the subject still reaches it.
    answer = build_message("dana@example.org", reply_to, "my answer", "Two")
    assert receive_mail(desk["mailbox"], answer).ticket_id == ticket_id

    forged = build_message(
        "dana@example.org", f"support+t{ticket_id}-0000000000000000@acme.test", "x", "Three"
    )
    assert receive_mail(desk["mailbox"], forged).ticket_id != ticket_id


def test_a_subject_token_threads_only_for_the_requester_or_a_follower(desk, db_session):
    first = build_message("dana@example.org", SUPPORT, "Hi", "One", cc=["bo@example.org"])
    ticket_id = receive_mail(desk["mailbox"], first).ticket_id

    by_follower = build_message("bo@example.org", SUPPORT, f"Re: [#{ticket_id}] Hi", "From Bo")
    by_stranger = build_message("eve@example.net", SUPPORT, f"Re: [#{ticket_id}] Hi", "From Eve")

    assert receive_mail(desk["mailbox"], by_follower).ticket_id == ticket_id
    stranger_ticket = receive_mail(desk["mailbox"], by_stranger).ticket_id
    assert stranger_ticket != ticket_id
    assert db_session.get(Ticket, stranger_ticket).requester.email == "eve@example.net"


def test_a_reply_to_a_closed_ticket_opens_a_new_one(desk, db_session):
    first = build_message("dana@example.org", SUPPORT, "Hi", "One", message_id="c1@example.org")
    ticket_id = receive_mail(desk["mailbox"], first).ticket_id
    admin = desk["admin"]
    for name in ("start", "solve", "close"):
        tickets.do_transition(admin, ticket_id, name)
    answer = build_message(
        "dana@example.org", SUPPORT, "Re: Hi", "Again", in_reply_to="c1@example.org"
    )

    assert receive_mail(desk["mailbox"], answer).ticket_id != ticket_id


def test_a_customer_reply_by_email_reopens_a_ticket_waiting_on_them(desk, db_session):
    first = build_message("dana@example.org", SUPPORT, "Hi", "One", message_id="w1@example.org")
    ticket_id = receive_mail(desk["mailbox"], first).ticket_id
    drain(db_session)
    for name in ("start", "wait_on_customer"):
        tickets.do_transition(desk["agent"], ticket_id, name)
    drain(db_session)
    assert db_session.get(Ticket, ticket_id).category == "pending"

    answer = build_message(
        "dana@example.org", SUPPORT, "Re: Hi", "Here", in_reply_to="w1@example.org"
    )
    receive_mail(desk["mailbox"], answer)
    drain(db_session)

    db_session.expire_all()
    assert db_session.get(Ticket, ticket_id).category == "open"


# -- noise, loops and duplicates ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X-Autoreply": "yes"},
        {"List-Id": "<news.example.org>"},
    ],
)
def test_auto_replies_and_bulk_mail_never_become_tickets(desk, db_session, headers):
    raw = build_message("dana@example.org", SUPPORT, "Out of office", "Away.", headers=headers)

    inbound = receive_mail(desk["mailbox"], raw)

    assert inbound.status is InboundStatus.IGNORED and inbound.ticket_id is None
    assert db_session.scalar(select(Ticket).where(Ticket.subject == "Out of office")) is None


def test_mail_from_our_own_mailbox_is_a_loop_and_ignored(desk, db_session):
    raw = build_message(SUPPORT, SUPPORT, "Looping", "Round and round.")

    assert receive_mail(desk["mailbox"], raw).status is InboundStatus.IGNORED


def test_a_bounce_marks_the_address_and_we_stop_writing_to_it(desk, db_session, smtp, factory):
    customer = factory.customer(email="gone@example.org")
    bounce = bounce_for("gone@example.org")

    inbound = receive_mail(desk["mailbox"], bounce)

    assert inbound.status is InboundStatus.IGNORED
    db_session.refresh(customer)
    assert customer.email_bounced_at is not None
    ticket = factory.ticket(customer, team=desk["team"])
    reply_from(desk["agent"], ticket.id, "Hello?", db_session)
    smtp_marker = factory.customer(email="marker@example.org")
    reply_from(desk["agent"], factory.ticket(smtp_marker, team=desk["team"]).id, "Hi", db_session)
    assert smtp.to("marker@example.org")
    assert smtp.to("gone@example.org") == []


def test_the_same_message_twice_is_one_change(desk, db_session):
    raw = build_message("dana@example.org", SUPPORT, "Twice", "Once.", message_id="dup@example.org")

    first = receive_mail(desk["mailbox"], raw, via="imap")
    again = receive_mail(desk["mailbox"], raw, via="pipe")
    same_id_other_bytes = receive_mail(
        desk["mailbox"],
        build_message("dana@example.org", SUPPORT, "Twice", "Once!", message_id="dup@example.org"),
    )

    assert again.id == first.id == same_id_other_bytes.id
    assert len(db_session.scalars(select(Ticket).where(Ticket.subject == "Twice")).all()) == 1


def test_a_message_without_message_id_is_recognized_by_its_bytes(desk, db_session):
    with_id = build_message("dana@example.org", SUPPORT, "No id", "Body.")
    raw = re.sub(rb"(?im)^Message-ID:.*\r?\n", b"", with_id)
    assert b"Message-ID" not in raw

    assert receive_mail(desk["mailbox"], raw).id == receive_mail(desk["mailbox"], raw).id


# -- nothing is lost ------------------------------------------------------------------------------


def test_mail_that_cannot_be_read_is_kept_with_its_bytes_and_can_be_discarded(desk, db_session):
    junk = b"\x00\x01 this is not an email at all"

    inbound = receive_mail(desk["mailbox"], junk)

    assert inbound.status is InboundStatus.FAILED and inbound.reason
    assert receive.read_raw(inbound) == junk
    mailboxes.do_discard_inbound(desk["admin"], inbound.id)
    assert db_session.get(InboundEmail, inbound.id).status is InboundStatus.DISCARDED


def test_too_large_mail_is_kept_as_failed(desk, db_session, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_MAX_BYTES", 1000)
    raw = build_message("dana@example.org", SUPPORT, "Big", "x" * 2000)

    inbound = receive_mail(desk["mailbox"], raw)

    assert inbound.status is InboundStatus.FAILED and "Too large" in inbound.reason


def test_a_flooding_sender_waits_for_an_admin_who_can_retry(desk, db_session, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_SENDER_HOURLY_LIMIT", 2)
    results = [
        receive_mail(desk["mailbox"], build_message("dana@example.org", SUPPORT, f"n{i}", "x"))
        for i in range(3)
    ]

    assert [r.status for r in results[:2]] == [InboundStatus.PROCESSED] * 2
    held = results[2]
    assert held.status is InboundStatus.FAILED and "in the last hour" in held.reason

    retried = mailboxes.do_retry_inbound(desk["admin"], held.id)
    assert retried.status is InboundStatus.PROCESSED and retried.ticket_id is not None


def test_mail_from_a_deactivated_customer_is_held(desk, db_session, factory):
    factory.customer(email="blocked@example.org", active=False)

    inbound = receive_mail(desk["mailbox"], build_message("blocked@example.org", SUPPORT, "x", "y"))

    assert inbound.status is InboundStatus.FAILED and "blocked" in inbound.reason


def test_staff_open_the_full_original_and_customers_cannot(desk, db_session, factory):
    raw = build_message(
        "dana@example.org",
        SUPPORT,
        "Quoted",
        "New words.\n\nOn Mon, Dana wrote:\n> old words",
    )
    inbound = receive_mail(desk["mailbox"], raw)

    assert receive.access_original(desk["agent"], inbound.id).id == inbound.id
    with pytest.raises(Exception) as refused:
        receive.access_original(user("dana@example.org"), inbound.id)
    assert refused.typename == "NotFound"


PNG = png()


def bounce_for(address: str) -> bytes:
    """A delivery status notification as MAILER-DAEMON sends it (RFC 3464)."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1--\r\n"
    ).encode()


def test_the_workspace_shows_the_email_as_written_and_links_its_original(desk, db_session, client):
    raw = build_message(
        "dana@example.org",
        SUPPORT,
        "Lines",
        "First line\nsecond line of the *same* paragraph\n\nOn Mon, Dana wrote:\n> older text",
    )
    inbound = receive_mail(desk["mailbox"], raw)
    web_login(client, desk["agent"])

    page = client.get(f"/agent/tickets/{inbound.ticket_id}").get_data(as_text=True)

    assert "First line<br>\nsecond line of the *same* paragraph" in page
    assert f'href="/agent/emails/{inbound.id}"' in page
    assert "older text" not in page
    original = client.get(f"/agent/emails/{inbound.id}")
    assert original.status_code == 200 and "older text" in original.get_data(as_text=True)
    raw_download = client.get(f"/agent/emails/{inbound.id}/raw")
    assert raw_download.data == raw and raw_download.headers["X-Content-Type-Options"] == "nosniff"


def test_customers_cannot_open_an_emails_original(desk, db_session, client):
    inbound = receive_mail(desk["mailbox"], build_message("dana@example.org", SUPPORT, "x", "y"))
    customer = user("dana@example.org")
    customer.email_verified_at = customer.created_at  # as if they had set a password by link
    customer.password_hash = hash_password(PASSWORD)
    db_session.commit()
    web_login(client, customer)

    refused = client.get(f"/agent/emails/{inbound.id}")
    assert refused.status_code == 302 and "/agent/" not in refused.location  # sent to the portal
    assert client.get(f"/agent/emails/{inbound.id}/raw").status_code == 302


def test_a_25_mb_email_becomes_a_ticket_with_its_file(desk, db_session):
    raw = big_message(25, sender="big.sender@example.org")
    assert len(raw) > 25 * 10**6

    inbound = receive_mail(desk["mailbox"], raw)  # addressed to support@acme.test

    assert inbound.status is InboundStatus.PROCESSED
    [logs] = db_session.scalars(
        select(Attachment).where(Attachment.ticket_id == inbound.ticket_id)
    ).all()
    assert logs.filename == "logs.bin" and logs.size == 25 * 1024 * 1024 * 3 // 4


def test_the_agents_files_go_with_the_reply_email_once(desk, db_session, smtp):
    first = build_message("dana@example.org", SUPPORT, "Screen", "What now?")
    ticket_id = receive_mail(desk["mailbox"], first).ticket_id
    drain(db_session)
    [upload] = files.do_upload(desk["agent"], [files.Upload("steps.png", io.BytesIO(PNG))])

    conversation.do_add_message(
        desk["agent"], ticket_id, "See the picture.", attachment_ids=[upload.id]
    )
    drain(db_session)
    reply_from(desk["agent"], ticket_id, "Anything else?", db_session)

    with_file, without = smtp.to("dana@example.org")[:2]
    [part] = list(with_file.iter_attachments())
    assert part.get_filename() == "steps.png" and part.get_content() == PNG
    assert list(without.iter_attachments()) == []


def test_a_sender_address_we_cannot_answer_is_kept_with_the_reason(desk, db_session):
    raw = build_message("Nobody <nobody-at-nowhere>", SUPPORT, "Odd sender", "Hi.")

    inbound = receive_mail(desk["mailbox"], raw)

    assert inbound.status is InboundStatus.FAILED
    assert "address" in inbound.reason.lower()
    assert receive.read_raw(inbound) == raw
