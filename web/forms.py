"""Reading what the pages' forms and filters send: helpers shared by several blueprints."""

from __future__ import annotations

from typing import Any

from api.schemas import MAX_ID
from autocrm.errors import DomainError


def parse_id(raw: str | None) -> int | None:
    """A row id picked from a list or typed in a filter; anything else (text, 0, a number no row
    can have) is None, for the caller to report at its field."""
    raw = (raw or "").strip()
    # isdecimal, not isdigit: "²" is a digit that int() refuses; and int() refuses over 4300
    # digits, so the length is checked first.
    return int(raw) if raw.isdecimal() and len(raw) <= 10 and 1 <= int(raw) <= MAX_ID else None


def parse_rating(raw: str | None) -> int | None:
    """A satisfaction rating from 1 to 5 picked in a form; anything else is None."""
    raw = (raw or "").strip()
    return int(raw) if raw.isdecimal() and len(raw) == 1 and 1 <= int(raw) <= 5 else None


MAX_PASSWORD = 1024


def new_password_errors(new: str, confirm: str) -> dict[str, list[str]]:
    """What is wrong with a new password typed twice in a form, by field, before the service
    checks its strength (``users.check_password``)."""
    if len(new) > MAX_PASSWORD:
        return {"new_password": [f"Use at most {MAX_PASSWORD} characters."]}
    if new != confirm:
        return {"confirm_password": ["The two new passwords do not match."]}
    return {}


def form_errors(exc: DomainError) -> dict[str, Any]:
    """A refusal's errors for a form: by field, or the message at ``_form`` (the top)."""
    return exc.errors or {"_form": [exc.message]}
