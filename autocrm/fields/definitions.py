"""Custom ticket fields, as admins manage them: create, change, reorder, retire, delete.

Every change is recorded in the admin audit log in the same transaction. A field's key and
type are fixed once made (values and rules name the key; stored values have the type).
Options are reordered by the order sent, retired with ``retired: true`` (tickets keep them);
removing an option a ticket holds is refused at ``options``, as is deleting a field any ticket
has a value for (deactivate it instead) or a request form asks. Adding a dropdown field also
has a worker build an expression index on it after commit (``autocrm.fields.indexes``), so
filtering by it becomes an index range scan like ``priority``; deleting one drops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.fields import forms, indexes, values
from autocrm.fields.models import FieldType, FieldVisibility, TicketField
from autocrm.people.models import User
from autocrm.transaction import duplicates_refused, rolls_back_on_error

WRITABLE = ("label", "options", "help_text", "visibility", "required_to_solve", "active")
CREATE_ONLY = ("key", "type")
MAX_LABEL = 100
MAX_HELP = 1000
MAX_OPTIONS = 500
MAX_OPTION = 100


def require_admin(actor: User) -> None:
    if not policies.can_manage_ticket_fields(actor):
        raise Forbidden("Only administrators may manage ticket fields.")


def audit_target(field: TicketField) -> audit.Target:
    return audit.Target("ticket_field", field.id, field.key)


def list_fields(actor: User, *, include_inactive: bool = False) -> list[TicketField]:
    """The fields ``actor`` may see, in order: staff every active one (admins also the
    inactive ones when asked), customers the customer-visible ones."""
    if include_inactive:
        require_admin(actor)
    found = values.defined_fields(active_only=not include_inactive).values()
    return [f for f in found if values.sees(actor, f)]


def access_field_by_id(actor: User, field_id: int) -> TicketField:
    require_admin(actor)
    field = db.session.get(TicketField, field_id)
    if field is None:
        raise NotFound(f"Ticket field {field_id} not found.")
    return field


# -- checks ------------------------------------------------------------------------------------


def _check_options(value: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_OPTIONS:
        errors["options"] = [f"A list of at most {MAX_OPTIONS} options."]
        return []
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, option in enumerate(value):
        raw = option if isinstance(option, Mapping) else {"value": option}
        name = raw.get("value")
        name = name.strip() if isinstance(name, str) else ""
        label = raw.get("label")
        label = label.strip() if isinstance(label, str) and label.strip() else name
        if not name or len(name) > MAX_OPTION or len(label) > MAX_OPTION:
            errors.setdefault("options", []).append(
                f"Option {i + 1}: a value and label of 1 to {MAX_OPTION} characters."
            )
        elif name in seen:
            errors.setdefault("options", []).append(f"Option {name!r} is listed twice.")
        seen.add(name)
        options.append({"value": name, "label": label, "retired": bool(raw.get("retired"))})
    return options


def _check_removed_options(field: TicketField, options: list[dict[str, Any]]) -> list[str]:
    kept = {o["value"] for o in options}
    return [
        f"Option {o['value']!r} is on tickets: retire it instead of removing it."
        for o in field.options
        if o["value"] not in kept and values.in_use(field, o["value"])
    ]


def _choice(enum_cls: Any, value: Any, name: str, errors: dict[str, list[str]]) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        errors[name] = [f"One of: {', '.join(m.value for m in enum_cls)}."]
        return None


def check_field(fields: Mapping[str, Any], existing: TicketField | None) -> dict[str, Any]:
    """The definition an admin sent, cleaned (only what was sent); InvalidInput naming each
    wrong part."""
    allowed = WRITABLE if existing else WRITABLE + CREATE_ONLY
    errors: dict[str, list[str]] = {}
    for name in sorted(set(fields) - set(allowed)):
        fixed = name in CREATE_ONLY
        errors[name] = ["Fixed once the field is made." if fixed else "Unknown field."]
    clean: dict[str, Any] = {}
    if "key" in fields and existing is None:
        key = fields["key"]
        if not isinstance(key, str) or not values.KEY.match(key):
            errors["key"] = [f"A key is {values.KEY_RULE}."]
        clean["key"] = key
    if "type" in fields and existing is None:
        clean["type"] = _choice(FieldType, fields["type"], "type", errors)
    if "label" in fields:
        label = fields["label"].strip() if isinstance(fields["label"], str) else ""
        if not label or len(label) > MAX_LABEL:
            errors["label"] = [f"1 to {MAX_LABEL} characters."]
        clean["label"] = label
    if "help_text" in fields:
        help_text = fields["help_text"] if isinstance(fields["help_text"], str) else ""
        if len(help_text.strip()) > MAX_HELP:
            errors["help_text"] = [f"At most {MAX_HELP} characters."]
        clean["help_text"] = help_text.strip()
    if "visibility" in fields:
        clean["visibility"] = _choice(FieldVisibility, fields["visibility"], "visibility", errors)
    for flag in ("required_to_solve", "active"):
        if flag in fields:
            clean[flag] = bool(fields[flag])
    if "options" in fields:
        clean["options"] = _check_options(fields["options"], errors)
        removed = (
            _check_removed_options(existing, clean["options"])
            if existing is not None and "options" not in errors
            else []
        )
        if removed:
            errors["options"] = removed
    kind = existing.type if existing else clean.get("type")
    options = clean.get("options", existing.options if existing else [])
    if kind is not None and kind.has_options and not options and "options" not in errors:
        errors["options"] = ["A dropdown or multi-select needs at least one option."]
    if kind is not None and not kind.has_options and options and "options" not in errors:
        errors["options"] = ["Only dropdowns and multi-selects have options."]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return clean


def _apply(field: TicketField, clean: dict[str, Any]) -> dict[str, list[Any]]:
    """Set what changed; the audit's ``{field: [before, after]}``."""
    changes = audit.diff({name: getattr(field, name) for name in clean}, clean)
    for name in changes:
        setattr(field, name, clean[name])
    return changes


