"""Attachments through the REST API: uploading (limits, refused types, detection from the
content), attaching to a new ticket and to messages, downloading (who may, and how the file is
served), deleting; and that an internal note's file never reaches a customer."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from autocrm.audit.models import AdminAuditEntry
from autocrm.files.models import Attachment
from autocrm.files.storage import LocalStorage, S3Storage
from tests import files_data
from tests.factories import ApiClient, assert_error
from tests.processes import free_port

# -- helpers -----------------------------------------------------------------------------------


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def multipart(**fields: Any) -> dict[str, Any]:
    """A multipart/form-data body encoded in memory (the test client's own encoder spools a
    large one to a temporary file it never closes)."""
    values = MultiDict()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, tuple):
                filename, content = item
                values.add(name, FileStorage(io.BytesIO(content), filename=filename))
            else:
                values.add(name, item)
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(api: ApiClient, *files: tuple[str, bytes]) -> Any:
    return api.post("/api/uploads", **multipart(files=list(files)))


def uploaded(api: ApiClient, *files: tuple[str, bytes]) -> list[dict[str, Any]]:
    return ok(upload(api, *files), 201)["items"]


def rows(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Attachment))


@pytest.fixture(params=["local", "s3"])
def backend(request, app, monkeypatch, tmp_path):
    """The app's storage: a local folder, or a bucket on the local S3 server."""
    if request.param == "local":
        storage = LocalStorage(tmp_path / "files")
    else:
        storage = request.getfixturevalue("s3_storage")
    monkeypatch.setitem(app.extensions, "autocrm.storage", storage)
    return storage


@pytest.fixture
def limits(app, monkeypatch):
    def set_limits(**values: int | str | None) -> None:
        for name, value in values.items():
            monkeypatch.setitem(app.config, f"AUTOCRM_{name.upper()}", value)

    return set_limits


@pytest.fixture
def desk(factory, client):
    team = factory.team()
    people = {
        "team": team,
        "customer": factory.customer(),
        "other": factory.customer(),
        "agent": factory.agent(team),
        "admin": factory.admin(),
    }
    people["ticket"] = factory.ticket(people["customer"], team=team)
    return {
        **people,
        **{
            f"{name}_api": ApiClient(client, people[name])
            for name in ("customer", "other", "agent", "admin")
        },
    }


# -- uploading ---------------------------------------------------------------------------------


def test_upload_detects_the_type_from_the_content_and_serves_it_back(desk, backend):
    api = desk["customer_api"]
    image, pdf = files_data.png(), files_data.PDF
    png_item, pdf_item = uploaded(api, ("screenshot.txt", image), ("invoice.pdf", pdf))
    assert png_item["content_type"] == "image/png"  # not what the name says
    assert png_item["is_image"] is True
    assert png_item["size"] == len(image)
    assert pdf_item["content_type"] == "application/pdf"
    assert pdf_item["is_image"] is False
    assert pdf_item["url"] == f"/api/attachments/{pdf_item['id']}"

    shown = api.get(png_item["url"])
    assert shown.status_code == 200
    assert shown.data == image
    assert shown.headers["Content-Type"] == "image/png"
    assert shown.headers["Content-Disposition"].startswith("inline")
    downloaded = api.get(pdf_item["url"])
    assert downloaded.data == pdf
    assert downloaded.headers["Content-Disposition"].startswith("attachment")
    assert 'filename="invoice.pdf"' in downloaded.headers["Content-Disposition"]
    for response in (shown, downloaded):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_svg_and_html_are_never_shown_inline(desk, backend):
    api = desk["customer_api"]
    svg, html = uploaded(api, ("logo.svg", files_data.SVG), ("page.html", files_data.HTML))
    assert (svg["content_type"], svg["is_image"]) == ("image/svg+xml", False)
    assert html["content_type"] == "text/html"
    for item in (svg, html):
        response = api.get(item["url"])
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "sandbox" in response.headers["Content-Security-Policy"]


def test_the_same_file_twice_is_stored_once(desk, backend):
    api = desk["customer_api"]
    first, second = uploaded(api, ("a.pdf", files_data.PDF), ("b.pdf", files_data.PDF))
    assert first["id"] != second["id"]
    shas = {desk_row(item["id"]).sha256 for item in (first, second)}
    assert len(shas) == 1
    assert backend.exists(shas.pop())


