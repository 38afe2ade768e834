"""macros: canned responses become macros (a reply text plus ticket changes)

``canned_responses`` is replaced by ``macros``: every response is kept, with its id, as a
text-only macro (no ``actions``) shared as before (a team, or everyone when it had none).
New: ``owner_id`` (personal macros), ``actions`` (priority, team, assignee, tags, transition),
``usage_count`` and ``last_used_at``. A new table copied row by row rather than a rebuild in
place: only this table is touched (a batch rebuild of others would drop the ticket-search
triggers of 0023 on SQLite), and its constraints get the names the models give them.
Downgrading keeps the macros with a reply text as canned responses; personal macros and the
changes are lost.

Revision ID: 0026_macros
Revises: 0025_notification_message
Create Date: 2026-12-06 17:10:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0026_macros'
down_revision = '0025_notification_message'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def _reset_id_sequence(table):
    """PostgreSQL: rows copied with their ids leave the serial behind them."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )


def upgrade():
    op.create_table('macros',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('actions', JSON, nullable=False),
    sa.Column('usage_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_macros_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_macros_owner_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_macros_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_macros'))
    )
    with op.batch_alter_table('macros', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_macros_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_macros_team_id'), ['team_id'], unique=False)
    op.execute(
        "INSERT INTO macros (id, title, body, team_id, owner_id, actions, usage_count, "
        "created_by_id, created_at, updated_at) "
        "SELECT id, title, body, team_id, NULL, '{}', 0, created_by_id, created_at, updated_at "
        "FROM canned_responses"
    )
    _reset_id_sequence('macros')
    with op.batch_alter_table('canned_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_canned_responses_team_id'))
    op.drop_table('canned_responses')


def downgrade():
    op.create_table('canned_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_canned_responses_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_canned_responses_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_responses'))
    )
    with op.batch_alter_table('canned_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_canned_responses_team_id'), ['team_id'], unique=False)
    op.execute(
        "INSERT INTO canned_responses (id, team_id, title, body, created_by_id, created_at, "
        "updated_at) SELECT id, team_id, title, body, created_by_id, created_at, updated_at "
        "FROM macros WHERE owner_id IS NULL AND body <> ''"
    )
    _reset_id_sequence('canned_responses')
    with op.batch_alter_table('macros', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_macros_team_id'))
        batch_op.drop_index(batch_op.f('ix_macros_owner_id'))
    op.drop_table('macros')
