"""The Alembic chain and the models agree: autogenerate finds nothing to do; and migrations
that move data do it right on a database holding rows from before them."""

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from autocrm.extensions import db
from autocrm.fields.values import INDEX_MARK
from autocrm.kb.models import FTS_NAME_MARK
from autocrm.tickets.search import SEARCH_NAME_MARK
from tests import processes
from tests.databases import scratch_database


def not_full_text_index(name, type_, parent_names):
    """The dialect-specific full-text objects are made by migrations 0004 and 0021, and the
    custom fields' expression indexes by ``autocrm.fields``, not by the models (the same
    filter as ``include_name`` in migrations/env.py)."""
    marks = (FTS_NAME_MARK, SEARCH_NAME_MARK, INDEX_MARK)
    return not (type_ in {"table", "index"} and name and any(m in name for m in marks))


def test_models_and_migrations_agree(db_session):
    context = MigrationContext.configure(
        db_session.connection(), opts={"compare_type": True, "include_name": not_full_text_index}
    )
    assert compare_metadata(context, db.metadata) == []


def test_migrations_are_at_a_single_head(app):
    from alembic.script import ScriptDirectory
    from flask_migrate import Config

    config = Config(str(app.extensions["migrate"].directory + "/alembic.ini"))
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def flask_db(database_url: str, redis_url: str, *args: str) -> None:
    """``flask db ...`` in a child process, as an operator runs it."""
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", *args],
        cwd=processes.REPO,
        env=processes.test_env(database_url, redis_url),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr


BEFORE_0008 = [
    "INSERT INTO kb_categories (id, name, position) VALUES (7, 'Billing', 0)",
    "INSERT INTO kb_articles (id, title, body, category_id, status, visibility, created_at, "
    "updated_at) VALUES (1, 'Refunds', 'Two', 7, 'published', 'internal', :now, :now), "
    "(2, 'Export', 'One', NULL, 'draft', 'customers', :now, :now)",
    "INSERT INTO kb_article_tags (article_id, tag) VALUES (1, 'refund'), (1, 'billing')",
    "INSERT INTO kb_article_revisions (id, article_id, number, title, body, created_at) "
    "VALUES (1, 1, 1, 'Refunds', 'One', :now), (2, 1, 2, 'Refunds', 'Two', :now), "
    "(3, 2, 1, 'Export', 'One', :now)",
]


def test_older_revisions_get_their_articles_current_category_visibility_and_tags(
    redis_url, tmp_path
):
    server = os.environ.get("AUTOCRM_TEST_DATABASE_URL")
    with scratch_database(server, f"autocrm_migration_{uuid.uuid4().hex[:10]}", tmp_path) as url:
        flask_db(url, redis_url, "upgrade", "0007_ticket_business_durations")
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                for statement in BEFORE_0008:
                    conn.execute(text(statement), {"now": datetime(2026, 12, 1, 9, 0)})

            flask_db(url, redis_url, "upgrade", "0008_kb_revision_metadata")
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT id, category_id, category_name, visibility, tags, body "
                        "FROM kb_article_revisions ORDER BY id"
                    )
                ).all()
            as_list = [
                (*row[:4], json.loads(row[4]) if isinstance(row[4], str) else row[4], row[5])
                for row in rows
            ]
            assert as_list == [
                (1, 7, "Billing", "internal", ["billing", "refund"], "One"),
                (2, 7, "Billing", "internal", ["billing", "refund"], "Two"),
                (3, None, None, "customers", [], "One"),
            ]

            flask_db(url, redis_url, "downgrade", "0007_ticket_business_durations")
            with engine.connect() as conn:
                bodies = conn.execute(text("SELECT body FROM kb_article_revisions ORDER BY id"))
                assert list(bodies.scalars()) == ["One", "Two", "One"]
        finally:
            engine.dispose()


BEFORE_0026 = [
    "INSERT INTO teams (id, name, description, assignment_policy, created_at) "
    "VALUES (3, 'Billing', '', 'manual', :now)",
    "INSERT INTO canned_responses (id, team_id, title, body, created_by_id, created_at, "
    "updated_at) VALUES (4, 3, 'Refund', 'Hi {{customer_name}}', NULL, :now, :now), "
    "(9, NULL, 'Thanks', 'Thanks!', NULL, :now, :now)",
]


def test_canned_responses_become_text_only_macros_with_their_ids(redis_url, tmp_path):
    server = os.environ.get("AUTOCRM_TEST_DATABASE_URL")
    with scratch_database(server, f"autocrm_migration_{uuid.uuid4().hex[:10]}", tmp_path) as url:
        flask_db(url, redis_url, "upgrade", "0024_webhooks")
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                for statement in BEFORE_0026:
                    conn.execute(text(statement), {"now": datetime(2026, 12, 1, 9, 0)})

            flask_db(url, redis_url, "upgrade", "0026_macros")
            with engine.begin() as conn:
                rows = conn.execute(
                    text(
                        "SELECT id, title, body, team_id, owner_id, actions, usage_count "
                        "FROM macros ORDER BY id"
                    )
                ).all()
                as_list = [
                    (*row[:5], json.loads(row[5]) if isinstance(row[5], str) else row[5], row[6])
                    for row in rows
                ]
                assert as_list == [
                    (4, "Refund", "Hi {{customer_name}}", 3, None, {}, 0),
                    (9, "Thanks", "Thanks!", None, None, {}, 0),
                ]
                # New macros get new ids after the copied ones (PostgreSQL's serial moved on).
                conn.execute(
                    text(
                        "INSERT INTO macros (title, body, actions, usage_count, created_at, "
                        "updated_at) VALUES ('New', '', '{\"priority\": \"high\"}', 0, :now, :now)"
                    ),
                    {"now": datetime(2026, 12, 2, 9, 0)},
                )
                assert conn.execute(text("SELECT MAX(id) FROM macros")).scalar() == 10

            flask_db(url, redis_url, "downgrade", "0024_webhooks")
            with engine.connect() as conn:
                kept = conn.execute(text("SELECT id, title FROM canned_responses ORDER BY id"))
                assert kept.all() == [(4, "Refund"), (9, "Thanks")]  # changes-only: not text
        finally:
            engine.dispose()
