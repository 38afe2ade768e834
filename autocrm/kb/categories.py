"""Knowledge-base categories: shown to every reader (they name no article), managed by admins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    func,
    select,
)

from autocrm import policies
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.kb.models import (
    KbCategory,
)
from autocrm.people.models import User
from autocrm.transaction import duplicates_refused, rolls_back_on_error

MAX_CATEGORY_NAME = 100


def list_categories() -> list[KbCategory]:
    """Categories are shown to every reader (they name no article)."""
    return list(
        db.session.scalars(select(KbCategory).order_by(KbCategory.position, KbCategory.name))
    )


def access_category_by_id(category_id: int) -> KbCategory:
    category = db.session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    return category


# -- categories --------------------------------------------------------------------------------


def _require_category_manager(actor: User) -> None:
    if not policies.can_manage_kb_categories(actor):
        raise Forbidden("Only admins manage knowledge-base categories.")


def _check_category_name(name: str, category_id: int | None = None) -> str:
    name = name.strip()
    if not name or len(name) > MAX_CATEGORY_NAME:
        raise InvalidInput("Invalid name.", {"name": [f"1 to {MAX_CATEGORY_NAME} characters."]})
    clash = select(KbCategory.id).where(func.lower(KbCategory.name) == name.lower())
    if category_id is not None:
        clash = clash.where(KbCategory.id != category_id)
    if db.session.scalar(clash) is not None:
        raise _name_taken()
    return name


def _name_taken() -> InvalidInput:
    return InvalidInput("Name taken.", {"name": ["A category with this name exists."]})


@rolls_back_on_error
def do_create_category(actor: User, *, name: str, position: int = 0) -> KbCategory:
    _require_category_manager(actor)
    category = KbCategory(name=_check_category_name(name), position=position)
    db.session.add(category)
    with duplicates_refused(KbCategory.name, _name_taken):
        db.session.commit()
    return category


@rolls_back_on_error
def do_update_category(actor: User, category_id: int, changes: dict[str, Any]) -> KbCategory:
    _require_category_manager(actor)
    category = db.session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    if "name" in changes:
        category.name = _check_category_name(changes["name"], category_id)
    if "position" in changes:
        category.position = changes["position"]
    with duplicates_refused(KbCategory.name, _name_taken):
        db.session.commit()
    return category


@rolls_back_on_error
def do_reorder_categories(actor: User, category_ids: list[int]) -> list[KbCategory]:
    """Put the categories in the order of ``category_ids`` (every category, each once)."""
    _require_category_manager(actor)
    categories = {c.id: c for c in db.session.scalars(select(KbCategory))}
    if sorted(category_ids) != sorted(categories):
        raise InvalidInput(
            "The order must name every category once.", {"order": ["Reload and try again."]}
        )
    for position, category_id in enumerate(category_ids):
        categories[category_id].position = position
    db.session.commit()
    return [categories[i] for i in category_ids]
