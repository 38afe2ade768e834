"""Every way mail arrives gives the same result (issue 14): the whole corpus delivered by IMAP
polling (a real Dovecot), by the MTA pipe (``flask mail-in``) and by the provider's webhook
becomes the same tickets, the same ignored and the same failed mail. Also: polling moves each
message only once it is stored, "test connection" shows the server's answer, and the pipe's
exit codes are what an MTA understands."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from autocrm.files.models import Attachment
from autocrm.mail import mailboxes, polling
from autocrm.mail.models import InboundEmail, Mailbox
from autocrm.tickets.models import Message, Ticket
from tests.imap_server import DovecotServer
from tests.mail_messages import build_message, corpus_names, load

Outcome = tuple[str, str, str, tuple[str, ...]]


@pytest.fixture(autouse=True)
def generous_limits(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus is delivered three times by few senders: not a flood."""
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_SENDER_HOURLY_LIMIT", 1000)


def mailbox(admin: Any, name: str, **fields: Any) -> tuple[Mailbox, str]:
    return mailboxes.do_create_mailbox(
        admin, {"name": name, "address": f"{name}@acme.test", **fields}
    )


def imap_mailbox(
    admin: Any, name: str, account: tuple[DovecotServer, str, str], **fields: Any
) -> Mailbox:
    """A mailbox polling the test account over STARTTLS (``fields`` override)."""
    server, address, password = account
    settings = {
        "imap_host": "localhost",
        "imap_port": server.port,
        "imap_security": "starttls",
        "imap_username": address,
        "imap_password": password,
    }
    return mailbox(admin, name, **{**settings, **fields})[0]


def outcome(db_session: Any, inbound: InboundEmail) -> Outcome:
    """What an email became, independent of the door: its status, and the subject, text and
    file names of the ticket change it made."""
    if inbound.ticket_id is None:
        return (inbound.status.value, inbound.subject, inbound.reason.split(":")[0], ())
    ticket = db_session.get(Ticket, inbound.ticket_id)
    message = db_session.scalar(select(Message).where(Message.inbound_email_id == inbound.id))
    text = message.body if message else ticket.description
    files = db_session.scalars(
        select(Attachment.filename).where(
            Attachment.ticket_id == ticket.id,
            Attachment.message_id == (message.id if message else None),
        )
    ).all()
    return (inbound.status.value, ticket.subject, text, tuple(sorted(files)))


def outcomes(db_session: Any, box: Mailbox) -> dict[str, Outcome]:
    rows = db_session.scalars(select(InboundEmail).where(InboundEmail.mailbox_id == box.id))
    return {row.message_key: outcome(db_session, row) for row in rows}


def poll_until_empty(box: Mailbox) -> None:
    for _ in range(10):
        if polling.poll_mailbox(box.id, limit=50) == 0:
            return
    raise AssertionError("the mailbox did not empty")


