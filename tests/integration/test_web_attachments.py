"""Attachments on the pages, as a browser without JavaScript sends them: the new-ticket and
reply forms post multipart/form-data and the files are stored in the same request; refusals
show at the file field with the typed text kept; downloads follow the ticket's rules, and an
internal note's file never reaches the customer's page or its download address."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from autocrm.files.models import Attachment
from autocrm.tickets import conversation
from autocrm.tickets.models import Ticket
from tests import files_data
from tests.factories import csrf_token, web_login


def multipart(**fields: Any) -> dict[str, Any]:
    values = MultiDict()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, tuple):
                values.add(name, FileStorage(io.BytesIO(item[1]), filename=item[0]))
            else:
                values.add(name, item)
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def customer(factory):
    return factory.customer(name="Casey")


@pytest.fixture
def agent(factory):
    return factory.agent(factory.team())


def html(response) -> str:
    return response.get_data(as_text=True)


def logged_in(client, user) -> str:
    web_login(client, user)
    return csrf_token(client, "/portal/profile" if not user.role.is_staff else "/agent/")


def test_a_new_ticket_with_a_screenshot_and_a_pdf(client, customer, db_session, fresh_login_limit):
    csrf = logged_in(client, customer)
    response = client.post(
        "/portal/tickets/new",
        **multipart(
            csrf_token=csrf,
            subject="Invoice looks wrong",
            description="See the screenshot",
            priority="normal",
            files=[("screen.png", files_data.png()), ("invoice.pdf", files_data.PDF)],
        ),
    )
    assert response.status_code == 302, html(response)
    ticket = db_session.scalars(select(Ticket).where(Ticket.subject == "Invoice looks wrong")).one()
    page = html(client.get(response.headers["Location"]))
    files = db_session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert sorted(f.filename for f in files) == ["invoice.pdf", "screen.png"]
    image = next(f for f in files if f.filename == "screen.png")
    assert f'<img src="/attachments/{image.id}"' in page
    assert "application/pdf" in page
    shown = client.get(f"/attachments/{image.id}")
    assert shown.status_code == 200
    assert shown.data == files_data.png()
    assert shown.headers["X-Content-Type-Options"] == "nosniff"


def test_a_refused_file_shows_at_the_field_and_keeps_the_text(
    client, customer, db_session, fresh_login_limit
):
    csrf = logged_in(client, customer)
    response = client.post(
        "/portal/tickets/new",
        **multipart(
            csrf_token=csrf,
            subject="Please run this",
            description="My carefully typed description",
            priority="normal",
            files=[("tool.exe", files_data.EXE)],
        ),
    )
    assert response.status_code == 422
    page = html(response)
    assert "My carefully typed description" in page
    assert 'value="Please run this"' in page
    assert re.search(r'id="files-error"[^>]*>[^<]*tool\.exe', page), page
    assert db_session.scalar(select(Ticket.id).where(Ticket.subject == "Please run this")) is None


def test_a_file_too_large_shows_at_the_reply_field_and_keeps_the_reply(
    client, app, factory, customer, monkeypatch, fresh_login_limit
):
    monkeypatch.setitem(app.config, "AUTOCRM_MAX_UPLOAD_BYTES", 1000)
    ticket = factory.ticket(customer)
    csrf = logged_in(client, customer)
    response = client.post(
        f"/portal/tickets/{ticket.id}/messages",
        **multipart(csrf_token=csrf, body="Here is the log", files=[("big.log", b"x" * 2000)]),
    )
    assert response.status_code == 422
    page = html(response)
    assert "Here is the log</textarea>" in page
    assert re.search(r'id="reply-files-error"[^>]*>[^<]*big\.log', page), page


def test_a_reply_with_a_file_and_an_internal_notes_file_kept_from_the_customer(
    client, factory, customer, db_session, fresh_login_limit
):
    team = factory.team()
    agent = factory.agent(team)
    ticket = factory.ticket(customer, team=team)
    csrf = logged_in(client, agent)
    for visibility, name, content in (
        ("internal", "notes.pdf", files_data.PDF),
        ("public", "steps.png", files_data.png(color=(0, 120, 0))),
    ):
        response = client.post(
            f"/agent/tickets/{ticket.id}/messages",
            **multipart(
                csrf_token=csrf, body=f"{visibility} message", visibility=visibility,
                files=[(name, content)],
            ),
        )  # fmt: skip
        assert response.status_code == 302, html(response)
    note_file = db_session.scalars(
        select(Attachment).where(Attachment.filename == "notes.pdf")
    ).one()
    agent_page = html(client.get(f"/agent/tickets/{ticket.id}"))
    assert "notes.pdf" in agent_page and "steps.png" in agent_page
    client.post("/logout", data={"csrf_token": csrf})

    logged_in(client, customer)
    page = html(client.get(f"/portal/tickets/{ticket.id}"))
    assert "steps.png" in page
    assert "notes.pdf" not in page
    assert f"/attachments/{note_file.id}" not in page
    assert client.get(f"/attachments/{note_file.id}").status_code == 404
    assert client.get(f"/attachments/{note_file.id}/thumbnail").status_code == 404
    assert client.get(f"/attachments/{note_file.id + 1000}").status_code == 404
    caught_up = client.get(f"/portal/tickets/{ticket.id}/messages.json").get_json()
    assert [m["body"] for m in caught_up["items"]] == ["public message"]
    assert "notes.pdf" not in str(caught_up)


def test_a_reply_without_files_still_works_from_a_plain_form(
    client, factory, customer, fresh_login_limit
):
    ticket = factory.ticket(customer)
    csrf = logged_in(client, customer)
    response = client.post(
        f"/portal/tickets/{ticket.id}/messages",
        **multipart(csrf_token=csrf, body="No files", files=[("", b"")]),
    )
    assert response.status_code == 302
    assert [m.body for m in conversation.list_messages(customer, ticket.id)[0]] == ["No files"]


def test_downloads_need_a_login(client):
    response = client.get("/attachments/1")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_text_alone_gets_no_more_room_on_a_form_that_takes_files(
    client, customer, app, fresh_login_limit
):
    csrf = logged_in(client, customer)
    too_much = "d" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(
        "/portal/tickets/new",
        **multipart(csrf_token=csrf, subject="Big", description=too_much, priority="normal"),
    )
    assert response.status_code == 413
    assert "too much to send" in html(response)


def test_a_public_articles_files_show_in_the_help_center(client, factory, db_session):
    from autocrm.files import services as files
    from autocrm.kb import articles

    agent = factory.agent(factory.team())
    [image] = files.do_upload(agent, [files.Upload("router.png", io.BytesIO(files_data.png()))])
    article = articles.do_create_article(
        agent, title="Router lights", body="What they mean", status="published",
        attachment_ids=[image.id],
    )  # fmt: skip
    page = html(client.get(f"/help/articles/{article.id}"))
    assert f'<img src="/attachments/{image.id}"' in page
    assert client.get(f"/attachments/{image.id}").status_code == 200
