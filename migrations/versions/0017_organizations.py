"""organizations of customers, by email domain

``organizations``: a customer's company (name, notes, whether customers of its domains join it
when created); ``organization_domains``: its email domains, each in one organization only;
``users.organization_id`` and ``users.organization_manager``: a customer's organization and
whether they see its tickets.

Revision ID: 0017_organizations
Revises: 0016_attachments
Create Date: 2026-12-06 04:15:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0017_organizations'
down_revision = '0016_attachments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('organizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('auto_join', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    sa.UniqueConstraint('name', name=op.f('uq_organizations_name'))
    )
    op.create_table('organization_domains',
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_organization_domains_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain', name=op.f('pk_organization_domains'))
    )
    with op.batch_alter_table('organization_domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organization_domains_organization_id'), ['organization_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organization_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('organization_manager', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_users_organization_id'), ['organization_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_users_organization_id_organizations'), 'organizations', ['organization_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('organization_manager', server_default=None)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_organization_id_organizations'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_users_organization_id'))
        batch_op.drop_column('organization_manager')
        batch_op.drop_column('organization_id')

    with op.batch_alter_table('organization_domains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organization_domains_organization_id'))

    op.drop_table('organization_domains')
    op.drop_table('organizations')
