"""admin audit log, and a business-hours calendar per team

Revision ID: 0006_admin_audit_team_calendar
Revises: 0005_report_indexes
Create Date: 2026-12-06 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0006_admin_audit_team_calendar'
down_revision = '0005_report_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admin_audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target_type', sa.String(length=30), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('target_label', sa.String(length=300), nullable=False),
    sa.Column('changes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_admin_audit_entries_actor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_audit_entries'))
    )
    with op.batch_alter_table('admin_audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_admin_audit_entries_action', ['action', 'id'], unique=False)
        batch_op.create_index('ix_admin_audit_entries_actor', ['actor_id', 'id'], unique=False)
        batch_op.create_index('ix_admin_audit_entries_target', ['target_type', 'target_id', 'id'], unique=False)

    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))


def downgrade():
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_column('calendar')

    with op.batch_alter_table('admin_audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_audit_entries_target')
        batch_op.drop_index('ix_admin_audit_entries_actor')
        batch_op.drop_index('ix_admin_audit_entries_action')

    op.drop_table('admin_audit_entries')
