"""The Alembic chain and the models agree: autogenerate finds nothing to do."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autocrm.extensions import db
from autocrm.models.kb import FTS_NAME_MARK


def not_full_text_index(name, type_, parent_names):
    """The dialect-specific full-text objects are made by migration 0004, not by the models
    (the same filter as ``include_name`` in migrations/env.py)."""
    return not (type_ in {"table", "index"} and name and FTS_NAME_MARK in name)


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
