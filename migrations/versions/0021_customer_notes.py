"""customer notes: what agents note about a customer on the customer page (staff-only)

Revision ID: 0021_customer_notes
Revises: 0020_ticket_followers
Create Date: 2026-12-06 07:32:10.662311

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0021_customer_notes'
down_revision = '0020_ticket_followers'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notes', sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('notes', server_default=None)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('notes')
