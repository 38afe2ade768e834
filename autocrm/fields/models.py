"""Custom ticket field definitions, and the request forms that ask them.

A field's ``key`` names its value in ``tickets.custom_fields`` (a JSON object) and in the API
(``fields.<key>``); it never changes once made, so values and rules that name it stay valid.
``options`` (dropdown and multi-select) is an ordered list of ``{value, label, retired}``: a
retired option is offered no more, but tickets that hold it keep it and show its label.

A request form ("Bug report", "Billing question") is what a customer picks when asking: it
names the fields asked, in order, each required or optional on it, and the team its tickets
go to. ``items`` is an ordered list of ``{key, required}`` (field keys never change); a
retired form is offered no more, and tickets filed with it keep it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import enum_values


class FieldType(enum.StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"  # a whole number
    DECIMAL = "decimal"  # stored as its text ("12.50"), exact
    DATE = "date"  # ISO date, "2026-12-06"
    CHECKBOX = "checkbox"
    DROPDOWN = "dropdown"  # one option's value
    MULTI_SELECT = "multi_select"  # a list of option values

    @property
    def has_options(self) -> bool:
        return self in (FieldType.DROPDOWN, FieldType.MULTI_SELECT)


class FieldVisibility(enum.StrEnum):
    STAFF = "staff"  # only agents and admins see or set it
    CUSTOMER_VISIBLE = "customer_visible"  # the requester sees it; staff set it
    CUSTOMER_EDITABLE = "customer_editable"  # the requester sees and sets it

    @property
    def customer_sees(self) -> bool:
        return self is not FieldVisibility.STAFF


class TicketField(Model):
    __tablename__ = "ticket_fields"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[FieldType] = mapped_column(
        Enum(FieldType, native_enum=False, length=20, values_callable=enum_values)
    )
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    help_text: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[FieldVisibility] = mapped_column(
        Enum(FieldVisibility, native_enum=False, length=20, values_callable=enum_values),
        default=FieldVisibility.STAFF,
    )
    # Transitions into a solved-category state are refused while it is empty (the
    # ``required_fields_filled`` guard).
    required_to_solve: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)
    # Inactive: hidden from forms and refused in writes; values already on tickets are kept.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def option_labels(self) -> dict[str, str]:
        return {o["value"]: o["label"] for o in self.options}

    def offered_options(self) -> list[dict[str, Any]]:
        return [o for o in self.options if not o.get("retired")]

    def __repr__(self) -> str:
        return f"<TicketField {self.key} {self.type}>"


class RequestForm(Model):
    __tablename__ = "request_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Names the form in the API (``form``: its id or key) and in the portal's links.
    key: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    # The team new tickets of the form go to (unless staff name another); None: no team.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # The fields asked, in order: ``[{"key": str, "required": bool}]``.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def required_keys(self) -> set[str]:
        return {item["key"] for item in self.items if item.get("required")}

    def __repr__(self) -> str:
        return f"<RequestForm {self.key}>"