def desk_row(attachment_id: int) -> Attachment:
    from autocrm.extensions import db

    return db.session.get_one(Attachment, attachment_id)


def test_a_file_over_the_limit_is_413_naming_it_and_nothing_is_kept(
    desk, backend, limits, db_session
):
    limits(max_upload_bytes=1000)
    before = rows(db_session)
    body = assert_error(upload(desk["customer_api"], ("huge-log.txt", b"x" * 1001)), 413)
    assert "huge-log.txt" in body["message"]
    assert body["errors"]["files"] == ["huge-log.txt: larger than 1000 bytes."]
    assert rows(db_session) == before
    assert not list_objects(backend)
    # Exactly at the limit is fine.
    uploaded(desk["customer_api"], ("fits.txt", b"x" * 1000))


def list_objects(storage) -> list[str]:
    if isinstance(storage, LocalStorage):
        return [p.name for p in storage.root.rglob("*") if p.is_file()]
    listing = storage.client.list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("setup.exe", files_data.EXE),
        ("innocent.pdf", files_data.EXE),  # a program whatever its name says
        ("tool", files_data.ELF),
        ("install.txt", files_data.SCRIPT),
        ("cleanup.bat", b"del /q C:\\*\r\n"),  # plain text: refused for its name
    ],
)
def test_programs_and_scripts_are_refused_with_422_naming_the_file(
    desk, backend, db_session, name, content
):
    before = rows(db_session)
    response = upload(desk["customer_api"], ("ok.pdf", files_data.PDF), (name, content))
    body = assert_error(response, 422)
    assert name in body["message"]
    [reason] = body["errors"]["files"]
    assert reason.startswith(f"{name}:")
    assert rows(db_session) == before
    assert not list_objects(backend)  # nothing stored, not even the good file


def test_the_deny_list_is_configurable(desk, backend, limits):
    limits(upload_deny_types="application/pdf")
    assert_error(upload(desk["customer_api"], ("invoice.pdf", files_data.PDF)), 422)
    [item] = uploaded(desk["customer_api"], ("setup.exe", files_data.EXE))
    assert item["content_type"] == "application/x-msdownload"


def test_too_many_files_at_once(desk, backend, limits):
    limits(max_attachments=2)
    files = [(f"{n}.txt", f"file {n}".encode()) for n in range(3)]
    body = assert_error(upload(desk["customer_api"], *files), 422)
    assert body["errors"]["files"] == ["3 files; at most 2."]


def test_an_upload_with_no_file(desk):
    response = desk["customer_api"].post(
        "/api/uploads", data={}, content_type="multipart/form-data"
    )
    assert_error(response, 422)


def test_a_request_over_the_upload_cap_is_413_before_it_is_read(desk, limits, app):
    limits(max_attachments_bytes=10_000)
    app_limit = app.config["MAX_CONTENT_LENGTH"]
    big = b"x" * (10_000 + app_limit + 1)
    assert_error(upload(desk["customer_api"], ("big.txt", big)), 413)


