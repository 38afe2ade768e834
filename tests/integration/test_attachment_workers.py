"""What workers do with attachments: thumbnails of sent images (upright, without EXIF, never
of a decompression bomb), and beat's removal of uploads nobody sent within a day."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image
from sqlalchemy import update

from autocrm.columns import utcnow
from autocrm.events.kinds import MessageCreated
from autocrm.files import services as files
from autocrm.files import storage as blobs
from autocrm.files.models import Attachment
from autocrm.files.representation import render_attachments
from autocrm.files.thumbnails import make_thumbnails
from autocrm.tickets import conversation
from tests import files_data
from tests.factories import drain, web_login

ORIENTATION, MAKE, GPS = 0x0112, 0x010F, 0x8825


def phone_photo() -> bytes:
    """A 400x200 JPEG a phone took sideways (EXIF orientation 6: rotate 90 degrees) with its
    maker and a GPS block in the EXIF."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "PhoneMaker"
    exif.get_ifd(GPS)[2] = (48.0, 51.0, 24.0)
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (200, 120, 40)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def bomb() -> bytes:
    """A PNG of a few kilobytes that decodes to 49 megapixels."""
    out = io.BytesIO()
    Image.new("1", (7000, 7000)).save(out, "PNG")
    return out.getvalue()


def send(actor, ticket, *named: tuple[str, bytes]) -> list[Attachment]:
    uploads = [files.Upload(name, io.BytesIO(content)) for name, content in named]
    ids = [a.id for a in files.do_upload(actor, uploads)]
    message = conversation.do_add_message(actor, ticket.id, "Photos", attachment_ids=ids)
    return list(message.attachments)


def test_a_sent_photo_gets_an_upright_thumbnail_without_exif(factory, db_session, app):
    customer = factory.customer()
    ticket = factory.ticket(customer)
    [photo, pdf] = send(
        customer, ticket, ("IMG_0001.jpg", phone_photo()), ("a.pdf", files_data.PDF)
    )
    drain(db_session, ticket_id=ticket.id)
    db_session.refresh(photo)
    db_session.refresh(pdf)
    assert pdf.thumbnail_sha256 is None
    assert photo.thumbnail_sha256 is not None
    thumbnail = b"".join(blobs.current().open(photo.thumbnail_sha256))
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.format == "JPEG"
        assert image.size == (200, 400)  # turned upright
        assert dict(image.getexif()) == {}
    [shown] = render_attachments([photo])
    assert shown["thumbnail_url"] == f"/attachments/{photo.id}/thumbnail"
    # Handling the event again changes nothing.
    make_thumbnails(
        MessageCreated(
            ticket_id=ticket.id, message_id=photo.message_id, internal=False, author_role="customer"
        )
    )
    assert db_session.get(Attachment, photo.id).thumbnail_sha256 == photo.thumbnail_sha256


def test_a_thumbnail_is_served_from_the_page_address(factory, db_session, client):
    customer = factory.customer()
    ticket = factory.ticket(customer)
    [photo] = send(customer, ticket, ("wide.png", files_data.png(1600, 400)))
    drain(db_session, ticket_id=ticket.id)
    web_login(client, customer)
    response = client.get(f"/attachments/{photo.id}/thumbnail")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(response.data)) as image:
        assert image.size == (480, 120)


def test_a_decompression_bomb_gets_no_thumbnail_and_the_event_is_handled(factory, db_session):
    customer = factory.customer()
    ticket = factory.ticket(customer)
    [image] = send(customer, ticket, ("pixels.png", bomb()))
    assert drain(db_session, ticket_id=ticket.id) >= 1
    db_session.refresh(image)
    assert image.thumbnail_sha256 is None


def test_uploads_never_sent_are_removed_after_a_day(factory, db_session):
    customer = factory.customer()
    ticket = factory.ticket(customer)
    [old_unsent, fresh_unsent] = files.do_upload(
        customer,
        [files.Upload("old.txt", io.BytesIO(b"old")), files.Upload("new.txt", io.BytesIO(b"new"))],
    )
    [old_sent] = send(customer, ticket, ("sent.txt", b"sent"))
    db_session.execute(
        update(Attachment)
        .where(Attachment.id.in_([old_unsent.id, old_sent.id]))
        .values(created_at=utcnow() - timedelta(days=1, minutes=1))
    )
    assert files.do_remove_unsent_uploads() == 1
    remaining = {a.id for a in db_session.query(Attachment).all()}
    assert old_unsent.id not in remaining
    assert {fresh_unsent.id, old_sent.id} <= remaining
    assert files.do_remove_unsent_uploads() == 0


def test_the_removal_is_on_the_beat_schedule():
    import celeryconfig

    entry = celeryconfig.settings["beat_schedule"]["remove-unsent-uploads"]
    assert entry["task"] == "workers.tasks.remove_unsent_uploads"
    assert celeryconfig.settings["task_routes"][entry["task"]] == {"queue": "beat"}
