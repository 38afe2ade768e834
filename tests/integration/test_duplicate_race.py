"""Two admins creating the same team, user or category at once: the loser gets the same 422
as a sequential duplicate, never a 500 from the database's unique constraint.

Real threads, each request in its own app context and database session, committing for real
(cleaned up afterwards), so the check-then-insert race is the one production runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.kb.models import KbCategory
from autocrm.security import issue_token
from tests import processes
from tests.factories import Factory

RACERS = 10


@pytest.fixture
def admin_token(app: Any) -> Iterator[str]:
    """A committed admin's bearer token; everything committed is deleted afterwards."""
    with app.app_context():
        started = utcnow()
        with processes.committed_data():
            admin = Factory(db.session).admin()
            db.session.commit()
            token = issue_token(admin.id, admin.password_hash)
            db.session.rollback()  # SQLite: hold no lock while the threads write
            try:
                yield token
            finally:
                db.session.rollback()
                db.session.execute(
                    delete(AdminAuditEntry).where(AdminAuditEntry.created_at >= started)
                )
                db.session.execute(delete(KbCategory).where(KbCategory.name.like("race-%")))
                db.session.commit()


def race(app: Any, token: str, url: str, body: Callable[[int], dict[str, Any]]) -> list[Any]:
    """POST to ``url`` from RACERS threads released at the same moment."""
    barrier = threading.Barrier(RACERS)
    responses: list[Any] = [None] * RACERS

    def post(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        responses[i] = client.post(url, json=body(i), headers={"Authorization": f"Bearer {token}"})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


@pytest.mark.parametrize(
    ("url", "body", "field", "message"),
    [
        ("/api/teams", lambda i: {"name": "race-team"}, "name", "A team with this name exists."),
        (
            "/api/users",
            lambda i: {"email": "race@example.com", "password": "race-pass-123", "role": "agent"},
            "email",
            "A user with this email exists.",
        ),
        (
            "/api/kb/categories",
            lambda i: {"name": "race-category"},
            "name",
            "A category with this name exists.",
        ),
    ],
    ids=["team", "user", "category"],
)
def test_simultaneous_duplicates_lose_with_the_duplicate_422(
    app, admin_token, url, body, field, message
):
    # The propagated exception would be raised in the thread; answer 500 as production does.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        responses = race(app, admin_token, url, body)
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [422] * (RACERS - 1), [r.get_data(as_text=True) for r in responses]
    for response in responses:
        if response.status_code == 422:
            assert response.json["errors"] == {field: [message]}
