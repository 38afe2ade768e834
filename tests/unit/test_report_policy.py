"""Who may see which team's performance report (autocrm.policies)."""

from __future__ import annotations

import pytest

from autocrm import policies
from autocrm.people.models import Role, Team, User


def user(role: Role, user_id: int) -> User:
    return User(id=user_id, role=role, email=f"u{user_id}@example.test", name="U")


@pytest.mark.parametrize(
    ("role", "leads", "expected"),
    [
        (Role.ADMIN, False, True),  # admins see every team
        (Role.ADMIN, True, True),
        (Role.AGENT, True, True),  # a lead sees their team
        (Role.AGENT, False, False),  # members and other agents see none
        (Role.CUSTOMER, True, False),  # never a customer, even if named lead
        (Role.CUSTOMER, False, False),
    ],
)
def test_can_view_team_report(role, leads, expected):
    actor = user(role, 7)
    team = Team(id=1, name="Alpha", lead_id=7 if leads else 8)
    assert policies.can_view_team_report(actor, team) is expected
