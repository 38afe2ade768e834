"""The dropdown fields' expression indexes (``values.index_sql``), built outside any request.

A plain ``CREATE INDEX`` on PostgreSQL blocks every write to ``tickets`` while it runs (minutes
at a million tickets), so the admin's request only queues ``build_field_indexes`` for after
its commit; a worker then builds on its own AUTOCOMMIT connection with ``CREATE INDEX
CONCURRENTLY``, and drops the index of a field that was deleted with ``DROP INDEX
CONCURRENTLY``. A failed concurrent build leaves an INVALID index behind under the name (``IF
NOT EXISTS`` would then keep it for good): it is dropped and built again. Beat also runs the
task, so a lost one only delays the index; until it exists a filter by the field works, only
slower (a scan). On SQLite a plain ``CREATE INDEX IF NOT EXISTS`` in a write transaction.

One build at a time (a PostgreSQL advisory lock, held by the building connection): a second
run would otherwise take the first one's unfinished index for an invalid leftover.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, select, text

from autocrm import aftercommit
from autocrm.events import relay
from autocrm.extensions import db
from autocrm.fields import values
from autocrm.fields.models import FieldType, TicketField

log = logging.getLogger(__name__)

TASK = "workers.tasks.build_field_indexes"
_KIND = "fields.indexes"
# pg_try_advisory_lock's key for "building field indexes" (any fixed number of ours).
_LOCK_KEY = 0x6669656C64  # "field"


def queue_build() -> None:
    """In the transaction that adds or deletes a dropdown field: build (or drop) its index
    once it commits."""
    aftercommit.add(_KIND, None)


def _send_build_task(_items: list[Any]) -> None:
    """After commit: one task however many fields changed, sent by the relay. A broker that is
    down loses nothing: beat's next ``build_field_indexes`` does it."""
    relay.after_commit([relay.Message(TASK)])


def _wanted(conn: Connection) -> tuple[set[str], set[str]]:
    """The index names the active dropdown fields want, and those any dropdown field (an
    inactive one too: it keeps its index) may keep."""
    rows = conn.execute(
        select(TicketField.key, TicketField.active).where(TicketField.type == FieldType.DROPDOWN)
    ).all()
    build = {values.index_name(key) for key, active in rows if active}
    keep = {values.index_name(key) for key, _ in rows}
    return build, keep


def existing(conn: Connection) -> dict[str, bool]:
    """The fields' indexes on ``tickets``, by name: is each valid (usable by queries)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'tickets'::regclass"
            )
        ).all()
    else:
        rows = conn.execute(
            text("SELECT name, 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets'")
        ).all()
    names = {str(name): bool(valid) for name, valid in rows}
    return {name: valid for name, valid in names.items() if name.startswith(values.INDEX_MARK)}


def do_build_indexes() -> dict[str, int]:
    """Build the missing indexes of active dropdown fields, replace invalid ones and drop
    those of deleted fields. Idempotent; ``{"skipped": 1}`` while another run builds."""
    db.session.rollback()  # hold no transaction: CONCURRENTLY waits for every open one
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}):
                return {"skipped": 1}
            try:
                return _build(conn, concurrently=True)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
    with db.engine.begin() as conn:  # SQLite: a writer, one at a time anyway
        return _build(conn, concurrently=False)


def _build(conn: Connection, *, concurrently: bool) -> dict[str, int]:
    build, keep = _wanted(conn)
    found = existing(conn)
    how = " CONCURRENTLY" if concurrently else ""
    dropped = built = 0
    for name, valid in found.items():
        if name not in keep or (name in build and not valid):
            log.info(
                "dropping field index %s (%s)", name, "invalid" if valid is False else "unused"
            )
            conn.execute(text(f"DROP INDEX{how} IF EXISTS {name}"))
            dropped += 1
    for name in sorted(build):
        if found.get(name):
            continue
        key = name.removeprefix(values.INDEX_MARK)
        log.info("building field index %s", name)
        conn.execute(text(values.index_sql(key, conn.dialect.name, concurrently=concurrently)))
        built += 1
    return {"built": built, "dropped": dropped}


def install() -> None:
    aftercommit.register(_KIND, _send_build_task)
