"""The embedded SQLite default under several writers: a write that a read-only request has to
make (a followed suggestion link records that it was followed) waits for the write lock like any
other writer, instead of failing with "database is locked" when another process wrote since the
request's first read. Always on SQLite: the lock is SQLite's own."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, insert, select

from autocrm import create_app, database
from autocrm.extensions import db
from autocrm.people.models import Team
from tests.conftest import app_config


def test_a_write_in_a_read_only_request_survives_a_concurrent_writer(
    tmp_path: Path, redis_url: str
) -> None:
    app = create_app(app_config(f"sqlite:///{tmp_path / 'shared.db'}", redis_url))
    with app.app_context():
        upgrade()
        another_process = db.engine.connect()
        with database.read_only():
            db.session.scalar(select(func.count()).select_from(Team))  # the request's first read
            with another_process.begin():
                another_process.execute(insert(Team).values(name="Written meanwhile"))

            with database.writing():
                db.session.add(Team(name="Recorded by the request"))
                db.session.commit()

        another_process.close()
        names = set(db.session.scalars(select(Team.name)))
        assert {"Written meanwhile", "Recorded by the request"} <= names
        db.session.remove()
        db.engine.dispose()
