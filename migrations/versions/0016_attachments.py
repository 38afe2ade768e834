"""attachments: files uploaded by users, attached to a ticket, a message or an article

``attachments``: who uploaded the file, its cleaned name, its type as detected from its content,
its size and SHA-256 (the key of its bytes in storage, shared by every row with the same
content), and what it is attached to (none until its uploader sends it); an image's thumbnail
key once a worker has made it.

Revision ID: 0016_attachments
Revises: 0015_email_verification
Create Date: 2026-12-06 03:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0016_attachments'
down_revision = '0015_email_verification'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'attachments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uploader_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('article_id', sa.Integer(), nullable=True),
        sa.Column('thumbnail_sha256', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ['uploader_id'],
            ['users.id'],
            name=op.f('fk_attachments_uploader_id_users'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['ticket_id'],
            ['tickets.id'],
            name=op.f('fk_attachments_ticket_id_tickets'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['message_id'],
            ['messages.id'],
            name=op.f('fk_attachments_message_id_messages'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['article_id'],
            ['kb_articles.id'],
            name=op.f('fk_attachments_article_id_kb_articles'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments')),
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(
            'ix_attachments_ticket_message', ['ticket_id', 'message_id'], unique=False
        )
        batch_op.create_index(
            'ix_attachments_uploader_created', ['uploader_id', 'created_at'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_attachments_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_article_id'), ['article_id'], unique=False)


def downgrade():
    op.drop_table('attachments')
