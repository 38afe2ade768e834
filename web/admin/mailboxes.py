"""Admin console: support mailboxes (list, connect, edit, test the IMAP connection, new
webhook secret, delete) and the failed mail list (read, download the original, retry,
discard). Forms redirect on success or re-render with the input kept and each error at its
field; the services in ``autocrm.mail.mailboxes`` check admin rights and audit."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from autocrm.errors import DomainError, NotFound
from autocrm.listing import PageRequest
from autocrm.mail import mailboxes, receive, serving
from autocrm.mail.models import InboundStatus, Mailbox
from autocrm.people import teams
from autocrm.people.models import User
from web.forms import form_errors
from web.session import admin_required

bp = Blueprint("admin_mailboxes", __name__, url_prefix="/admin/mailboxes")

EMPTY_FORM = {
    "name": "",
    "address": "",
    "team_id": "",
    "active": "on",
    "plus_addressing": "",
    "imap_host": "",
    "imap_port": "",
    "imap_security": "ssl",
    "imap_username": "",
    "imap_password": "",
    "imap_folder": "INBOX",
    "imap_processed_folder": "Processed",
}


def _form() -> dict[str, str]:
    return {key: request.form.get(key, "").strip() for key in EMPTY_FORM}


def _number(text: str, field: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise DomainError("Please correct the marked fields.", {field: ["Enter a number."]})
    return int(text)


def _fields(form: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        **form,
        "team_id": _number(form["team_id"], "team_id"),
        "imap_port": _number(form["imap_port"], "imap_port"),
        "active": bool(form["active"]),
        "plus_addressing": bool(form["plus_addressing"]),
    }
    for blank_keeps in ("imap_password", "imap_security"):  # blank: keep what is stored
        if not form[blank_keeps]:
            del fields[blank_keeps]
    return fields


def _current(mailbox: Mailbox) -> dict[str, str]:
    return {
        "name": mailbox.name,
        "address": mailbox.address,
        "team_id": str(mailbox.team_id or ""),
        "active": "on" if mailbox.active else "",
        "plus_addressing": "on" if mailbox.plus_addressing else "",
        "imap_host": mailbox.imap_host or "",
        "imap_port": str(mailbox.imap_port or ""),
        "imap_security": mailbox.imap_security.value,
        "imap_username": mailbox.imap_username or "",
        "imap_password": "",
        "imap_folder": mailbox.imap_folder,
        "imap_processed_folder": mailbox.imap_processed_folder or "",
    }


def _render(template: str, user: User, status: int = 200, **context: Any) -> tuple[str, int]:
    html = render_template(
        template,
        user=user,
        teams=sorted(
            teams.list_teams(user, PageRequest(limit=200)).items, key=lambda t: t.name.lower()
        ),
        base_url=current_app.config["AUTOCRM_BASE_URL"].rstrip("/"),
        **context,
    )
    return html, status


@bp.route("", methods=["GET", "POST"], endpoint="index")
@admin_required
def index(user: User) -> Any:
    form, errors = dict(EMPTY_FORM), {}
    if request.method == "POST":
        form = _form()
        try:
            created, secret = mailboxes.do_create_mailbox(user, _fields(form))
        except DomainError as exc:
            errors = form_errors(exc)
        else:
            return _detail_page(user, created.id, secret=secret, status=201)
    failed = mailboxes.list_inbound(user, PageRequest(limit=5))
    return _render(
        "admin/mailboxes.html",
        user,
        422 if errors else 200,
        items=mailboxes.list_mailboxes(user),
        failed=failed.items,
        form=form,
        errors=errors,
    )


def _detail_page(
    user: User,
    mailbox_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, Any] | None = None,
    secret: str | None = None,
    test: tuple[bool, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    mailbox = mailboxes.access_mailbox_by_id(user, mailbox_id)
    return _render(
        "admin/mailboxes_detail.html",
        user,
        status,
        mailbox=mailbox,
        form=form or _current(mailbox),
        errors=errors or {},
        secret=secret,
        test=test,
    )


@bp.get("/<int:mailbox_id>")
@admin_required
def detail(user: User, mailbox_id: int) -> tuple[str, int]:
    return _detail_page(user, mailbox_id)


@bp.post("/<int:mailbox_id>")
@admin_required
def update(user: User, mailbox_id: int) -> Any:
    form = _form()
    try:
        mailboxes.do_update_mailbox(user, mailbox_id, _fields(form))
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        return _detail_page(
            user, mailbox_id, form=form, errors=form_errors(exc), status=exc.status_code
        )
    flash("Mailbox saved.", "success")
    return redirect(url_for(".detail", mailbox_id=mailbox_id))


@bp.post("/<int:mailbox_id>/test")
@admin_required
def test_connection(user: User, mailbox_id: int) -> Any:
    try:
        result = mailboxes.test_connection(
            user, mailbox_id, current_app.config.get("AUTOCRM_MAIL_CA_FILE")
        )
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        result = (False, exc.message)
    return _detail_page(user, mailbox_id, test=result)


@bp.post("/<int:mailbox_id>/webhook-secret")
@admin_required
def rotate_secret(user: User, mailbox_id: int) -> Any:
    secret = mailboxes.do_rotate_webhook_secret(user, mailbox_id)
    return _detail_page(user, mailbox_id, secret=secret)


@bp.post("/<int:mailbox_id>/delete")
@admin_required
def delete(user: User, mailbox_id: int) -> Any:
    mailboxes.do_delete_mailbox(user, mailbox_id)
    flash("Mailbox deleted; its tickets stay.", "success")
    return redirect(url_for(".index"))


# -- received mail -------------------------------------------------------------------------------


@bp.get("/mail")
@admin_required
def mail(user: User) -> tuple[str, int]:
    raw_status = request.args.get("status", "failed")
    if raw_status != "all" and raw_status not in {s.value for s in InboundStatus}:
        raise NotFound("No such list.")
    status = None if raw_status == "all" else InboundStatus(raw_status)
    page = mailboxes.list_inbound(
        user, PageRequest(limit=50, cursor=request.args.get("cursor")), status=status
    )
    return _render("admin/mailboxes_mail.html", user, page=page, shown=raw_status)


@bp.get("/mail/<int:inbound_id>")
@admin_required
def mail_detail(user: User, inbound_id: int) -> tuple[str, int]:
    inbound = mailboxes.access_inbound_by_id(user, inbound_id)
    parsed = receive.read_parsed(inbound)
    return _render("admin/mailboxes_mail_detail.html", user, inbound=inbound, parsed=parsed)


@bp.get("/mail/<int:inbound_id>/raw")
@admin_required
def mail_raw(user: User, inbound_id: int) -> Response:
    return serving.send_original(mailboxes.access_inbound_by_id(user, inbound_id))


@bp.post("/mail/<int:inbound_id>/retry")
@admin_required
def mail_retry(user: User, inbound_id: int) -> Any:
    try:
        result = mailboxes.do_retry_inbound(user, inbound_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".mail_detail", inbound_id=inbound_id))
    if result.status is InboundStatus.FAILED:
        flash(f"Still failed: {result.reason}", "error")
    else:
        flash(f"Retried: {result.status.value}.", "success")
    return redirect(url_for(".mail_detail", inbound_id=result.id))


@bp.post("/mail/<int:inbound_id>/discard")
@admin_required
def mail_discard(user: User, inbound_id: int) -> Any:
    try:
        mailboxes.do_discard_inbound(user, inbound_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".mail_detail", inbound_id=inbound_id))
    flash("Email discarded.", "success")
    return redirect(url_for(".mail"))
