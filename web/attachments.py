"""Files on the pages: downloading with the web session, and the file fields of the forms.

A page's reply or new-ticket form posts ``multipart/form-data`` with its files in ``files``;
the view stores them (``upload_form_files``) and sends their ids with the ticket or message in
the same request, so the forms work without JavaScript (which only adds dropping and pasting).
Downloads answer to whoever may see what the file is attached to, like the API's; a file's
link in an email (``autocrm.files.links``) answers its recipient without a login for a while.
"""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from autocrm.errors import NotFound
from autocrm.files import links, serving
from autocrm.files import services as files
from autocrm.people.models import User
from web.session import current_user

bp = Blueprint("files", __name__, url_prefix="/attachments")


def upload_form_files(user: User) -> list[int]:
    """Store the files the form carries (none chosen: an empty list); raises the upload's
    DomainError (its ``errors`` under ``files``) for the page to show at the field."""
    chosen = [f for f in request.files.getlist("files") if f.filename]
    if not chosen:
        return []
    uploads = [files.Upload(f.filename or "", f.stream) for f in chosen]
    return [attachment.id for attachment in files.do_upload(user, uploads)]


def file_errors(errors: dict[str, list[str]]) -> list[str]:
    """What to show at a form's file field (the upload's reasons, or the attaching's)."""
    return [str(m) for key in ("files", "attachment_ids") for m in errors.get(key, [])]


def _send(attachment_id: int, *, thumbnail: bool) -> Response:
    """Anyone may ask (a public article's files need no login); someone not logged in who may
    not see the file is sent to log in first, as from any page."""
    user = current_user()
    try:
        attachment = files.access_attachment_by_id(user, attachment_id)
    except NotFound:
        if user is None:
            return redirect(url_for("web_auth.login", next=request.full_path))
        raise
    return serving.send(attachment, thumbnail=thumbnail)


@bp.get("/<int:attachment_id>")
def download(attachment_id: int) -> Response:
    return _send(attachment_id, thumbnail=False)


@bp.get("/<int:attachment_id>/thumbnail")
def thumbnail(attachment_id: int) -> Response:
    return _send(attachment_id, thumbnail=True)


@bp.get("/link/<token>")
def emailed_link(token: str) -> Response:
    """A file's link in an email: served without a login while it is young; once expired, the
    ordinary download (a login first, for someone not logged in)."""
    try:
        attachment = links.open_link(token)
    except links.LinkExpired as expired:
        return redirect(url_for("files.download", attachment_id=expired.attachment_id))
    return serving.send(attachment)


def upload_limits() -> dict[str, int]:
    """For the file fields: what the browser may check before sending."""
    return files.limits()


def file_size(size: int) -> str:
    return files.human_size(size)
