"""mailboxes and inbound emails: the email channel

``mailboxes``: support addresses, their team and how mail arrives (IMAP settings with the
password encrypted, a hashed webhook secret); ``inbound_emails``: every message received, its
raw bytes in file storage, what became of it, unique per mailbox by Message-ID (or content
hash); ``messages.channel`` and ``messages.inbound_email_id``: the door a message came in by;
``tickets.mailbox_id``: where replies go out from; ``users.email_bounced_at``: an address that
bounced is not written to again.

Revision ID: 0018_mailboxes
Revises: 0017_organizations
Create Date: 2026-12-06 06:43:00.876450

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0018_mailboxes'
down_revision = '0017_organizations'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mailboxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('plus_addressing', sa.Boolean(), nullable=False),
    sa.Column('webhook_secret_hash', sa.String(length=64), nullable=True),
    sa.Column('imap_host', sa.String(length=253), nullable=True),
    sa.Column('imap_port', sa.Integer(), nullable=True),
    sa.Column('imap_security', sa.Enum('ssl', 'starttls', 'none', name='imapsecurity', native_enum=False, length=10), nullable=False),
    sa.Column('imap_username', sa.String(length=254), nullable=True),
    sa.Column('imap_password_encrypted', sa.Text(), nullable=True),
    sa.Column('imap_folder', sa.String(length=200), nullable=False),
    sa.Column('imap_processed_folder', sa.String(length=200), nullable=True),
    sa.Column('last_polled_at', sa.DateTime(), nullable=True),
    sa.Column('last_poll_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_mailboxes_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailboxes')),
    sa.UniqueConstraint('address', name=op.f('uq_mailboxes_address')),
    sa.UniqueConstraint('name', name=op.f('uq_mailboxes_name'))
    )
    op.create_table('inbound_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox_id', sa.Integer(), nullable=False),
    sa.Column('message_key', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=250), nullable=False),
    sa.Column('via', sa.String(length=10), nullable=False),
    sa.Column('raw_sha256', sa.String(length=64), nullable=False),
    sa.Column('raw_size', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('processed', 'ignored', 'failed', 'discarded', name='inboundstatus', native_enum=False, length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailboxes.id'], name=op.f('fk_inbound_emails_mailbox_id_mailboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_inbound_emails_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_emails')),
    sa.UniqueConstraint('mailbox_id', 'message_key', name=op.f('uq_inbound_emails_mailbox_id'))
    )
    with op.batch_alter_table('inbound_emails', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_emails_message_id', ['message_id'], unique=False)
        batch_op.create_index('ix_inbound_emails_sender_received_at', ['sender', 'received_at'], unique=False)
        batch_op.create_index('ix_inbound_emails_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_emails_ticket_id'), ['ticket_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=20), nullable=False, server_default='web'))
        batch_op.add_column(sa.Column('inbound_email_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_messages_inbound_email_id_inbound_emails'), 'inbound_emails', ['inbound_email_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('channel', server_default=None)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailbox_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_tickets_mailbox_id_mailboxes'), 'mailboxes', ['mailbox_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_bounced_at', sa.DateTime(), nullable=True))



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_bounced_at')

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_mailbox_id_mailboxes'), type_='foreignkey')
        batch_op.drop_column('mailbox_id')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_inbound_email_id_inbound_emails'), type_='foreignkey')
        batch_op.drop_column('inbound_email_id')
        batch_op.drop_column('channel')

    with op.batch_alter_table('inbound_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_emails_ticket_id'))
        batch_op.drop_index('ix_inbound_emails_status_id')
        batch_op.drop_index('ix_inbound_emails_sender_received_at')
        batch_op.drop_index('ix_inbound_emails_message_id')

    op.drop_table('inbound_emails')
    op.drop_table('mailboxes')
