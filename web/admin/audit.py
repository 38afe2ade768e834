"""Admin console: the audit log of admin changes (who changed which rule, user or team, when).

Newest first, filtered like ``GET /api/audit`` (actor, target type and id, action), a page at a
time; each entry links to what it changed and lists the changed fields as before -> after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template, request, url_for
from werkzeug.routing import BuildError

from autocrm.audit import services as audit
from autocrm.audit.models import AdminAuditEntry
from autocrm.errors import InvalidInput
from autocrm.listing import PageRequest
from autocrm.people import users
from autocrm.people.models import User
from web.admin.people import describe_calendar
from web.forms import parse_id
from web.session import admin_required

bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")

PAGE_SIZE = 50
MAX_VALUE_TEXT = 300
FIELD_LABELS = {
    "max_open_per_agent": "Open tickets per agent (cap)",
    "assignment_policy": "Assignment",
    "made_default": "Made the default",
    "migrated_tickets": "Tickets moved to it",
    "copy_from": "Copied from workflow",
    "sections": "Parts changed",
    "calendar": "Business hours",
}
FILTER_KEYS = ("actor_id", "target_type", "target_id", "action")
NONE = "(none)"


@dataclass(frozen=True)
class Change:
    field: str
    before: str | None  # None: the field had no value before (shown as just the new value)
    after: str


@dataclass(frozen=True)
class Row:
    id: int
    when: datetime
    who: str
    action: str
    action_label: str
    target_kind: str
    target_label: str
    target_url: str | None
    changes: list[Change]


def _text(field: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return NONE
    if field == "calendar" and isinstance(value, dict):
        return describe_calendar(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_TEXT else text[: MAX_VALUE_TEXT - 1] + "\u2026"


def _target_url(entry: AdminAuditEntry) -> str | None:
    if entry.target_id is None:
        return None
    if entry.target_type == "user":
        return url_for("admin_people.user_detail", user_id=entry.target_id)
    if entry.target_type == "team":
        return url_for("admin_people.team_detail", team_id=entry.target_id)
    if entry.target_type == "workflow":
        try:  # the workflow's draft editor, where the console has one
            return url_for("admin_workflows.draft", workflow_id=entry.target_id)
        except BuildError:
            return url_for("admin_workflows.index")
    if entry.target_type in ("canned", "macro"):  # canned responses became macros, same ids
        return url_for("macro_pages.edit", macro_id=entry.target_id)
    return None


def _row(entry: AdminAuditEntry) -> Row:
    changes = []
    for field, pair in entry.changes.items():
        before, after = [*pair, None, None][:2]
        changes.append(
            Change(
                field=FIELD_LABELS.get(field, field.replace("_", " ").capitalize()),
                before=None if before is None else _text(field, before),
                after=_text(field, after),
            )
        )
    return Row(
        id=entry.id,
        when=entry.created_at,
        who=entry.actor.name if entry.actor else "System",
        action=entry.action,
        action_label=audit.ACTIONS.get(entry.action, entry.action),
        target_kind=audit.TARGET_TYPES.get(entry.target_type, entry.target_type),
        target_label=entry.target_label,
        target_url=_target_url(entry),
        changes=changes,
    )


@bp.get("/")
@admin_required
def index(user: User) -> tuple[str, int]:
    values = {key: request.args.get(key, "").strip() for key in (*FILTER_KEYS, "cursor")}
    errors: dict[str, Any] = {}
    actor_id, target_id = parse_id(values["actor_id"]), parse_id(values["target_id"])
    for key, parsed in (("actor_id", actor_id), ("target_id", target_id)):
        if values[key] and parsed is None:
            errors[key] = ["Choose from the list." if key == "actor_id" else "A number, e.g. 12."]
    listing = None
    if not errors:
        filters = audit.AuditFilters(
            actor_id=actor_id,
            target_type=values["target_type"] or None,
            target_id=target_id,
            action=values["action"] or None,
        )
        page = PageRequest(limit=PAGE_SIZE, cursor=values["cursor"] or None)
        try:
            listing = audit.list_entries(user, page, filters)
        except InvalidInput as exc:
            errors = exc.errors
    html = render_template(
        "admin/audit.html",
        user=user,
        values=values,
        errors=errors,
        rows=[_row(entry) for entry in listing.items] if listing else [],
        next_cursor=listing.next_cursor if listing else None,
        filter_args={k: values[k] for k in FILTER_KEYS if values[k]},
        actors=sorted(users.staff_names().items(), key=lambda item: item[1].lower()),
        target_types=audit.TARGET_TYPES,
        actions=audit.ACTIONS,
    )
    return html, 422 if errors else 200