def test_uploads_larger_than_the_ordinary_request_cap_are_accepted(desk, backend, limits, app):
    limits(max_upload_bytes=3 * 2**20)
    content = b"log line\n" * (2 * 2**20 // 9)
    assert len(content) > app.config["MAX_CONTENT_LENGTH"]
    [item] = uploaded(desk["customer_api"], ("big.log", content))
    assert item["size"] == len(content)


def test_file_names_are_cleaned(desk, backend):
    [item] = uploaded(desk["customer_api"], ("../../etc/pass\x07wd", b"hello"))
    assert item["name"] == "pass_wd"


def test_uploading_needs_a_token_that_may_write(client, desk):
    assert_error(client.post("/api/uploads", data={}), 401)


def test_storage_down_is_a_clear_503(desk, app, monkeypatch):
    broken = S3Storage(
        "nowhere",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
    )
    monkeypatch.setitem(app.extensions, "autocrm.storage", broken)
    body = assert_error(upload(desk["customer_api"], ("a.pdf", files_data.PDF)), 503)
    assert "storage" in body["message"].lower()


# -- attaching ---------------------------------------------------------------------------------


def test_files_sent_with_a_new_ticket_are_on_it(desk, backend):
    api = desk["customer_api"]
    ids = [i["id"] for i in uploaded(api, ("s.png", files_data.png()), ("i.pdf", files_data.PDF))]
    ticket = ok(
        api.post(
            "/api/tickets",
            json={"subject": "Broken", "description": "See files", "attachment_ids": ids},
        ),
        201,
    )
    assert [a["id"] for a in ticket["attachments"]] == ids
    assert ok(api.get(f"/api/tickets/{ticket['id']}"))["attachments"] == ticket["attachments"]
    agent_view = ok(desk["admin_api"].get(f"/api/tickets/{ticket['id']}"))
    assert agent_view["attachments"] == ticket["attachments"]
    assert desk["admin_api"].get(ticket["attachments"][0]["url"]).status_code == 200


def test_files_sent_with_a_message_are_on_it(desk, backend):
    api, ticket = desk["customer_api"], desk["ticket"]
    [item] = uploaded(api, ("trace.txt", b"Traceback..."))
    message = ok(
        api.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "Log attached", "attachment_ids": [item["id"]]},
        ),
        201,
    )
    assert [a["name"] for a in message["attachments"]] == ["trace.txt"]
    [listed] = ok(desk["agent_api"].get(f"/api/tickets/{ticket.id}/messages"))["items"]
    assert listed["attachments"] == message["attachments"]
    assert desk["agent_api"].get(item["url"]).data == b"Traceback..."


def test_someone_elses_upload_cannot_be_attached(desk, backend):
    [theirs] = uploaded(desk["other_api"], ("secret.pdf", files_data.PDF))
    response = desk["customer_api"].post(
        f"/api/tickets/{desk['ticket'].id}/messages",
        json={"body": "Look", "attachment_ids": [theirs["id"]]},
    )
    body = assert_error(response, 422)
    assert body["errors"]["attachment_ids"] == [
        f"No upload {theirs['id']} of yours is waiting to be sent."
    ]
    # And the other customer cannot download it through anyone else's ticket either.
    assert_error(desk["customer_api"].get(theirs["url"]), 404)


def test_an_upload_is_attached_once(desk, backend):
    api, ticket = desk["customer_api"], desk["ticket"]
    [item] = uploaded(api, ("a.txt", b"once"))
    send = {"body": "First", "attachment_ids": [item["id"]]}
    ok(api.post(f"/api/tickets/{ticket.id}/messages", json=send), 201)
    response = api.post(f"/api/tickets/{ticket.id}/messages", json={**send, "body": "Again"})
    assert_error(response, 422)
    bodies = [m["body"] for m in ok(api.get(f"/api/tickets/{ticket.id}/messages"))["items"]]
    assert bodies == ["First"]  # the refused message was not kept


def test_a_message_carries_at_most_the_count_and_total_size(desk, backend, limits):
    api, ticket = desk["customer_api"], desk["ticket"]
    ids = [i["id"] for i in uploaded(api, *[(f"{n}.txt", b"x" * 600) for n in range(3)])]
    limits(max_attachments=2)
    body = assert_error(
        api.post(f"/api/tickets/{ticket.id}/messages", json={"body": "All", "attachment_ids": ids}),
        422,
    )
    assert "attachment_ids" in body["errors"]
    limits(max_attachments=10, max_attachments_bytes=1000)
    body = assert_error(
        api.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "Two", "attachment_ids": ids[:2]},
        ),
        422,
    )
    assert "attachment_ids" in body["errors"]
    ok(
        api.post(
            f"/api/tickets/{ticket.id}/messages", json={"body": "One", "attachment_ids": ids[:1]}
        ),
        201,
    )


# -- who may download ----------------------------------------------------------------------------


def test_an_unattached_upload_is_its_uploaders_only(desk, backend):
    [item] = uploaded(desk["customer_api"], ("draft.pdf", files_data.PDF))
    assert desk["customer_api"].get(item["url"]).status_code == 200
    for who in ("other_api", "agent_api"):
        assert_error(desk[who].get(item["url"]), 404)


