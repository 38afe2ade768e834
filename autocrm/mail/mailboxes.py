"""Support mailboxes, as admins manage them: connect, change, test, and the failed mail list.

Every change is recorded in the admin audit log in the same transaction (the IMAP password
never: only that it changed). The IMAP password is stored encrypted
(``security.encrypt_secret``); the webhook secret is shown once, when made, and stored as its
SHA-256 (a provider sends it back on every delivery; it is compared in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.listing import Page, PageRequest, keyset_page
from autocrm.mail import imap, receive
from autocrm.mail.models import ImapSecurity, InboundEmail, InboundStatus, Mailbox
from autocrm.people import users
from autocrm.people.models import Team, User
from autocrm.security import decrypt_secret, encrypt_secret
from autocrm.transaction import duplicates_refused, rolls_back_on_error

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
MAX_HOST = 253
MAX_FOLDER = 200
DEFAULT_PORTS = {ImapSecurity.SSL: 993, ImapSecurity.STARTTLS: 143, ImapSecurity.NONE: 143}
# What an admin sets; the rest of a mailbox is kept by the system.
FIELDS = (
    "name",
    "address",
    "team_id",
    "active",
    "plus_addressing",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
    "imap_folder",
    "imap_processed_folder",
)


def require_admin(actor: User) -> None:
    if not policies.can_manage_mailboxes(actor):
        raise Forbidden("Only administrators may manage mailboxes.")


def list_mailboxes(actor: User) -> list[Mailbox]:
    require_admin(actor)
    return list(db.session.scalars(select(Mailbox).order_by(Mailbox.name)))


def access_mailbox_by_id(actor: User, mailbox_id: int) -> Mailbox:
    require_admin(actor)
    mailbox = db.session.get(Mailbox, mailbox_id)
    if mailbox is None:
        raise NotFound(f"Mailbox {mailbox_id} not found.")
    return mailbox


def mailbox_named(name: str) -> Mailbox | None:
    """The active mailbox ``name`` (the pipe and the webhook name it), or None."""
    return db.session.scalar(select(Mailbox).where(Mailbox.name == name, Mailbox.active))


# -- checks ------------------------------------------------------------------------------------


def _name_in_use() -> InvalidInput:
    return InvalidInput("Mailbox name in use.", {"name": ["A mailbox with this name exists."]})


def _address_in_use() -> InvalidInput:
    return InvalidInput(
        "Address in use.", {"address": ["Another mailbox receives at this address."]}
    )


def _text(value: Any, field: str, limit: int, errors: dict[str, list[str]]) -> str | None:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        errors[field] = ["Must be text."]
    elif len(text) > limit:
        errors[field] = [f"At most {limit} characters."]
    return text or None


def check_mailbox(fields: Mapping[str, Any], mailbox: Mailbox | None = None) -> dict[str, Any]:
    """The fields an admin sent, cleaned (only those sent); InvalidInput naming each wrong one."""
    unknown = set(fields) - set(FIELDS)
    errors: dict[str, list[str]] = {name: ["Unknown field."] for name in sorted(unknown)}
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not NAME.match(name):
            errors["name"] = ["1-60 letters, digits, dots, dashes or underscores."]
        clean["name"] = name
    if "address" in fields:
        address = users.normalize_email(fields["address"] or "")
        try:
            users.check_email(address)
        except InvalidInput:
            errors["address"] = ["Enter the address customers write to, like support@example.com."]
        clean["address"] = address
    if "team_id" in fields:
        team_id = fields["team_id"]
        if team_id is not None and db.session.get(Team, team_id) is None:
            errors["team_id"] = [f"No team {team_id}."]
        clean["team_id"] = team_id
    for flag in ("active", "plus_addressing"):
        if flag in fields:
            clean[flag] = bool(fields[flag])
    clean.update(_check_imap(fields, errors))
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return clean


def _check_imap(fields: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "imap_host" in fields:
        clean["imap_host"] = _text(fields["imap_host"], "imap_host", MAX_HOST, errors)
    if "imap_username" in fields:
        clean["imap_username"] = _text(fields["imap_username"], "imap_username", 254, errors)
    if "imap_security" in fields:
        try:
            clean["imap_security"] = ImapSecurity(fields["imap_security"])
        except ValueError:
            errors["imap_security"] = ["One of: ssl, starttls, none."]
    if "imap_port" in fields:
        port = fields["imap_port"]
        if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
            errors["imap_port"] = ["A port number from 1 to 65535."]
        clean["imap_port"] = port
    if "imap_folder" in fields:
        folder = _text(fields["imap_folder"], "imap_folder", MAX_FOLDER, errors)
        clean["imap_folder"] = folder or "INBOX"
    if "imap_processed_folder" in fields:
        # Blank: processed messages are deleted from the server.
        clean["imap_processed_folder"] = _text(
            fields["imap_processed_folder"], "imap_processed_folder", MAX_FOLDER, errors
        )
    if fields.get("imap_password"):
        clean["imap_password"] = fields["imap_password"]
    return clean


def _apply(mailbox: Mailbox, clean: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the cleaned fields; the changes as the audit log records them."""
    changes: dict[str, list[Any]] = {}
    password = clean.pop("imap_password", None)
    if password is not None:
        mailbox.imap_password_encrypted = encrypt_secret(password)
        changes["imap_password"] = ["(hidden)", "(changed)"]
    changed = audit.diff({name: getattr(mailbox, name) for name in clean}, clean)
    for name in changed:
        setattr(mailbox, name, clean[name])
    changes.update(changed)
    if mailbox.imap_host and mailbox.imap_port is None:
        mailbox.imap_port = DEFAULT_PORTS[ImapSecurity(mailbox.imap_security)]
    return changes


