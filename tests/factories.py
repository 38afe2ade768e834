"""Test data built through the service layer, so it is shaped exactly like real data."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from autocrm.errors import DomainError
from autocrm.events import dispatch as events
from autocrm.events.models import OutboxEvent
from autocrm.people import teams, users
from autocrm.people.models import Role, Team, User
from autocrm.security import issue_token
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def drain(session: Any, rounds: int = 10, *, ticket_id: int | None = None) -> int:
    """Handle outbox events as a worker would, including the ones handling creates (only the
    events of ``ticket_id``, when given)."""
    handled = 0
    pending = select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None))
    if ticket_id is not None:
        pending = pending.where(OutboxEvent.ticket_id == ticket_id)
    for _ in range(rounds):
        ids = session.scalars(pending.order_by(OutboxEvent.created_at)).all()
        if not ids:
            return handled
        for event_id in ids:
            handled += events.do_handle_event(event_id)
    raise AssertionError("events keep causing events")


def refusal(check: Callable[..., Any], *args: Any) -> DomainError:
    """What a service's ``check_*`` answers to ``args``: the error every edge must pass on."""
    try:
        check(*args)
    except DomainError as exc:
        return exc
    raise AssertionError(f"{check.__name__} accepted {args!r}")


class Factory:
    def __init__(self, session: Any) -> None:
        self.session = session
        self._creator: User | None = None

    def user(
        self,
        role: Role | str = Role.CUSTOMER,
        *,
        teams_: list[Team] = (),  # type: ignore[assignment]
        email: str | None = None,
        name: str | None = None,
        active: bool = True,
    ) -> User:
        n = next(_seq)
        user = users.create_user(email or f"user{n}@example.test", PASSWORD, Role(role), name)
        user.active = active
        for team in teams_:
            teams.add_member(team, user)
        self.session.commit()
        return user

    def customer(self, **kw: Any) -> User:
        return self.user(Role.CUSTOMER, **kw)

    def agent(self, *team_list: Team, **kw: Any) -> User:
        return self.user(Role.AGENT, teams_=list(team_list), **kw)

    def admin(self, **kw: Any) -> User:
        return self.user(Role.ADMIN, **kw)

    def team(self, name: str | None = None, lead: User | None = None) -> Team:
        team = teams.create_team(name or f"Team {next(_seq)}", lead_id=lead.id if lead else None)
        self.session.commit()
        return team

    def ticket(
        self,
        requester: User,
        *,
        by: User | None = None,
        team: Team | None = None,
        subject: str = "Printer on fire",
        priority: Priority = Priority.NORMAL,
        **kw: Any,
    ) -> Ticket:
        """A ticket opened by ``by`` (an admin by default, so any field may be set)."""
        if by is None and self._creator is None:
            self._creator = self.admin()
        creator = by or self._creator
        staff_fields = {"requester_id": requester.id, "team_id": team.id if team else None, **kw}
        if not creator.role.is_staff:
            staff_fields = {}
        return tickets.do_create_ticket(
            creator,
            subject=subject,
            description="It is on fire.",
            priority=priority,
            **staff_fields,
        )


class ApiClient:
    """The Flask test client with a bearer token for one user."""

    def __init__(self, client: FlaskClient, user: User) -> None:
        self.client = client
        self.user = user
        self.headers = {"Authorization": f"Bearer {issue_token(user.id, user.password_hash)}"}

    def _call(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> TestResponse:
        return getattr(self.client, method)(url, headers={**self.headers, **(headers or {})}, **kw)

    def get(self, url: str, **kw: Any) -> TestResponse:
        return self._call("get", url, **kw)

    def post(self, url: str, **kw: Any) -> TestResponse:
        return self._call("post", url, **kw)

    def patch(self, url: str, **kw: Any) -> TestResponse:
        return self._call("patch", url, **kw)

    def put(self, url: str, **kw: Any) -> TestResponse:
        return self._call("put", url, **kw)

    def delete(self, url: str, **kw: Any) -> TestResponse:
        return self._call("delete", url, **kw)


def assert_error(response: TestResponse, status: int) -> dict[str, Any]:
    """``response`` is the documented error: that status and the one JSON error shape
    ``{code, status, message, errors}``."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body is not None, "errors are JSON"
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)
    return body


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str = "/login") -> str:
    """The CSRF token a page's form carries (web tests post it back like a browser)."""
    match = CSRF_FIELD.search(client.get(url).get_data(as_text=True))
    assert match, f"no CSRF field on {url}"
    return match.group(1)


def web_login(client: FlaskClient, user: User, password: str = PASSWORD) -> None:
    """Log in to the web pages with the session cookie, as a browser does."""
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