def test_a_tickets_files_follow_the_ticket(desk, backend, factory, client):
    api, ticket = desk["customer_api"], desk["ticket"]
    [item] = uploaded(api, ("photo.png", files_data.png()))
    ok(
        api.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "Photo", "attachment_ids": [item["id"]]},
        ),
        201,
    )
    assert desk["agent_api"].get(item["url"]).status_code == 200
    assert_error(desk["other_api"].get(item["url"]), 404)
    outsider = ApiClient(client, factory.agent(factory.team()))
    assert_error(outsider.get(item["url"]), 404)


def test_an_internal_notes_file_never_reaches_the_customer(desk, backend, client):
    agent, ticket = desk["agent_api"], desk["ticket"]
    [item] = uploaded(agent, ("customer-history.pdf", files_data.PDF))
    note = ok(
        agent.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "VIP; see file", "internal": True, "attachment_ids": [item["id"]]},
        ),
        201,
    )
    assert note["attachments"][0]["id"] == item["id"]
    customer = desk["customer_api"]
    # The API: not in the conversation, and not by id.
    assert ok(customer.get(f"/api/tickets/{ticket.id}/messages"))["items"] == []
    body = assert_error(customer.get(item["url"]), 404)
    assert body["message"] == assert_error(customer.get(f"/api/attachments/{2**31 - 1}"), 404)[
        "message"
    ].replace(str(2**31 - 1), str(item["id"]))
    # Nor can the customer delete it.
    assert_error(customer.delete(item["url"]), 404)
    assert desk["admin_api"].get(item["url"]).status_code == 200


def test_unknown_and_impossible_ids_are_404(desk):
    api = desk["customer_api"]
    assert_error(api.get("/api/attachments/999999"), 404)
    assert api.get(f"/api/attachments/{2**40}").status_code == 404
    assert api.get("/api/attachments/0").status_code == 404


# -- deleting ------------------------------------------------------------------------------------


def test_the_uploader_deletes_an_upload_before_sending_it(desk, backend, db_session):
    api = desk["customer_api"]
    [item] = uploaded(api, ("oops.pdf", files_data.PDF))
    assert ok(api.delete(item["url"])) == {"id": item["id"], "deleted": True}
    assert_error(api.get(item["url"]), 404)
    assert db_session.get(Attachment, item["id"]) is None


def test_a_sent_file_is_deleted_only_by_an_admin_and_that_is_audited(desk, backend, db_session):
    api, ticket = desk["customer_api"], desk["ticket"]
    [item] = uploaded(api, ("passport.png", files_data.png()))
    ok(
        api.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "ID", "attachment_ids": [item["id"]]},
        ),
        201,
    )
    assert_error(api.delete(item["url"]), 403)
    assert_error(desk["agent_api"].delete(item["url"]), 403)
    ok(desk["admin_api"].delete(item["url"]))
    assert_error(desk["agent_api"].get(item["url"]), 404)
    [messages] = [ok(desk["agent_api"].get(f"/api/tickets/{ticket.id}/messages"))["items"]]
    assert messages[0]["attachments"] == []
    entry = db_session.scalars(
        select(AdminAuditEntry).where(AdminAuditEntry.action == "attachment.deleted")
    ).one()
    assert (entry.target_type, entry.target_id) == ("attachment", item["id"])
    assert entry.target_label == "passport.png"


def test_files_open_in_the_spec_limits(client):
    spec = client.get("/api/openapi.json").get_json()
    text = spec["paths"]["/api/uploads"]["post"]["description"]
    for setting in ("AUTOCRM_MAX_UPLOAD_BYTES", "AUTOCRM_MAX_ATTACHMENTS", "AUTOCRM_UPLOAD_DENY"):
        assert setting in text


# -- realtime ------------------------------------------------------------------------------------


