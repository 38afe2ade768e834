"""The baseline for ``bench/api_bench.py``: a bare Flask app doing one INSERT or one SELECT.

Served by the same gunicorn settings as AutoCRM against the same database, so the ratio
AutoCRM / baseline shows what AutoCRM's own work costs (auth, validation, ORM, workflow, audit
trail, outbox, serialization) on top of "HTTP + one statement".

``gunicorn --pythonpath bench 'baseline_app:create_app()'`` with ``BENCH_DATABASE_URL`` set.
The bench script creates the ``bench_baseline`` table before starting it and drops it after.

On SQLite the connections get the same pragmas AutoCRM's engine gets (WAL, busy_timeout,
synchronous=NORMAL) but not its ``BEGIN IMMEDIATE``: a bare app's SELECT takes no write lock.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
)

LIST_LIMIT = 50

metadata = MetaData()
baseline = Table(
    "bench_baseline",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_app(database_url: str | None = None) -> Flask:
    engine = make_engine(database_url or os.environ["BENCH_DATABASE_URL"])
    app = Flask("baseline")

    @app.get("/health")
    def health() -> Any:
        return {"ok": True}

    @app.post("/insert")
    def insert_row() -> Any:
        body = request.get_json(force=True)
        with engine.begin() as conn:
            result = conn.execute(
                insert(baseline).values(
                    subject=body["subject"],
                    body=body["description"],
                    created_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )
        return {"id": result.inserted_primary_key[0]}, 201

    @app.get("/list")
    def list_rows() -> Any:
        stmt = select(baseline).order_by(baseline.c.id.desc()).limit(LIST_LIMIT)
        with engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        items = [{**row, "created_at": row["created_at"].isoformat()} for row in rows]
        return jsonify({"items": items})

    return app
