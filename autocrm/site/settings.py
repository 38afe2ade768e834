"""Reading and writing site-wide choices. Writers are domain services that own the choice
(``autocrm.people.twofactor`` for the two-factor policy): they check who may change it, record
the audit log and commit; this module only reads and stages rows."""

from __future__ import annotations

from typing import Any

from autocrm.extensions import db
from autocrm.site.models import SiteSetting

STAFF_TWO_FACTOR_REQUIRED = "staff_two_factor_required"
SIGNUP_POLICY = "signup_policy"  # autocrm.people.intake
CUSTOMER_MAX_PRIORITY = "customer_max_priority"  # autocrm.tickets.priority_cap
DEFAULTS: dict[str, Any] = {
    STAFF_TWO_FACTOR_REQUIRED: False,
    SIGNUP_POLICY: {"mode": "open", "domains": []},
    CUSTOMER_MAX_PRIORITY: "high",
}


def value(key: str) -> Any:
    row = db.session.get(SiteSetting, key)
    return DEFAULTS[key] if row is None else row.value


def stage(key: str, new_value: Any) -> Any:
    """Put ``new_value`` in the session (the caller commits); returns the value before."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown site setting {key!r}")
    row = db.session.get(SiteSetting, key)
    before = DEFAULTS[key] if row is None else row.value
    if row is None:
        db.session.add(SiteSetting(key=key, value=new_value))
    else:
        row.value = new_value
    return before
