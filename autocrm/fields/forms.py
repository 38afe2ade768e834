"""Request forms: what a customer picks when asking ("Bug report", "Billing question").

A form names the custom fields asked, in order, each required or optional on it, and the team
its tickets go to. Admins manage forms (audited, in the same transaction); everyone who opens
tickets reads the active ones. Opening a ticket with a form (``check_ticket_form`` and
``check_form_values``, called by the ticket service) refuses a retired or unknown form at
``form`` and a required field left empty at ``fields.<key>``. A customer is asked only the
form's customer-editable fields (the others are the staff's, filled later); a form is deleted
only while no ticket holds it: retire it instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.fields import values
from autocrm.fields.models import FieldVisibility, RequestForm, TicketField
from autocrm.people.models import Team, User
from autocrm.tickets.models import Ticket
from autocrm.transaction import duplicates_refused, rolls_back_on_error

WRITABLE = ("name", "description", "active", "position", "team_id", "fields")
MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_ITEMS = 100
MAX_POSITION = 10_000
MAX_ID = 2**31 - 1
INVALID = "Please correct the marked fields."


def require_admin(actor: User) -> None:
    if not policies.can_manage_ticket_fields(actor):
        raise Forbidden("Only administrators may manage request forms.")


def audit_target(form: RequestForm) -> audit.Target:
    return audit.Target("request_form", form.id, form.name)


# -- reading -----------------------------------------------------------------------------------


def list_forms(actor: User, *, include_retired: bool = False) -> list[RequestForm]:
    """The forms in order: the active ones (admins also the retired ones when asked)."""
    if include_retired:
        require_admin(actor)
    if not include_retired:
        return active_forms()
    stmt = select(RequestForm).order_by(RequestForm.position, RequestForm.name)
    return list(db.session.scalars(stmt))


def active_forms() -> list[RequestForm]:
    """The forms offered to people without an account (the help center's form)."""
    stmt = select(RequestForm).where(RequestForm.active.is_(True))
    return list(db.session.scalars(stmt.order_by(RequestForm.position, RequestForm.name)))


def access_form_by_id(actor: User, form_id: int) -> RequestForm:
    require_admin(actor)
    form = db.session.get(RequestForm, form_id) if 0 < form_id <= MAX_ID else None
    if form is None:
        raise NotFound(f"Request form {form_id} not found.")
    return form


def find_form(ref: Any) -> RequestForm | None:
    """The form an id (a number, or its digits) or key names; None if none does."""
    if isinstance(ref, bool):
        return None
    if isinstance(ref, str) and ref.strip().isdigit():
        ref = int(ref.strip())
    if isinstance(ref, int):
        return db.session.get(RequestForm, ref) if 0 < ref <= MAX_ID else None
    if isinstance(ref, str) and values.KEY.match(ref.strip()):
        return db.session.scalar(select(RequestForm).where(RequestForm.key == ref.strip()))
    return None


def asked_fields(actor: User | None, form: RequestForm) -> list[tuple[TicketField, bool]]:
    """The form's fields ``actor`` is asked, in the form's order, each with whether it is
    required: the active ones they may set (a customer: the customer-editable ones)."""
    definitions = values.defined_fields()
    asked = []
    for item in form.items:
        definition = definitions.get(item["key"])
        if definition is not None and values.may_set(actor, definition):
            asked.append((definition, bool(item.get("required"))))
    return asked


def customer_asked_fields(form: RequestForm) -> list[tuple[TicketField, bool]]:
    """What a customer is asked on the form: its active customer-editable fields."""
    return [
        (d, required)
        for d, required in asked_fields(None, form)
        if d.visibility is FieldVisibility.CUSTOMER_EDITABLE
    ]


def form_items(actor: User, form: RequestForm) -> list[dict[str, Any]]:
    """The form's fields as the API shows them to ``actor``: all for staff; for customers
    those they are asked."""
    if policies.is_staff(actor):
        return [{"key": i["key"], "required": bool(i.get("required"))} for i in form.items]
    return [{"key": d.key, "required": required} for d, required in asked_fields(actor, form)]


def team_names(forms: list[RequestForm]) -> dict[int, str]:
    ids = {f.team_id for f in forms if f.team_id is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(Team.id, Team.name).where(Team.id.in_(ids))).all())