def _new_webhook_secret(mailbox: Mailbox) -> str:
    secret = secrets.token_urlsafe(32)
    mailbox.webhook_secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    return secret


def webhook_secret_matches(mailbox: Mailbox, secret: str) -> bool:
    if not mailbox.webhook_secret_hash or not secret:
        return False
    offered = hashlib.sha256(secret.encode()).hexdigest()
    return hmac.compare_digest(offered, mailbox.webhook_secret_hash)


# -- writing -----------------------------------------------------------------------------------


@rolls_back_on_error
def do_create_mailbox(actor: User, fields: Mapping[str, Any]) -> tuple[Mailbox, str]:
    """A new mailbox and its webhook secret (shown this once)."""
    require_admin(actor)
    missing = {name: ["Required."] for name in ("name", "address") if not fields.get(name)}
    if missing:
        raise InvalidInput("Please correct the marked fields.", missing)
    clean = check_mailbox(fields)
    mailbox = Mailbox(imap_security=ImapSecurity.SSL, imap_folder="INBOX")
    changes = _apply(mailbox, clean)
    secret = _new_webhook_secret(mailbox)
    with (
        duplicates_refused(Mailbox.name, _name_in_use),
        duplicates_refused(Mailbox.address, _address_in_use),
    ):
        db.session.add(mailbox)
        db.session.flush()
    audit.record(actor, "mailbox.created", mailbox, changes)
    db.session.commit()
    return mailbox, secret


@rolls_back_on_error
def do_update_mailbox(actor: User, mailbox_id: int, fields: Mapping[str, Any]) -> Mailbox:
    mailbox = access_mailbox_by_id(actor, mailbox_id)
    changes = _apply(mailbox, check_mailbox(fields, mailbox))
    with (
        duplicates_refused(Mailbox.name, _name_in_use),
        duplicates_refused(Mailbox.address, _address_in_use),
    ):
        db.session.flush()
    if changes:
        audit.record(actor, "mailbox.updated", mailbox, changes)
    db.session.commit()
    return mailbox