def test_the_message_event_carries_the_files_and_a_notes_files_only_to_staff(connect, http, desk):
    ticket, customer, agent = desk["ticket"], desk["customer"], desk["agent"]
    customer_sock, agent_sock = connect(customer), connect(agent)
    for sock in (customer_sock, agent_sock):
        assert sock.emit("join_ticket", {"ticket_id": ticket.id})["ok"]
    staff = ApiClient(http, agent)
    [note_file] = uploaded(staff, ("internal.pdf", files_data.PDF))
    [reply_file] = uploaded(staff, ("steps.png", files_data.png()))
    note = ok(
        staff.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "Careful", "internal": True, "attachment_ids": [note_file["id"]]},
        ),
        201,
    )
    reply = ok(
        staff.post(
            f"/api/tickets/{ticket.id}/messages",
            json={"body": "Try this", "attachment_ids": [reply_file["id"]]},
        ),
        201,
    )
    assert agent_sock.received("message") == [note, reply]
    # The customer hears the reply, with its file, and nothing of the note: its file's name
    # appears in no event the customer's socket got.
    assert customer_sock.received("message") == [reply]
    assert reply["attachments"][0]["name"] == "steps.png"
    assert customer_sock.log and "internal.pdf" not in str(customer_sock.log)
    assert_error(ApiClient(http, customer).get(note_file["url"]), 404)


# -- storage used --------------------------------------------------------------------------------


def test_admins_see_the_storage_used_in_total_and_by_ticket(desk, backend):
    api, ticket = desk["customer_api"], desk["ticket"]
    before = ok(desk["admin_api"].get("/api/attachments/usage"))
    ids = [i["id"] for i in uploaded(api, ("a.pdf", files_data.PDF), ("copy.pdf", files_data.PDF))]
    ok(
        api.post(f"/api/tickets/{ticket.id}/messages", json={"body": "Two", "attachment_ids": ids}),
        201,
    )
    uploaded(api, ("later.txt", b"12345"))
    usage = ok(desk["admin_api"].get("/api/attachments/usage"))
    assert usage["files"] == before["files"] + 3
    assert usage["bytes"] == before["bytes"] + 2 * len(files_data.PDF) + 5
    assert usage["stored_bytes"] <= before["stored_bytes"] + len(files_data.PDF) + 5
    assert usage["unsent_files"] == before["unsent_files"] + 1
    mine = next(t for t in usage["tickets"] if t["ticket_id"] == ticket.id)
    assert mine == {"ticket_id": ticket.id, "files": 2, "bytes": 2 * len(files_data.PDF)}
    for who in ("customer_api", "agent_api"):
        assert_error(desk[who].get("/api/attachments/usage"), 403)


# -- knowledge-base articles ---------------------------------------------------------------------


def test_an_articles_files_are_seen_as_the_article_is(desk, backend, client):
    staff = desk["agent_api"]
    [public_image] = uploaded(staff, ("diagram.png", files_data.png()))
    [internal_file] = uploaded(staff, ("runbook.pdf", files_data.PDF))
    public = ok(
        staff.post(
            "/api/kb/articles",
            json={
                "title": "Resetting the router",
                "body": f"![diagram]({public_image['page_url']})",
                "status": "published",
                "attachment_ids": [public_image["id"]],
            },
        ),
        201,
    )
    assert [a["id"] for a in public["attachments"]] == [public_image["id"]]
    internal = ok(
        staff.post(
            "/api/kb/articles",
            json={"title": "Runbook", "body": "For staff", "visibility": "internal",
                  "status": "published"},
        ),
        201,
    )  # fmt: skip
    updated = ok(
        staff.patch(
            f"/api/kb/articles/{internal['id']}", json={"attachment_ids": [internal_file["id"]]}
        )
    )
    assert [a["name"] for a in updated["attachments"]] == ["runbook.pdf"]

    # Anyone may see the public article's image, logged in or not; the internal one's file
    # only staff.
    anonymous = client.get(public_image["page_url"])
    assert anonymous.status_code == 200
    assert anonymous.data == files_data.png()
    assert desk["customer_api"].get(public_image["url"]).status_code == 200
    assert_error(desk["customer_api"].get(internal_file["url"]), 404)
    hidden = client.get(internal_file["page_url"])
    assert hidden.status_code == 302
    assert "/login" in hidden.headers["Location"]
    assert desk["admin_api"].get(internal_file["url"]).status_code == 200
