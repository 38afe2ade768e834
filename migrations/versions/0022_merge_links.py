"""merged tickets and ticket links

``tickets.merged_into_id``: the ticket a duplicate was merged into (its conversation lives
there now); ``ticket_links``: two related tickets, stored once per pair (smaller id first),
gone with either ticket.

Revision ID: 0022_merge_links
Revises: 0021_customer_notes
Create Date: 2026-12-06 07:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = "0022_merge_links"
down_revision = "0021_customer_notes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_merged_into_id_tickets"),
            "tickets",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "ticket_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("linked_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("ticket_id < linked_id", name=op.f("ck_ticket_links_ordered_pair")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_ticket_links_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["linked_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_links_linked_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_links_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_links")),
        sa.UniqueConstraint("ticket_id", "linked_id", name=op.f("uq_ticket_links_ticket_id")),
    )
    with op.batch_alter_table("ticket_links", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_links_linked_ticket", ["linked_id", "ticket_id"])


def downgrade():
    with op.batch_alter_table("ticket_links", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_links_linked_ticket")
    op.drop_table("ticket_links")

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tickets_merged_into_id_tickets"), type_="foreignkey")
        batch_op.drop_column("merged_into_id")
