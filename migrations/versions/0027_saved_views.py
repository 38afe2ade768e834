"""saved views: named queue filters, personal, for a team, or global

``saved_views``: a name, its owner, a scope (personal | team | global; a team view names its
team), the filters in the list API's vocabulary (JSON), a sort and a position in the sidebar.
The built-in views ("My unsolved", ...) are code, not rows.

Revision ID: 0027_saved_views
Revises: 0026_macros
Create Date: 2026-12-06 16:50:03.882349

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0027_saved_views'
down_revision = '0026_macros'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('saved_views',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.Enum('personal', 'team', 'global', name='viewscope', native_enum=False, length=10), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('sort', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(scope = 'team') = (team_id IS NOT NULL)", name=op.f('ck_saved_views_team_scope_has_team')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_saved_views_owner_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_saved_views_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_views'))
    )
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.create_index('ix_saved_views_owner', ['owner_id', 'position'], unique=False)
        batch_op.create_index('ix_saved_views_team', ['team_id', 'position'], unique=False)



def downgrade():
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.drop_index('ix_saved_views_team')
        batch_op.drop_index('ix_saved_views_owner')

    op.drop_table('saved_views')
