"""Files in notification emails (issue 12): an email about a reply on a portal ticket links
the reply's files, signed for its one recipient; the link opens the file without a login
while it is young, and afterwards asks for a login like any download; a forged link, or a
reader who may no longer see the ticket, gets 404; an internal note's file is never linked.
Emails go to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask

from autocrm.columns import utcnow
from autocrm.files import services as files
from autocrm.tickets import conversation, followers
from tests.factories import drain
from tests.files_data import png
from tests.integration.test_email_delivery import smtp_mailer
from tests.smtp_server import SmtpServer

LINK = re.compile(
    r"^- (?P<name>\S+) \((?P<size>[^)]+)\): \S+(?P<path>/attachments/link/\S+)$", re.M
)


@pytest.fixture
def smtp(app: Flask, db_session: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setitem(app.config, "AUTOCRM_CUSTOMER_EMAIL_WINDOW", 0)
    with smtp_mailer(app) as server:
        yield server


@pytest.fixture
def desk(factory: Any, db_session: Any) -> dict[str, Any]:
    team = factory.team()
    agent = factory.agent(team, name="Alex Agent")
    customer = factory.customer(name="Casey", email="casey@example.org")
    ticket = factory.ticket(customer, team=team, assignee_id=agent.id)
    drain(db_session)
    return {"agent": agent, "customer": customer, "ticket": ticket}


def reply_with_file(desk: dict[str, Any], name: str, content: bytes, *, internal: bool = False):
    [upload] = files.do_upload(desk["agent"], [files.Upload(name, io.BytesIO(content))])
    conversation.do_add_message(
        desk["agent"],
        desk["ticket"].id,
        f"See {name}.",
        attachment_ids=[upload.id],
        internal=internal,
    )
    return upload


def links_in(email) -> dict[str, str]:
    return {m["name"]: m["path"] for m in LINK.finditer(email.get_content().replace("\r\n", "\n"))}


def test_the_reply_email_links_its_file_and_the_link_opens_it_without_a_login(
    desk, db_session, smtp, client
):
    image = png(40, 30)
    reply_with_file(desk, "steps.png", image)
    drain(db_session)

    [email] = smtp.to("casey@example.org")
    link = links_in(email)["steps.png"]
    opened = client.get(link)

    assert opened.status_code == 200 and opened.data == image
    assert opened.headers["X-Content-Type-Options"] == "nosniff"
    assert "links work for 7 days" in email.get_content()


def test_an_internal_notes_file_is_never_linked(desk, db_session, smtp):
    reply_with_file(desk, "secret.png", png(10, 10), internal=True)
    reply_with_file(desk, "public.png", png(12, 12))
    drain(db_session)

    emails = smtp.to("casey@example.org")
    assert [list(links_in(e)) for e in emails] == [["public.png"]]
    assert all("secret.png" not in e.get_content() for e in emails)


def test_a_forged_link_is_404_and_an_old_one_asks_for_a_login(desk, db_session, smtp, client):
    upload = reply_with_file(desk, "steps.png", png(20, 20))
    drain(db_session)
    link = links_in(smtp.to("casey@example.org")[0])["steps.png"]

    assert client.get(link[:-3] + "abc").status_code == 404
    with time_machine.travel(utcnow() + timedelta(days=7, minutes=1), tick=False):
        expired = client.get(link)
    assert expired.status_code == 302
    assert expired.location.endswith(f"/attachments/{upload.id}")
    assert "/login" in client.get(expired.location).location


def test_a_link_stops_working_for_someone_who_lost_the_ticket(
    desk, db_session, smtp, client, factory
):
    colleague = factory.customer(name="Robin", email="robin@example.org")
    followers.do_add_follower(desk["agent"], desk["ticket"].id, user_id=colleague.id)
    drain(db_session)
    reply_with_file(desk, "steps.png", png(20, 20))
    drain(db_session)
    link = links_in(smtp.to("robin@example.org")[-1])["steps.png"]
    assert client.get(link).status_code == 200

    followers.do_remove_follower(desk["agent"], desk["ticket"].id, colleague.id)

    assert client.get(link).status_code == 404
