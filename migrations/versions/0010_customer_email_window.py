"""customer email window: one notification per recipient per change, waiting customer emails

- notifications.change_key ("<change id>:<ticket id>:<user id>", unique): what one change tells
  one person about one ticket is one notification; later parts of the change merge into it.
  notifications.parts: what it says, per kind; notifications.email_id: the one email that
  tells of it. Existing rows keep a NULL key (each was its own notification), no parts and no
  email link.
- email_messages.ticket_id, send_after (indexed: the beat finds the due ones) and digest: a
  customer's email waits until its ticket's window ends, collecting the changes made
  meanwhile; a partial unique index lets at most one wait per ticket and address. Existing
  rows were all requested already: send_after stays NULL.

Revision ID: 0010_customer_email_window
Revises: 0009_notification_inbox_index
Create Date: 2026-12-06 00:10:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = "0010_customer_email_window"
down_revision = "0009_notification_inbox_index"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WAITING = sa.text("send_after IS NOT NULL")


def upgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_key", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("parts", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.create_unique_constraint(batch_op.f("uq_notifications_change_key"), ["change_key"])
        batch_op.add_column(sa.Column("email_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_email_id_email_messages"),
            "email_messages", ["email_id"], ["id"], ondelete="SET NULL",
        )  # fmt: skip
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("send_after", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("digest", JSON, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_email_messages_ticket_id_tickets"),
            "tickets", ["ticket_id"], ["id"], ondelete="CASCADE",
        )  # fmt: skip
        batch_op.create_index("ix_email_messages_send_after", ["send_after"], unique=False)
        batch_op.create_index(
            "uq_email_messages_waiting_ticket_id_to_address",
            ["ticket_id", "to_address"],
            unique=True,
            sqlite_where=WAITING,
            postgresql_where=WAITING,
        )


def downgrade():
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index("uq_email_messages_waiting_ticket_id_to_address")
        batch_op.drop_index("ix_email_messages_send_after")
        batch_op.drop_constraint(
            batch_op.f("fk_email_messages_ticket_id_tickets"), type_="foreignkey"
        )
        batch_op.drop_column("digest")
        batch_op.drop_column("send_after")
        batch_op.drop_column("ticket_id")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_email_id_email_messages"), type_="foreignkey"
        )
        batch_op.drop_column("email_id")
        batch_op.drop_constraint(batch_op.f("uq_notifications_change_key"), type_="unique")
        batch_op.drop_column("parts")
        batch_op.drop_column("change_key")
