"""The audit log of admin changes and security events: who changed which user, team or
workflow, who logged in or failed to, who made or revoked a token or ended a session; when, and
how.

Admin services call ``record`` inside the transaction of the change they make, so an entry
exists exactly when the change was committed. ``changes`` maps a field to ``[before, after]``
in plain JSON; secrets (passwords, hashes, tokens) never reach it: the action says a password
was reset, not what it became. Reading the log is for admins (``policies.can_view_audit_log``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from autocrm import policies
from autocrm.audit.models import AdminAuditEntry
from autocrm.engine.models import Workflow
from autocrm.errors import Forbidden, InvalidInput
from autocrm.extensions import db
from autocrm.files.models import Attachment
from autocrm.listing import Page, PageRequest, keyset_page
from autocrm.macros.models import Macro
from autocrm.mail.models import InboundEmail, Mailbox
from autocrm.people.models import Organization, Team, User

# What an entry may say happened, with the words the audit page uses.
ACTIONS = {
    "user.created": "created user",
    "user.updated": "changed user details",
    "user.role_changed": "changed role",
    "user.deactivated": "deactivated user",
    "user.reactivated": "reactivated user",
    "user.password_reset": "reset password",
    "user.sessions_ended": "ended every session of user",
    "user.session_ended": "ended a session",
    "user.password_reset_requested": "was sent a password-reset link",
    "user.email_confirmed": "confirmed their email address",
    "user.invited": "invited a customer",
    "settings.signup_policy": "changed who may sign up",
    "user.password_reset_by_link": "set a new password by an emailed link",
    "user.logged_in": "logged in",
    "user.login_failed": "login refused",
    "token.created": "created an API token",
    "token.revoked": "revoked an API token",
    "user.sso_login": "logged in with single sign-on",
    "user.sso_created": "joined through single sign-on",
    "user.sso_refused": "refused single sign-on",
    "user.2fa_enabled": "turned on two-factor login",
    "user.2fa_disabled": "turned off two-factor login",
    "user.2fa_reset": "reset two-factor login of user",
    "user.recovery_code_used": "logged in with a recovery code",
    "user.recovery_codes_renewed": "replaced their recovery codes",
    "user.2fa_failed": "entered a wrong second factor at login",
    "settings.staff_2fa_required": "changed whether staff need two-factor login",
    "settings.customer_max_priority": "changed how high customers may set priority",
    "team.created": "created team",
    "team.updated": "changed team",
    "team.member_added": "added team member",
    "team.member_removed": "removed team member",
    "organization.created": "created organization",
    "organization.updated": "changed organization",
    "organization.deleted": "deleted organization",
    "organization.member_added": "added organization member",
    "organization.member_removed": "removed organization member",
    "organization.manager_changed": "changed organization manager",
    "workflow.created": "created workflow",
    "workflow.draft_saved": "saved workflow draft",
    "workflow.published": "published workflow",
    "canned.shared_changed": "changed who a canned response is shared with",
    "macro.created": "created macro shared with everyone",
    "macro.shared_changed": "changed who a macro is shared with",
    "macro.deleted": "deleted macro shared with everyone",
    "macro.applied": "applied macro",
    "attachment.deleted": "deleted an attachment",
    "mailbox.created": "connected mailbox",
    "mailbox.updated": "changed mailbox",
    "mailbox.deleted": "deleted mailbox",
    "mailbox.webhook_secret_rotated": "made a new webhook secret for mailbox",
    "inbound_email.retried": "retried failed email",
    "inbound_email.discarded": "discarded failed email",
    "webhook.created": "subscribed webhook",
    "webhook.updated": "changed webhook",
    "webhook.deleted": "deleted webhook",
    "webhook.secret_rotated": "made a new signing secret for webhook",
    "webhook.redelivered": "redelivered to webhook",
    "webhook.tested": "sent a test event to webhook",
    "webhook.paused": "paused (failing) webhook",
    "ticket_field.created": "added ticket field",
    "ticket_field.updated": "changed ticket field",
    "ticket_field.deleted": "deleted ticket field",
    "ticket_field.reordered": "reordered ticket fields",
    "request_form.created": "added request form",
    "request_form.updated": "changed request form",
    "request_form.deleted": "deleted request form",
}
TARGET_TYPES = {
    "user": "User",
    "team": "Team",
    "organization": "Organization",
    "workflow": "Workflow",
    "canned": "Canned response",
    "macro": "Macro",
    "setting": "Site setting",
    "attachment": "Attachment",
    "mailbox": "Mailbox",
    "inbound_email": "Received email",
    "webhook": "Webhook",
    "ticket_field": "Ticket field",
    "request_form": "Request form",
}
# Field names whose values are never written to the log.
SECRET_FIELDS = frozenset({"password", "password_hash", "token", "secret", "imap_password"})
MAX_LABEL = 300


@dataclass(frozen=True)
class Target:
    """What an entry is about: a type from TARGET_TYPES, its id, and its name at the time."""

    type: str
    id: int | None
    label: str


def target_of(obj: Any) -> Target:
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, User):
        return Target("user", obj.id, f"{obj.name} <{obj.email}>")
    if isinstance(obj, Team):
        return Target("team", obj.id, obj.name)
    if isinstance(obj, Organization):
        return Target("organization", obj.id, obj.name)
    if isinstance(obj, Workflow):
        return Target("workflow", obj.id, obj.name)
    if isinstance(obj, Macro):
        return Target("macro", obj.id, obj.title)
    if isinstance(obj, Attachment):
        return Target("attachment", obj.id, obj.filename)
    if isinstance(obj, Mailbox):
        return Target("mailbox", obj.id, f"{obj.name} <{obj.address}>")
    if isinstance(obj, InboundEmail):
        return Target("inbound_email", obj.id, f"{obj.subject} <{obj.sender}>")
    raise TypeError(f"no audit target type for {type(obj).__name__}")


def plain(value: Any) -> Any:
    """``value`` as JSON: enums by value, times in ISO 8601, sets sorted."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields of ``after`` whose value changed."""
    changed = {}
    for name, new in after.items():
        old = before.get(name)
        if plain(old) != plain(new):
            changed[name] = [old, new]
    return changed


