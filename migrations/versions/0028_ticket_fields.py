"""ticket fields: custom ticket fields defined by admins

``ticket_fields``: the definitions (key, label, type, options, visibility, required to solve,
position); ``tickets.custom_fields``: each ticket's values by key (JSON, JSONB on PostgreSQL).
The column is added with a plain ADD COLUMN, not a batch rebuild: rebuilding ``tickets`` on
SQLite would drop the full-text triggers of 0023_ticket_search.

Revision ID: 0028_ticket_fields
Revises: 0027_saved_views
Create Date: 2026-12-06 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0028_ticket_fields'
down_revision = '0027_saved_views'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table('ticket_fields',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('type', sa.Enum('text', 'long_text', 'number', 'decimal', 'date', 'checkbox', 'dropdown', 'multi_select', name='fieldtype', native_enum=False, length=20), nullable=False),
    sa.Column('options', JSON, nullable=False),
    sa.Column('help_text', sa.Text(), nullable=False),
    sa.Column('visibility', sa.Enum('staff', 'customer_visible', 'customer_editable', name='fieldvisibility', native_enum=False, length=20), nullable=False),
    sa.Column('required_to_solve', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_fields')),
    sa.UniqueConstraint('key', name=op.f('uq_ticket_fields_key'))
    )
    op.add_column('tickets', sa.Column('custom_fields', JSON, server_default='{}', nullable=False))


def downgrade():
    # A plain DROP COLUMN (SQLite >= 3.35) keeps the search triggers, as the upgrade does.
    op.drop_column('tickets', 'custom_fields')
    op.drop_table('ticket_fields')
