"""ticket followers (CC)

``ticket_followers``: people kept informed of a ticket besides its requester and assignee;
gone with their ticket or their user.

Revision ID: 0020_ticket_followers
Revises: 0019_attachment_scan
Create Date: 2026-12-06 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = "0020_ticket_followers"
down_revision = "0019_attachment_scan"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ticket_followers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by_id"],
            ["users.id"],
            name=op.f("fk_ticket_followers_added_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_followers_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ticket_followers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_followers")),
        sa.UniqueConstraint("ticket_id", "user_id", name=op.f("uq_ticket_followers_ticket_id")),
    )
    with op.batch_alter_table("ticket_followers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ticket_followers_user_ticket", ["user_id", "ticket_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("ticket_followers", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_followers_user_ticket")

    op.drop_table("ticket_followers")
