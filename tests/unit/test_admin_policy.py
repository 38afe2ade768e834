"""Who may manage people and teams and read the admin audit log (autocrm.policies)."""

from __future__ import annotations

import pytest

from autocrm import policies
from autocrm.people.models import Role, User


def user(role: Role) -> User:
    return User(id=7, role=role, email="u7@example.test", name="U", active=True)


@pytest.mark.parametrize(
    ("role", "expected"),
    [(Role.ADMIN, True), (Role.AGENT, False), (Role.CUSTOMER, False)],
)
def test_only_admins_read_the_audit_log_and_manage_people(role, expected):
    actor = user(role)
    assert policies.can_view_audit_log(actor) is expected
    assert policies.can_manage_users_and_teams(actor) is expected


@pytest.mark.parametrize(
    ("role", "expected"),
    [(Role.ADMIN, True), (Role.AGENT, True), (Role.CUSTOMER, False)],
)
def test_staff_list_teams(role, expected):
    assert policies.can_list_teams(user(role)) is expected
