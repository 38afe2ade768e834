"""notification message: the note a notification is about (an @mention), for its link

notifications.message_id (nullable, SET NULL when the message goes): a mention's notification
and its email open the ticket at the note (``#message-<id>``). Existing rows are about no
single message: NULL.

Revision ID: 0025_notification_message
Revises: 0024_webhooks
Create Date: 2026-12-06 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = "0025_notification_message"
down_revision = "0024_webhooks"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_message_id_messages"),
            "messages", ["message_id"], ["id"], ondelete="SET NULL",
        )  # fmt: skip


def downgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_message_id_messages"), type_="foreignkey"
        )
        batch_op.drop_column("message_id")
