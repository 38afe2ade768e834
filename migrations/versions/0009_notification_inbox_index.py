"""notification inbox index: the in-app page groups a user's notifications by ticket

One index on notifications (user_id, ticket_id, id): the page's aggregate (per ticket: newest
id, count, unread) reads one user's rows in ticket order, and "mark this ticket's notifications
read" finds them without scanning the user's other rows. No data changes.

Revision ID: 0009_notification_inbox_index
Revises: 0008_kb_revision_metadata
Create Date: 2026-12-14 09:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0009_notification_inbox_index'
down_revision = '0008_kb_revision_metadata'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(
            'ix_notifications_user_id_ticket_id_id', ['user_id', 'ticket_id', 'id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_id_ticket_id_id')