# -- opening a ticket with a form -----------------------------------------------------------


def check_ticket_form(ref: Any, *, current: int | None = None) -> RequestForm | None:
    """The form a new ticket (or a ticket changing form) names; None for none. InvalidInput at
    ``form``: an unknown one, or a retired one (a ticket keeps the retired form it holds)."""
    if ref is None or ref == "":
        return None
    form = find_form(ref)
    if form is None:
        raise InvalidInput("Unknown request form.", {"form": [f"No request form {ref!r}."]})
    if not form.active and form.id != current:
        raise InvalidInput(
            "That request form is retired.",
            {"form": [f"The form {form.name!r} is retired: choose another."]},
        )
    return form


def check_form_values(
    actor: User | None, form: RequestForm | None, sent: Mapping[str, Any]
) -> dict[str, Any]:
    """``values.check_values`` of what ``actor`` sent, and with a form: each of its required
    fields that ``actor`` is asked must be filled. Every wrong one at ``fields.<key>``."""
    errors: dict[str, list[str]] = {}
    try:
        clean = values.check_values(actor, sent)
    except InvalidInput as exc:
        errors = dict(exc.errors)
        # What was sent, for telling an empty field from a wrong one (those are named).
        clean = {k: v for k, v in sent.items() if v not in (None, "", [])}
    if form is not None:
        for definition, required in asked_fields(actor, form):
            key = f"fields.{definition.key}"
            if required and key not in errors and clean.get(definition.key) is None:
                errors[key] = [f"Required on the {form.name} form."]
    if errors:
        raise InvalidInput(INVALID, errors)
    return clean


# -- checks ------------------------------------------------------------------------------------


def _check_items(value: Any, existing: RequestForm | None, errors: dict[str, list[str]]) -> Any:
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        errors["fields"] = [f"A list of at most {MAX_ITEMS} fields."]
        return []
    definitions = values.defined_fields(active_only=False)
    held = {i["key"] for i in existing.items} if existing else set()
    items: list[dict[str, Any]] = []
    problems: list[str] = []
    for raw in value:
        item = raw if isinstance(raw, Mapping) else {"key": raw}
        key = item.get("key")
        definition = definitions.get(key) if isinstance(key, str) else None
        if definition is None:
            problems.append(f"Unknown field {key!r}.")
        elif not definition.active and key not in held:
            problems.append(f"The field {key!r} is inactive.")
        elif any(i["key"] == key for i in items):
            problems.append(f"The field {key!r} is listed twice.")
        else:
            items.append({"key": key, "required": bool(item.get("required"))})
    if problems:
        errors["fields"] = problems
    return items


def _check_team(value: Any, errors: dict[str, list[str]]) -> int | None:
    if value is None or value == "":
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 < value <= MAX_ID
        or db.session.get(Team, value) is None
    ):
        errors["team_id"] = [f"No team {value}."]
        return None
    return value


def _text(fields: Mapping[str, Any], name: str, limit: int, errors: dict[str, list[str]]) -> str:
    text = fields[name].strip() if isinstance(fields[name], str) else ""
    if len(text) > limit or (name == "name" and not text):
        errors[name] = [f"1 to {limit} characters." if name == "name" else f"At most {limit}."]
    return text


def check_form(fields: Mapping[str, Any], existing: RequestForm | None) -> dict[str, Any]:
    """The form an admin sent, cleaned (only what was sent); InvalidInput naming each wrong
    part. The key is fixed once the form is made (links and API clients name it)."""
    allowed = WRITABLE if existing else (*WRITABLE, "key")
    errors: dict[str, list[str]] = {}
    for name in sorted(set(fields) - set(allowed)):
        errors[name] = ["Fixed once the form is made." if name == "key" else "Unknown field."]
    clean: dict[str, Any] = {}
    if "key" in fields and existing is None:
        key = fields["key"]
        if not isinstance(key, str) or not values.KEY.match(key):
            errors["key"] = [f"A key is {values.KEY_RULE}."]
        clean["key"] = key
    if "name" in fields:
        clean["name"] = _text(fields, "name", MAX_NAME, errors)
    if "description" in fields:
        clean["description"] = _text(fields, "description", MAX_DESCRIPTION, errors)
    if "active" in fields:
        clean["active"] = bool(fields["active"])
    if "position" in fields:
        position = fields["position"]
        if isinstance(position, bool) or not isinstance(position, int):
            errors["position"] = ["Must be a whole number."]
        elif not 0 <= position <= MAX_POSITION:
            errors["position"] = [f"Between 0 and {MAX_POSITION}."]
        clean["position"] = position
    if "team_id" in fields:
        clean["team_id"] = _check_team(fields["team_id"], errors)
    if "fields" in fields:
        clean["items"] = _check_items(fields["fields"], existing, errors)
    if errors:
        raise InvalidInput(INVALID, errors)
    return clean


