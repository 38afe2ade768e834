"""Alembic environment, run through Flask-Migrate (``flask --app wsgi db ...``).

Migrations never import the app: ``render_item`` writes AutoCRM's column types as the plain
SQLAlchemy types they store, so an old migration keeps working when the models change.
"""

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from flask import current_app

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_ext = current_app.extensions["migrate"]
engine = migrate_ext.db.engine
target_metadata = migrate_ext.db.metadata


def render_item(type_, obj, autogen_context):
    if type_ != "type":
        return False
    if isinstance(obj, sa.JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    if isinstance(obj, sa.types.TypeDecorator):
        return f"sa.{type(obj.impl_instance).__name__}()"
    return False


def include_name(name, type_, parent_names):
    """Leave the dialect-specific full-text objects of migrations 0004 and 0021 alone (the
    SQLite FTS5 tables kb_articles_fts, ticket_search_fts and their shadow tables, the
    PostgreSQL index ix_kb_articles_fts, table ticket_search_docs and its indexes): they are
    not in the ORM metadata, so autogenerate would otherwise drop them. Nor the expression
    indexes ``ix_tickets_cf_<key>`` the service makes for custom dropdown fields."""
    marks = ("kb_articles_fts", "ticket_search", "ix_tickets_cf_")
    return not (type_ in {"table", "index"} and name and any(m in name for m in marks))


def process_revision_directives(context, revision, directives):
    """Write no empty migration when autogenerate finds nothing."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def configure_args():
    args = dict(migrate_ext.configure_args)
    args.setdefault("process_revision_directives", process_revision_directives)
    args.setdefault("render_item", render_item)
    args.setdefault("include_name", include_name)
    return args


if context.is_offline_mode():
    context.configure(
        url=engine.url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        **configure_args(),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, **configure_args()
        )
        with context.begin_transaction():
            context.run_migrations()
