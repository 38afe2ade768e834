"""saved views: custom field columns, and room for a sort by a custom field

``saved_views.columns``: the custom field keys the queue shows as columns, in order (JSON
list). ``sort`` grows from 20 to 60 characters for ``-field.<key>`` (keys are up to 40).

Revision ID: 0030_saved_view_columns
Revises: 0029_request_forms
Create Date: 2026-12-06 20:45:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0030_saved_view_columns'
down_revision = '0029_request_forms'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'columns',
                sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
                nullable=False,
                server_default='[]',
            )
        )
        batch_op.alter_column(
            'sort', existing_type=sa.String(length=20), type_=sa.String(length=60),
            existing_nullable=False,
        )


def downgrade():
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.alter_column(
            'sort', existing_type=sa.String(length=60), type_=sa.String(length=20),
            existing_nullable=False,
        )
        batch_op.drop_column('columns')
