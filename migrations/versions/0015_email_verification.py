"""email verification: when a person proved their address is theirs

``users.email_verified_at``: set when a sign-up is confirmed by its emailed link, or when a
password is set through an emailed link; None for a customer created by a request made without
an account, who cannot log in until they set a password. Every existing user counts as
verified from their creation (admins made them).

Revision ID: 0015_email_verification
Revises: 0014_two_factor
Create Date: 2026-12-06 04:05:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0015_email_verification'
down_revision = '0014_two_factor'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(), nullable=True))
    op.execute('UPDATE users SET email_verified_at = created_at')


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