def changed_keys(before: Any, after: Any) -> list[str]:
    """The top-level keys two mappings differ in (e.g. the sections of a workflow draft a save
    changed): says where to look without copying whole documents into the log."""
    before = before if isinstance(before, Mapping) else {}
    after = after if isinstance(after, Mapping) else {}
    return sorted(str(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def record(
    actor: User | None,
    action: str,
    target: Any,
    changes: Mapping[str, Any] | None = None,
) -> AdminAuditEntry:
    """Add an entry to the session, in the caller's transaction (the caller commits).
    ``changes``: ``{field: [before, after]}``; secret fields are dropped."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    where = target_of(target)
    if where.type not in TARGET_TYPES:
        raise ValueError(f"unknown audit target type {where.type!r}")
    kept = {
        str(name): [plain(before), plain(after)]
        for name, (before, after) in (changes or {}).items()
        if str(name) not in SECRET_FIELDS
    }
    entry = AdminAuditEntry(
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type=where.type,
        target_id=where.id,
        target_label=where.label[:MAX_LABEL],
        changes=kept,
    )
    db.session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilters:
    actor_id: int | None = None
    target_type: str | None = None
    target_id: int | None = None
    action: str | None = None


def check_filters(filters: AuditFilters) -> None:
    errors: dict[str, list[str]] = {}
    if filters.target_type is not None and filters.target_type not in TARGET_TYPES:
        errors["target_type"] = [f"Choose one of: {', '.join(TARGET_TYPES)}."]
    if filters.target_id is not None and filters.target_type is None:
        errors["target_id"] = ["Choose the target's type too: ids repeat across types."]
    if filters.action is not None and filters.action not in ACTIONS:
        errors["action"] = ["Not an action the audit log records."]
    if errors:
        raise InvalidInput("Please correct the filters.", errors)


def list_entries(actor: User, page: PageRequest, filters: AuditFilters) -> Page[AdminAuditEntry]:
    """The entries matching ``filters``, newest first (keyset-paginated by id)."""
    if not policies.can_view_audit_log(actor):
        raise Forbidden("Only administrators may read the audit log.")
    check_filters(filters)
    stmt = select(AdminAuditEntry).options(selectinload(AdminAuditEntry.actor))
    if filters.actor_id is not None:
        stmt = stmt.where(AdminAuditEntry.actor_id == filters.actor_id)
    if filters.target_type is not None:
        stmt = stmt.where(AdminAuditEntry.target_type == filters.target_type)
    if filters.target_id is not None:
        stmt = stmt.where(AdminAuditEntry.target_id == filters.target_id)
    if filters.action is not None:
        stmt = stmt.where(AdminAuditEntry.action == filters.action)
    newest_first = PageRequest(limit=page.limit, cursor=page.cursor, sort="-id")
    return keyset_page(stmt, newest_first, {"id": AdminAuditEntry.id}, AdminAuditEntry.id)