def _apply(form: RequestForm, clean: dict[str, Any]) -> dict[str, list[Any]]:
    """Set what changed; the audit's ``{field: [before, after]}`` (the asked fields as
    ``fields``, their name in the API)."""
    changes = audit.diff({name: getattr(form, name) for name in clean}, clean)
    for name in changes:
        setattr(form, name, clean[name])
    return {("fields" if name == "items" else name): change for name, change in changes.items()}


def _duplicate(name: str, what: str) -> InvalidInput:
    return InvalidInput(INVALID, {name: [f"That {what} is taken."]})


def _check_unique(clean: dict[str, Any], form_id: int | None) -> None:
    for name in ("key", "name"):
        if name not in clean:
            continue
        stmt = select(RequestForm.id).where(getattr(RequestForm, name) == clean[name])
        if form_id is not None:
            stmt = stmt.where(RequestForm.id != form_id)
        if db.session.scalar(stmt) is not None:
            raise _duplicate(name, name)


def _flush(form: RequestForm) -> None:
    """Flush the form; a race past ``_check_unique`` is answered the same way."""
    with (
        duplicates_refused(RequestForm.key, lambda: _duplicate("key", "key")),
        duplicates_refused(RequestForm.name, lambda: _duplicate("name", "name")),
    ):
        db.session.add(form)
        db.session.flush()


# -- writing -----------------------------------------------------------------------------------


@rolls_back_on_error
def do_create_form(actor: User, fields: Mapping[str, Any]) -> RequestForm:
    require_admin(actor)
    missing = {name: ["Required."] for name in ("key", "name") if name not in fields}
    if missing:
        raise InvalidInput(INVALID, missing)
    clean = check_form(fields, None)
    _check_unique(clean, None)
    if "position" not in clean:
        clean["position"] = (db.session.scalar(select(func.max(RequestForm.position))) or 0) + 1
    form = RequestForm(description="", active=True, team_id=None, items=[])
    changes = _apply(form, clean)
    _flush(form)
    audit.record(actor, "request_form.created", audit_target(form), changes)
    db.session.commit()
    return form


@rolls_back_on_error
def do_update_form(actor: User, form_id: int, fields: Mapping[str, Any]) -> RequestForm:
    form = access_form_by_id(actor, form_id)
    clean = check_form(fields, form)
    _check_unique(clean, form.id)
    changes = _apply(form, clean)
    if changes:
        _flush(form)
        audit.record(actor, "request_form.updated", audit_target(form), changes)
    db.session.commit()
    return form


def in_use(form: RequestForm) -> bool:
    return bool(db.session.scalar(select(exists().where(Ticket.form_id == form.id))))


def _in_use() -> InvalidInput:
    return InvalidInput(
        "Tickets were filed with this form: retire it instead.",
        {"active": ["Tickets were filed with this form; retire it instead."]},
    )


@rolls_back_on_error
def do_delete_form(actor: User, form_id: int) -> None:
    form = access_form_by_id(actor, form_id)
    if in_use(form):
        raise _in_use()
    audit.record(actor, "request_form.deleted", audit_target(form), {"key": [form.key, None]})
    db.session.delete(form)
    try:
        db.session.flush()
    except IntegrityError:  # a ticket filed with it meanwhile (the foreign key refuses)
        raise _in_use() from None
    db.session.commit()


def forms_asking(key: str) -> list[str]:
    """The names of the forms that ask the field ``key`` (it cannot be deleted meanwhile)."""
    return [
        f.name
        for f in db.session.scalars(select(RequestForm).order_by(RequestForm.name))
        if any(i["key"] == key for i in f.items)
    ]
