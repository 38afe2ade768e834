"""The email channel end to end, with real processes and servers (issue 14): a customer's email
lands in a real IMAP server (Dovecot), beat and a Celery worker poll it into a ticket, the
agent's reply goes out through a real SMTP server (aiosmtpd) with the threading headers, the
customer's answer built from those headers lands on the same ticket and reaches the agent's
open workspace live (Socket.IO on a web process), and an out-of-office reply to our email
creates nothing. Data is committed for real and deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.mail import mailboxes
from autocrm.mail.models import InboundEmail, InboundStatus
from autocrm.people.models import AssignmentPolicy, User
from autocrm.security import issue_token
from autocrm.tickets import conversation
from autocrm.tickets.models import Message, Ticket
from tests import imap_server, processes
from tests.e2e import servers
from tests.mail_messages import build_message
from tests.smtp_server import SmtpServer

SUPPORT = "support@example.test"
IMAP_PASSWORD = "dovecot secret 7"
CUSTOMER = "dana@customer.example"
POLL_INTERVAL_S = 1


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("email-e2e")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Any]:
    with imap_server.running(users={SUPPORT: IMAP_PASSWORD}) as server:
        yield server


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def child_env(
    database_url: str, redis_url: str, app: Flask, smtp: SmtpServer, dovecot: Any
) -> dict[str, str]:
    return processes.test_env(
        database_url,
        redis_url,
        AUTOCRM_SMTP_HOST="127.0.0.1",
        AUTOCRM_SMTP_PORT=str(smtp.port),
        AUTOCRM_CUSTOMER_EMAIL_WINDOW="0",
        AUTOCRM_MAIL_POLL_INTERVAL=str(POLL_INTERVAL_S),
        AUTOCRM_MAIL_CA_FILE=str(dovecot.ca_file),
    )


@pytest.fixture(scope="module")
def workers(
    database_url: str, redis_url: str, log_dir: Path, child_env: dict[str, str]
) -> Iterator[processes.Process]:
    with processes.worker_and_beat(database_url, redis_url, log_dir, env=child_env) as worker:
        yield worker


@pytest.fixture(scope="module")
def web(child_env: dict[str, str], log_dir: Path) -> Iterator[servers.WebServer]:
    with servers.running("eventlet", child_env, log_dir, count=1) as started:
        yield started[0]


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context(), processes.committed_data():
        yield


def connect_mailbox(desk: processes.Desk, dovecot: Any) -> None:
    def make() -> None:
        admin = db.session.get_one(User, desk.admin_id)
        mailboxes.do_create_mailbox(
            admin,
            {
                "name": "support",
                "address": SUPPORT,
                "team_id": desk.team_id,
                "imap_host": "localhost",
                "imap_port": dovecot.port,
                "imap_security": "starttls",
                "imap_username": SUPPORT,
                "imap_password": IMAP_PASSWORD,
            },
        )

    processes.snapshot(make)


def ticket_with_subject(subject: str) -> int | None:
    return processes.snapshot(
        lambda: db.session.scalar(select(Ticket.id).where(Ticket.subject == subject))
    )


def inbound(message_id: str) -> InboundEmail | None:
    return processes.snapshot(
        lambda: db.session.scalar(select(InboundEmail).where(InboundEmail.message_id == message_id))
    )


def token_for(user_id: int) -> str:
    def read() -> str:
        user = db.session.get_one(User, user_id)
        return issue_token(user.id, user.password_hash)

    return processes.snapshot(read)


def test_an_email_conversation_through_imap_smtp_worker_beat_and_the_live_workspace(
    dovecot: Any, smtp: SmtpServer, workers: processes.Process, web: servers.WebServer, ctx: None
) -> None:
    desk = processes.staffed_team(agents=1, policy=AssignmentPolicy.MANUAL)
    connect_mailbox(desk, dovecot)
    agent_id = desk.agent_ids[0]

    dovecot.append(
        SUPPORT,
        build_message(
            f"Dana Customer <{CUSTOMER}>",
            SUPPORT,
            "Invoice 1042 is wrong",
            "Hello,\n\nthe invoice charges us twice.\n\nDana",
            message_id="first.1042@customer.example",
        ),
    )
    ticket_id = processes.wait_for(
        lambda: ticket_with_subject("Invoice 1042 is wrong"), bool, timeout=30
    )
    assert ticket_id is not None

    with servers.connected(web, token_for(agent_id)) as workspace:
        workspace.call("join_ticket", {"ticket_id": ticket_id})

        def agent_replies() -> None:
            agent = db.session.get_one(User, agent_id)
            conversation.do_add_message(agent, ticket_id, "We refunded the second charge.")

        # A write from the start, not inside snapshot(): a read-only (deferred) transaction
        # that then writes cannot upgrade while the worker or beat writes ("database is
        # locked" at once on SQLite, whatever the busy timeout).
        db.session.rollback()
        agent_replies()
        sent: MimeMessage = processes.wait_for(
            lambda: smtp.to(CUSTOMER), lambda found: len(found) >= 1, timeout=30
        )[0]
        assert SUPPORT in sent["From"] and SUPPORT in sent["Reply-To"]
        assert sent["In-Reply-To"] == "<first.1042@customer.example>"
        assert f"[#{ticket_id}]" in sent["Subject"]
        assert "We refunded the second charge." in sent.get_content()

        our_id = sent["Message-ID"].strip("<>")
        dovecot.append(
            SUPPORT,
            build_message(
                CUSTOMER,
                SUPPORT,
                "Re: " + sent["Subject"],
                "Thank you, all good now.\n\n> We refunded the second charge.",
                message_id="second.1042@customer.example",
                in_reply_to=our_id,
                references=["first.1042@customer.example", our_id],
            ),
        )
        live = workspace.recorder.wait_for(
            "message", lambda m: m["ticket_id"] == ticket_id and "all good" in m["body"], 30
        )
        assert live["body"] == "Thank you, all good now."
        assert live["channel"] == "email"

    # An out-of-office answer to our email, then a marker email: once the marker is a ticket,
    # the auto-reply (received before it) has been handled too, and changed nothing.
    dovecot.append(
        SUPPORT,
        build_message(
            CUSTOMER,
            SUPPORT,
            "Automatic reply: " + sent["Subject"],
            "I am out of the office.",
            message_id="ooo.1042@customer.example",
            in_reply_to=our_id,
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    dovecot.append(SUPPORT, build_message(CUSTOMER, SUPPORT, "Marker", "m", message_id="m@c.x"))
    processes.wait_for(lambda: ticket_with_subject("Marker"), bool, timeout=30)

    auto = inbound("ooo.1042@customer.example")
    assert auto is not None and auto.status is InboundStatus.IGNORED and auto.ticket_id is None
    bodies = processes.snapshot(
        lambda: db.session.scalars(
            select(Message.body).where(Message.ticket_id == ticket_id).order_by(Message.id)
        ).all()
    )
    assert bodies == ["We refunded the second charge.", "Thank you, all good now."]
    assert len(smtp.to(CUSTOMER)) >= 1
    assert dovecot.list_messages(SUPPORT, "INBOX") == []
    assert len(dovecot.list_messages(SUPPORT, "Processed")) == 4
