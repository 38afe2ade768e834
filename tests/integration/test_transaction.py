"""A ``do_*`` service that fails leaves nothing of its half-done work in the session: the
caller (a page re-rendering its form, a socket handler) goes on from the database as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from autocrm import aftercommit
from autocrm.errors import InvalidInput
from autocrm.people.models import Team, User
from autocrm.transaction import rolls_back_on_error


def _failing_service(session, user: User):
    @rolls_back_on_error
    def do_half_then_fail() -> None:
        user.name = "Half-renamed"
        session.add(Team(name="Half-made"))
        session.flush()
        raise InvalidInput("Refused half-way.", {"name": ["Refused."]})

    return do_half_then_fail


def _teams_named(session, name: str) -> int:
    return session.scalar(select(func.count()).select_from(Team).where(Team.name == name))


def test_a_failing_service_rolls_back_what_it_changed(db_session, factory):
    user = factory.agent(name="Ann")
    do_half_then_fail = _failing_service(db_session, user)

    with pytest.raises(InvalidInput):
        do_half_then_fail()
    db_session.commit()  # a caller that goes on and commits its own work

    db_session.expire_all()
    assert db_session.get(User, user.id).name == "Ann"
    assert _teams_named(db_session, "Half-made") == 0


def test_inside_a_savepoint_only_the_savepoint_is_undone(db_session, factory):
    """Bulk changes and rule actions run each step in a savepoint: a failing step must not
    roll back the steps before it."""
    user = factory.agent(name="Ann")
    do_half_then_fail = _failing_service(db_session, user)
    db_session.add(Team(name="Done before"))
    db_session.flush()

    with pytest.raises(InvalidInput), aftercommit.savepoint():
        do_half_then_fail()
    db_session.commit()

    db_session.expire_all()
    assert _teams_named(db_session, "Done before") == 1
    assert _teams_named(db_session, "Half-made") == 0
    assert db_session.get(User, user.id).name == "Ann"
