"""Scratch databases for test sessions: an SQLite file, or a uniquely named PostgreSQL
database created for the block and dropped afterwards, pass or fail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def postgres_database(server_url: str, name: str) -> Iterator[str]:
    """The URL of a new database ``name`` on the server of ``server_url``."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_database(server_url: str | None, name: str, directory: Path) -> Iterator[str]:
    """PostgreSQL when a server URL is given (``AUTOCRM_TEST_DATABASE_URL``), else SQLite."""
    if not server_url:
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    with postgres_database(server_url, name) as url:
        yield url