def test_imap_the_pipe_and_the_webhook_give_the_same_results_for_the_corpus(
    app: Flask,
    client: Any,
    db_session: Any,
    factory: Any,
    imap_account: tuple[DovecotServer, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, address, _ = imap_account
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_CA_FILE", str(server.ca_file))
    admin = factory.admin()
    by_imap = imap_mailbox(admin, "byimap", imap_account)
    by_pipe, _ = mailbox(admin, "bypipe")
    by_webhook, secret = mailbox(admin, "bywebhook")
    corpus = [load(name) for name in corpus_names()]

    for raw in corpus:
        server.append(address, raw)
        piped = app.test_cli_runner().invoke(args=["mail-in", "--mailbox", "bypipe"], input=raw)
        assert piped.exit_code == 0, piped.output
        posted = client.post(
            "/api/inbound/email/bywebhook",
            data=raw,
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "message/rfc822"},
        )
        assert posted.status_code == 202, posted.get_json()
    poll_until_empty(by_imap)

    piped = outcomes(db_session, by_pipe)
    assert len(piped) == len(corpus)
    assert outcomes(db_session, by_webhook) == piped
    # IMAP cannot carry NUL bytes (Dovecot stores them as 0x80): the two corpus messages that
    # hold one are compared by what became of them; every other one must be the same.
    with_nul = [raw for raw in corpus if b"\x00" in raw]
    assert len(with_nul) == 2
    polled = outcomes(db_session, by_imap)
    assert sorted(r[0] for r in polled.values()) == sorted(r[0] for r in piped.values())
    same = {key: result for key, result in piped.items() if key in polled}
    assert len(same) == len(corpus) - 1  # the NUL-bearing garbage has no Message-ID
    differing = {key for key in same if polled[key] != piped[key]}
    assert differing <= {"wrong.charset.2@example.es"}  # wrong_charset_latin1_as_utf8.eml
    assert {"processed", "ignored", "failed"} <= {result[0] for result in piped.values()}
    assert server.list_messages(address, "INBOX") == []
    assert len(server.list_messages(address, "Processed")) == len(corpus)


def test_a_message_stays_on_the_server_until_its_change_is_stored(
    app: Flask,
    db_session: Any,
    factory: Any,
    imap_account: tuple[DovecotServer, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, address, _ = imap_account
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_CA_FILE", str(server.ca_file))
    box = imap_mailbox(factory.admin(), "polled", imap_account, imap_processed_folder="")
    raw = build_message("dana@example.org", address, "Polled", "Hello.", message_id="p1@x.test")
    server.append(address, raw)

    # The storage cannot take the raw bytes: nothing is stored, so nothing leaves the server.
    monkeypatch.setattr("autocrm.mail.receive._store_raw", broken_storage)
    with pytest.raises(OSError):
        polling.poll_mailbox(box.id)
    assert server.list_messages(address, "INBOX") == [raw]

    monkeypatch.undo()
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_CA_FILE", str(server.ca_file))
    assert polling.poll_mailbox(box.id) == 1
    assert server.list_messages(address, "INBOX") == []  # deleted: no processed folder
    assert db_session.scalar(select(Ticket.id).where(Ticket.subject == "Polled")) is not None


def broken_storage(raw: bytes) -> str:
    raise OSError("disk full")


def test_a_poll_that_cannot_log_in_is_recorded_for_the_admin(
    app: Flask,
    db_session: Any,
    factory: Any,
    imap_account: tuple[DovecotServer, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = imap_account[0]
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_CA_FILE", str(server.ca_file))
    admin = factory.admin()
    box = imap_mailbox(admin, "wrongpw", imap_account, imap_password="not the password")

    assert polling.poll_mailbox(box.id) == 0

    db_session.refresh(box)
    assert "AUTHENTICATIONFAILED" in (box.last_poll_error or "")
    ok, answer = mailboxes.test_connection(admin, box.id, str(server.ca_file))
    assert not ok and "AUTHENTICATIONFAILED" in answer
    mailboxes.do_update_mailbox(admin, box.id, {"imap_password": imap_account[2]})
    ok, answer = mailboxes.test_connection(admin, box.id, str(server.ca_file))
    assert ok and "INBOX" in answer


def test_beat_asks_for_a_poll_once_per_interval(
    app: Flask, db_session: Any, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "AUTOCRM_MAIL_POLL_INTERVAL", 3600)
    admin = factory.admin()
    polled, _ = mailbox(
        admin, "imapbox", imap_host="imap.acme.test", imap_username="u", imap_password="p"
    )
    mailbox(admin, "pipedbox")

    assert polling.do_request_polls() == [polled.id]
    assert polling.do_request_polls() == []


def test_the_pipe_refuses_an_unknown_mailbox_so_the_mta_bounces_it(app: Flask, db_session: Any):
    raw = build_message("dana@example.org", "x@acme.test", "Lost", "Hello.")

    result = app.test_cli_runner().invoke(args=["mail-in", "--mailbox", "nobody"], input=raw)

    assert result.exit_code == 67