def _duplicate_key() -> InvalidInput:
    return InvalidInput("Please correct the marked fields.", {"key": ["That key is taken."]})


# -- writing -----------------------------------------------------------------------------------


@rolls_back_on_error
def do_create_field(actor: User, fields: Mapping[str, Any]) -> TicketField:
    require_admin(actor)
    missing = {name: ["Required."] for name in ("key", "label", "type") if name not in fields}
    if missing:
        raise InvalidInput("Please correct the marked fields.", missing)
    clean = check_field(fields, None)
    if db.session.scalar(select(TicketField.id).where(TicketField.key == clean["key"])):
        raise _duplicate_key()
    last = db.session.scalar(select(func.max(TicketField.position))) or 0
    field = TicketField(
        options=[],
        help_text="",
        visibility=FieldVisibility.STAFF,
        required_to_solve=False,
        active=True,
        position=last + 1,
    )
    changes = _apply(field, clean)
    with duplicates_refused(TicketField.key, _duplicate_key):
        db.session.add(field)
        db.session.flush()
    if field.type is FieldType.DROPDOWN:
        indexes.queue_build()
    audit.record(actor, "ticket_field.created", audit_target(field), changes)
    db.session.commit()
    return field


@rolls_back_on_error
def do_update_field(actor: User, field_id: int, fields: Mapping[str, Any]) -> TicketField:
    field = access_field_by_id(actor, field_id)
    changes = _apply(field, check_field(fields, field))
    if changes:
        audit.record(actor, "ticket_field.updated", audit_target(field), changes)
    db.session.commit()
    return field


@rolls_back_on_error
def do_reorder_fields(actor: User, field_ids: list[int]) -> list[TicketField]:
    """Put the fields in the order of ``field_ids`` (those not named keep theirs, after)."""
    require_admin(actor)
    fields = {f.id: f for f in values.defined_fields(active_only=False).values()}
    unknown = [i for i in field_ids if i not in fields]
    if unknown:
        raise InvalidInput("Unknown field.", {"field_ids": [f"No field {unknown[0]}."]})
    order = list(dict.fromkeys(field_ids)) + [i for i in fields if i not in field_ids]
    for position, field_id in enumerate(order, start=1):
        fields[field_id].position = position
    audit.record(
        actor,
        "ticket_field.reordered",
        audit.Target("ticket_field", None, "all fields"),
        {"order": [None, [fields[i].key for i in order]]},
    )
    db.session.commit()
    return [fields[i] for i in order]


@rolls_back_on_error
def do_delete_field(actor: User, field_id: int) -> None:
    field = access_field_by_id(actor, field_id)
    if asking := forms.forms_asking(field.key):
        raise InvalidInput(
            "Request forms ask this field: take it off them first.",
            {"key": [f"Asked by the request forms {', '.join(asking)}; take it off them first."]},
        )
    if values.in_use(field):
        raise InvalidInput(
            "Tickets have values for this field: deactivate it instead.",
            {"key": ["Tickets have values for this field; deactivate it instead."]},
        )
    audit.record(actor, "ticket_field.deleted", audit_target(field), {"key": [field.key, None]})
    if field.type is FieldType.DROPDOWN:
        indexes.queue_build()  # which drops the index, the field being gone
    db.session.delete(field)
    db.session.commit()
