"""report indexes: tickets solved per team in a period, SLA clocks stopped in a period

Revision ID: 0005_report_indexes
Revises: 0004_knowledge_base
Create Date: 2026-12-05 09:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005_report_indexes'
down_revision = '0004_knowledge_base'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_team_solved', ['team_id', 'solved_at'], unique=False)

    with op.batch_alter_table('sla_clocks', schema=None) as batch_op:
        batch_op.create_index('ix_sla_clocks_stopped_at', ['stopped_at'], unique=False)


def downgrade():
    with op.batch_alter_table('sla_clocks', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_clocks_stopped_at')

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_team_solved')
