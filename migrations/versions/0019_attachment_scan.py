"""malware scan state of attachments

``attachments.scan_status`` (not_scanned, the default and what every existing file is; pending,
clean, infected, failed), ``scan_result`` (the signature found, or the scanner's last error),
``scan_attempts`` and ``scan_due_at`` (when a pending scan is next due), indexed with the status
for the sweep of due scans.

Revision ID: 0019_attachment_scan
Revises: 0018_mailboxes
Create Date: 2026-12-06 07:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0019_attachment_scan'
down_revision = '0018_mailboxes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scan_status', sa.Enum('not_scanned', 'pending', 'clean', 'infected', 'failed', name='scanstatus', native_enum=False, length=20), server_default='not_scanned', nullable=False))
        batch_op.add_column(sa.Column('scan_result', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('scan_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('scan_due_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_attachments_scan_status_due', ['scan_status', 'scan_due_at'], unique=False)


def downgrade():
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_attachments_scan_status_due')
        batch_op.drop_column('scan_due_at')
        batch_op.drop_column('scan_attempts')
        batch_op.drop_column('scan_result')
        batch_op.drop_column('scan_status')