@rolls_back_on_error
def do_rotate_webhook_secret(actor: User, mailbox_id: int) -> str:
    mailbox = access_mailbox_by_id(actor, mailbox_id)
    secret = _new_webhook_secret(mailbox)
    audit.record(actor, "mailbox.webhook_secret_rotated", mailbox)
    db.session.commit()
    return secret


@rolls_back_on_error
def do_delete_mailbox(actor: User, mailbox_id: int) -> None:
    """Gone, with the record of what it received; its tickets stay (replies then come from
    the default sender)."""
    mailbox = access_mailbox_by_id(actor, mailbox_id)
    audit.record(actor, "mailbox.deleted", mailbox, {"name": [mailbox.name, None]})
    db.session.delete(mailbox)
    db.session.commit()


# -- IMAP --------------------------------------------------------------------------------------


def imap_settings(mailbox: Mailbox, cafile: str | None = None) -> imap.ImapSettings:
    """The mailbox's IMAP settings; InvalidInput when they are incomplete or the stored
    password cannot be read (the secret key changed)."""
    if not mailbox.polls_imap or mailbox.imap_password_encrypted is None:
        raise InvalidInput(
            "This mailbox has no IMAP server set up.",
            {"imap_host": ["Set the IMAP host, user and password first."]},
        )
    password = decrypt_secret(mailbox.imap_password_encrypted)
    if password is None:
        raise InvalidInput(
            "The stored IMAP password cannot be read (the secret key changed); enter it again.",
            {"imap_password": ["Enter the password again."]},
        )
    return imap.ImapSettings(
        host=mailbox.imap_host or "",
        port=mailbox.imap_port or DEFAULT_PORTS[ImapSecurity(mailbox.imap_security)],
        security=ImapSecurity(mailbox.imap_security).value,
        username=mailbox.imap_username or "",
        password=password,
        folder=mailbox.imap_folder,
        processed_folder=mailbox.imap_processed_folder,
        cafile=cafile,
    )


def test_connection(actor: User, mailbox_id: int, cafile: str | None = None) -> tuple[bool, str]:
    """Whether the mailbox's IMAP server lets us in, and what it said."""
    mailbox = access_mailbox_by_id(actor, mailbox_id)
    try:
        return True, imap.check_connection(imap_settings(mailbox, cafile))
    except imap.ImapError as exc:
        return False, str(exc)


# -- failed mail -------------------------------------------------------------------------------


def list_inbound(
    actor: User, page: PageRequest, *, status: InboundStatus | None = InboundStatus.FAILED
) -> Page[InboundEmail]:
    """Received emails, newest first (by default the failed ones, which wait for an admin)."""
    require_admin(actor)
    stmt = select(InboundEmail)
    if status is not None:
        stmt = stmt.where(InboundEmail.status == status)
    return keyset_page(stmt, page, {"id": InboundEmail.id}, InboundEmail.id)


def access_inbound_by_id(actor: User, inbound_id: int) -> InboundEmail:
    require_admin(actor)
    inbound = db.session.get(InboundEmail, inbound_id)
    if inbound is None:
        raise NotFound(f"Received email {inbound_id} not found.")
    return inbound


def _waiting(inbound: InboundEmail) -> None:
    if inbound.status is not InboundStatus.FAILED:
        raise InvalidInput(
            "Only failed emails can be retried or discarded.",
            {"status": [f"This email is {inbound.status.value}."]},
        )


@rolls_back_on_error
def do_retry_inbound(actor: User, inbound_id: int) -> InboundEmail:
    inbound = access_inbound_by_id(actor, inbound_id)
    _waiting(inbound)
    audit.record(actor, "inbound_email.retried", inbound, {"reason": [inbound.reason, None]})
    return receive.do_retry(inbound)


@rolls_back_on_error
def do_discard_inbound(actor: User, inbound_id: int) -> InboundEmail:
    inbound = access_inbound_by_id(actor, inbound_id)
    _waiting(inbound)
    audit.record(actor, "inbound_email.discarded", inbound, {"reason": [inbound.reason, None]})
    receive.do_discard(inbound)
    return inbound
