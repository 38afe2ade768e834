"""A dropdown field's expression index is built by a worker after the admin's commit, never in
the request (on PostgreSQL ``CREATE INDEX CONCURRENTLY``, which cannot run inside the rolled-back
test transaction): these tests commit for real (``tests/processes.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, text

from autocrm.extensions import db
from autocrm.fields import indexes, values
from autocrm.fields.models import FieldType, FieldVisibility, TicketField
from autocrm.people.models import User
from tests import processes
from tests.factories import ApiClient
from tests.processes import snapshot, wait_for

PRODUCTS = [{"value": "printer", "label": "Printer"}, {"value": "fax", "label": "Fax"}]


def fresh_key(stem: str) -> str:
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def field_indexes() -> dict[str, bool]:
    """The fields' indexes on ``tickets`` by name: is each valid."""
    return snapshot(lambda: indexes.existing(db.session.connection()))


def definition(name: str) -> str:
    """The index's SQL as the database keeps it."""
    if db.engine.dialect.name == "postgresql":
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    else:
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    return snapshot(lambda: str(db.session.scalar(text(query), {"name": name})))


@pytest.fixture
def cleanup(app: Flask) -> Iterator[list[str]]:
    """Keys of fields a test commits: afterwards their rows and indexes go (pass or fail)."""
    keys: list[str] = []
    with app.app_context():
        yield keys
        db.session.rollback()
        db.session.execute(delete(TicketField).where(TicketField.key.in_(keys)))
        db.session.commit()
        with db.engine.begin() as conn:
            for key in keys:
                conn.execute(text(f"DROP INDEX IF EXISTS {values.index_name(key)}"))


def dropdown(key: str, *, active: bool = True) -> None:
    db.session.add(
        TicketField(
            key=key,
            label=key,
            type=FieldType.DROPDOWN,
            options=PRODUCTS,
            help_text="",
            visibility=FieldVisibility.STAFF,
            required_to_solve=False,
            active=active,
            position=1,
        )
    )
    db.session.commit()


def test_a_build_makes_what_is_missing_replaces_what_is_invalid_and_drops_what_is_unused(
    app: Flask, cleanup: list[str]
) -> None:
    """Run here (no worker yet in this module), as the worker or beat runs it."""
    built, broken, inactive, deleted = (fresh_key(s) for s in ("built", "broken", "off", "gone"))
    cleanup += [built, broken, inactive, deleted]
    postgresql = db.engine.dialect.name == "postgresql"
    with processes.committed_data():
        desk = processes.staffed_team(agents=1)
        processes.open_ticket(desk)
        dropdown(built)
        dropdown(broken)
        dropdown(inactive, active=False)
        db.session.remove()
        with db.engine.begin() as conn:
            conn.execute(text(values.index_sql(inactive, conn.dialect.name)))
            # The index of a field deleted while no worker could drop it.
            conn.execute(text(f"CREATE INDEX {values.index_name(deleted)} ON tickets (id)"))
        if postgresql:
            # What a failed CREATE INDEX CONCURRENTLY leaves: an INVALID index under the name
            # (here it divides by zero on the ticket), which IF NOT EXISTS alone would keep.
            autocommit = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with autocommit as conn, pytest.raises(Exception, match="division by zero"):
                conn.execute(
                    text(
                        f"CREATE INDEX CONCURRENTLY {values.index_name(broken)}"
                        " ON tickets ((1 / (id - id)))"
                    )
                )
            assert field_indexes()[values.index_name(broken)] is False

        assert indexes.do_build_indexes() == {
            "built": 2,
            "dropped": 2 if postgresql else 1,
        }

        found = field_indexes()
        for key in (built, broken, inactive):
            assert found[values.index_name(key)] is True, key
            assert key in definition(values.index_name(key))
        assert values.index_name(deleted) not in found
        assert indexes.do_build_indexes() == {"built": 0, "dropped": 0}


@pytest.fixture(scope="module")
def worker(
    app: Any, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log_dir: Path = tmp_path_factory.mktemp("field-indexes")
    with processes.worker_and_beat(database_url, redis_url, log_dir):
        yield


def test_a_worker_builds_a_new_dropdowns_index_after_commit_and_drops_it_with_the_field(
    app: Flask, worker: None, cleanup: list[str]
) -> None:
    key = fresh_key("product")
    cleanup.append(key)
    name = values.index_name(key)
    with processes.committed_data():
        desk = processes.staffed_team(agents=1)
        admin = ApiClient(app.test_client(), db.session.get_one(User, desk.admin_id))
        db.session.rollback()
        response = admin.post(
            "/api/ticket-fields",
            json={"key": key, "label": "Product", "type": "dropdown", "options": PRODUCTS},
        )
        assert response.status_code == 201, response.get_json()
        field_id = response.get_json()["id"]
        ticket_id = processes.open_ticket(desk, fields={key: "printer"})
        # The filter answers whether the index is there yet or not.
        listed = admin.get(f"/api/tickets?field.{key}=printer")
        assert [t["id"] for t in listed.get_json()["items"]] == [ticket_id]

        found = wait_for(field_indexes, lambda found: found.get(name) is True, timeout=30)
        assert found.get(name) is True, f"no valid index {name} within 30 s: {found}"
        assert key in definition(name)
        listed = admin.get(f"/api/tickets?field.{key}=printer")
        assert [t["id"] for t in listed.get_json()["items"]] == [ticket_id]

        # A field in use cannot be deleted; deleting one no ticket has a value for drops its
        # index.
        assert admin.delete(f"/api/ticket-fields/{field_id}").status_code == 422
        unused = fresh_key("unused")
        cleanup.append(unused)
        unused_name = values.index_name(unused)
        created = admin.post(
            "/api/ticket-fields",
            json={"key": unused, "label": "Unused", "type": "dropdown", "options": PRODUCTS},
        )
        assert created.status_code == 201, created.get_json()
        found = wait_for(field_indexes, lambda found: found.get(unused_name) is True, timeout=30)
        assert found.get(unused_name) is True, f"no valid index {unused_name} within 30 s"
        assert admin.delete(f"/api/ticket-fields/{created.get_json()['id']}").status_code == 200
        found = wait_for(field_indexes, lambda found: unused_name not in found, timeout=30)
        assert unused_name not in found, f"the index {unused_name} outlived its field by 30 s"
        assert found.get(name) is True, "the field in use keeps its index"


def test_beat_builds_the_indexes_too_so_a_lost_task_only_delays_one() -> None:
    import celeryconfig

    entry = celeryconfig.settings["beat_schedule"]["build-field-indexes"]
    assert entry["task"] == indexes.TASK
    # Not on the beat queue: a build can take minutes and must not hold up the ticks.
    assert indexes.TASK not in celeryconfig.settings["task_routes"]
