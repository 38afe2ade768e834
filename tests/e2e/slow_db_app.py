"""Test-only server: the production entry point plus one route that keeps a database call
busy (``GET /_test/pg-sleep?seconds=2`` runs ``SELECT pg_sleep(2)`` on PostgreSQL).

Run as ``python -m tests.e2e.slow_db_app``. ``autocrm.server`` is imported first: it
monkey-patches and makes psycopg cooperative exactly as in production, then builds the app.
"""

from autocrm import server  # first: it monkey-patches before the app is imported

# isort: split
from flask import request
from sqlalchemy import text

from autocrm.extensions import db


@server.app.get("/_test/pg-sleep")
def pg_sleep() -> dict[str, float]:
    seconds = float(request.args.get("seconds", "2"))
    db.session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
    db.session.rollback()
    return {"slept": seconds}


if __name__ == "__main__":
    server.main()
