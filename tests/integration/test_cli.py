"""``flask create-user`` and ``flask seed-demo``.

The commands use ``db.session``, which the ``db_session`` fixture binds to a per-test transaction
that is rolled back, so nothing here leaks into other tests.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, func, select

from autocrm.demo import seed
from autocrm.demo.logins import DEMO_LOGINS
from autocrm.kb.models import Article, KbCategory
from autocrm.macros.models import Macro
from autocrm.people.models import Role, Team, User
from autocrm.security import verify_password
from autocrm.tickets.models import Ticket

LOGIN_LINE = re.compile(r"^\s+(admin|agent|customer)\s+(\S+@\S+)\s+(\S+)\s*$")


@pytest.fixture
def cli(app, db_session):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))

    return invoke


def user_by_email(session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# -- create-user ----------------------------------------------------------------------------------


def test_create_user_in_a_team(cli, db_session, factory):
    team = factory.team("Support")
    team_id = team.id

    result = cli(
        "create-user",
        "--email",
        "New.Agent@Example.test",
        "--password",
        "long enough pw",
        "--role",
        "agent",
        "--name",
        "Nia",
        "--team",
        "Support",
    )

    assert result.exit_code == 0, result.output
    user = user_by_email(db_session, "new.agent@example.test")
    assert user is not None
    assert (user.role, user.name, user.active) == (Role.AGENT, "Nia", True)
    assert user.team_ids == [team_id]
    assert verify_password(user.password_hash, "long enough pw")
    assert "new.agent@example.test" in result.output
    assert f"id {user.id}" in result.output


def test_create_user_without_team(cli, db_session):
    result = cli(
        "create-user",
        "--email",
        "boss@example.test",
        "--password",
        "long enough pw",
        "--role",
        "admin",
    )

    assert result.exit_code == 0, result.output
    user = user_by_email(db_session, "boss@example.test")
    assert (user.role, user.name, user.team_ids) == (Role.ADMIN, "boss", [])


def test_created_user_can_log_in(cli, client, fresh_login_limit):
    result = cli(
        "create-user",
        "--email",
        "cli@example.test",
        "--password",
        "long enough pw",
        "--role",
        "customer",
    )
    assert result.exit_code == 0, result.output

    response = client.post(
        "/api/auth/token", json={"email": "cli@example.test", "password": "long enough pw"}
    )

    assert response.status_code == 200, response.json


def test_create_user_with_taken_email_fails_clearly(cli, db_session, factory):
    factory.customer(email="taken@example.test", name="Original")

    result = cli(
        "create-user",
        "--email",
        "TAKEN@example.test",
        "--password",
        "long enough pw",
        "--role",
        "admin",
    )

    assert result.exit_code != 0
    assert "already in use" in result.output.lower()
    assert "Traceback" not in result.output
    db_session.rollback()  # what ending the process would do
    users = db_session.scalars(select(User).where(User.email == "taken@example.test")).all()
    assert [(u.name, u.role) for u in users] == [("Original", Role.CUSTOMER)]


def test_create_user_with_short_password_fails_clearly(cli, db_session):
    result = cli(
        "create-user", "--email", "short@example.test", "--password", "short", "--role", "agent"
    )

    assert result.exit_code != 0
    assert "password" in result.output.lower()
    db_session.rollback()
    assert user_by_email(db_session, "short@example.test") is None


def test_create_user_in_unknown_team_fails_and_creates_nothing(cli, db_session, factory):
    factory.team("Support")
    users_before = count(db_session, User)

    result = cli(
        "create-user",
        "--email",
        "lost@example.test",
        "--password",
        "long enough pw",
        "--role",
        "agent",
        "--team",
        "Nonexistent",
    )

    assert result.exit_code != 0
    assert "Nonexistent" in result.output
    assert "Traceback" not in result.output
    db_session.rollback()  # what ending the process would do: only commits survive it
    assert user_by_email(db_session, "lost@example.test") is None
    assert count(db_session, User) == users_before


def test_customer_cannot_be_put_in_a_team(cli, db_session, factory):
    factory.team("Support")

    result = cli(
        "create-user",
        "--email",
        "cust@example.test",
        "--password",
        "long enough pw",
        "--role",
        "customer",
        "--team",
        "Support",
    )

    assert result.exit_code != 0
    assert "customer" in result.output.lower()
    db_session.rollback()
    assert user_by_email(db_session, "cust@example.test") is None


def test_create_user_rejects_unknown_role(cli, db_session):
    result = cli(
        "create-user",
        "--email",
        "x@example.test",
        "--password",
        "long enough pw",
        "--role",
        "superuser",
    )

    assert result.exit_code != 0
    assert "superuser" in result.output
    assert user_by_email(db_session, "x@example.test") is None


# -- seed-demo ------------------------------------------------------------------------------------


def printed_logins(output: str) -> list[tuple[str, str, str]]:
    return [m.groups() for line in output.splitlines() if (m := LOGIN_LINE.match(line))]


def test_seed_demo_loads_teams_people_and_tickets_in_several_states(cli, db_session):
    result = cli("seed-demo")

    assert result.exit_code == 0, result.output
    assert {t.name for t in db_session.scalars(select(Team))} == {"Support", "Billing"}
    people = {u.email: u for u in db_session.scalars(select(User))}
    assert set(people) == {login.email for login in DEMO_LOGINS}
    assert {u.role.value for u in people.values()} == {"admin", "agent", "customer"}
    for team in db_session.scalars(select(Team)):
        assert team.lead_id in team.member_ids
    tickets = list(db_session.scalars(select(Ticket)))
    assert len(tickets) >= 5
    statuses = {t.status for t in tickets}
    assert {"new", "open", "pending", "solved", "closed"} <= statuses, statuses
    assert any(t.team_id is None for t in tickets)  # something in the triage queue
    # Example Corp holds both demo customers; the first manages it
    customers = [u for u in people.values() if u.role.value == "customer"]
    assert {u.organization.name for u in customers} == {"Example Corp"}
    assert [u.email for u in customers if u.organization_manager] == ["customer@example.com"]
    assert customers[0].organization.domains == ["example.com"]
    macros = {m.title: m for m in db_session.scalars(select(Macro))}
    assert set(macros) == {
        "Ask for screenshot",
        "Solved: thanks",
        "Escalate to Billing",
        "Password reset instructions",
    }
    assert macros["Ask for screenshot"].actions["transition"] == "wait_on_customer"
    assert macros["Escalate to Billing"].actions["priority"] == "high"


def test_seed_demo_prints_logins_that_work(cli, client, fresh_login_limit):
    result = cli("seed-demo")
    assert result.exit_code == 0, result.output

    logins = printed_logins(result.output)

    assert {role for role, _, _ in logins} == {"admin", "agent", "customer"}
    assert len(logins) == len(DEMO_LOGINS)
    for role, email, password in logins:
        token = client.post("/api/auth/token", json={"email": email, "password": password})
        assert token.status_code == 200, (email, token.json)
        me = client.get(
            "/api/users/me", headers={"Authorization": f"Bearer {token.json['access_token']}"}
        )
        assert me.json["role"] == role


def test_seed_demo_twice_does_not_duplicate(cli, db_session):
    first = cli("seed-demo")
    assert first.exit_code == 0, first.output
    counts = {m.__name__: count(db_session, m) for m in (User, Team, Ticket)}

    second = cli("seed-demo")

    assert second.exit_code == 0, second.output
    assert {m.__name__: count(db_session, m) for m in (User, Team, Ticket)} == counts
    assert "already loaded" in second.output
    assert printed_logins(second.output) == printed_logins(first.output)


def test_seed_demo_after_create_user_prints_only_working_logins(cli, client, fresh_login_limit):
    created = cli(
        "create-user",
        "--email",
        "owner@example.test",
        "--password",
        "long enough pw",
        "--role",
        "admin",
    )
    assert created.exit_code == 0, created.output

    result = cli("seed-demo")

    assert result.exit_code == 0, result.output
    for _, email, password in printed_logins(result.output):
        token = client.post("/api/auth/token", json={"email": email, "password": password})
        assert token.status_code == 200, (email, token.json)


def test_seed_demo_tops_up_a_demo_seeded_before_the_help_center(cli, db_session):
    assert cli("seed-demo").exit_code == 0
    # A demo database from before the knowledge base and the report history existed.
    db_session.execute(delete(Article))
    db_session.execute(delete(KbCategory))
    db_session.commit()

    again = cli("seed-demo")

    assert again.exit_code == 0, again.output
    assert count(db_session, Article) == len(seed.DEMO_ARTICLES)
    assert count(db_session, KbCategory) == len(seed.DEMO_KB_CATEGORIES)
