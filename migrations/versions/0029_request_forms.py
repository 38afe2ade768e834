"""request forms: what a customer picks when asking, and the form each ticket was filed with

``request_forms``: name, key, description, active, position, the team its tickets go to and
the fields asked (``items``, JSON, in order, each required or not); ``tickets.form_id``. The
column is added with a plain ADD COLUMN, not a batch rebuild: rebuilding ``tickets`` on SQLite
would drop the full-text triggers of 0023_ticket_search (SQLite takes the foreign key inline).

Revision ID: 0029_request_forms
Revises: 0028_ticket_fields
Create Date: 2026-12-06 20:50:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0029_request_forms'
down_revision = '0028_ticket_fields'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table('request_forms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('items', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_request_forms_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_forms')),
    sa.UniqueConstraint('key', name=op.f('uq_request_forms_key')),
    sa.UniqueConstraint('name', name=op.f('uq_request_forms_name'))
    )
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            'ALTER TABLE tickets ADD COLUMN form_id INTEGER '
            'CONSTRAINT fk_tickets_form_id_request_forms '
            'REFERENCES request_forms (id)'
        )
    else:
        op.add_column('tickets', sa.Column('form_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_tickets_form_id_request_forms'), 'tickets', 'request_forms', ['form_id'], ['id'])


def downgrade():
    # A plain DROP COLUMN (SQLite >= 3.35) keeps the search triggers, as the upgrade does.
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_tickets_form_id_request_forms'), 'tickets', type_='foreignkey')
    op.drop_column('tickets', 'form_id')
    op.drop_table('request_forms')
