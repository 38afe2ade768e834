"""ticket business durations: first response and resolution time in business seconds

Two nullable columns on tickets, set by the services when first_responded_at / solved_at
become known (business seconds since created_at in the ticket's calendar), so team reports
aggregate them in SQL; and an index on (team_id, closed_at) for the reports' backlog trend.

Backfill: a migration may not import the app, so it cannot apply each workflow version's
business-hours calendar. Existing rows get their WALL-CLOCK seconds instead (the same as a
24x7 calendar): first_responded_at - created_at and solved_at - created_at. Reports over
periods before this revision therefore show wall-clock durations, as they did before it;
tickets answered or solved from this revision on get business seconds. Run
``flask --app wsgi recompute-durations`` after upgrading to measure the older ones in business
hours too.

Revision ID: 0007_ticket_business_durations
Revises: 0006_admin_audit_team_calendar
Create Date: 2026-12-08 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0007_ticket_business_durations'
down_revision = '0006_admin_audit_team_calendar'
branch_labels = None
depends_on = None


def _seconds_between(later, earlier):
    if op.get_bind().dialect.name == 'postgresql':
        return f"EXTRACT(EPOCH FROM {later} - {earlier})"
    # SQLite keeps naive UTC text; julianday is in days (rounded to milliseconds: no float noise).
    return f"round((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_business_seconds', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('resolution_business_seconds', sa.Double(), nullable=True))

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_team_closed', ['team_id', 'closed_at'], unique=False)

    op.execute(
        "UPDATE tickets SET first_response_business_seconds = "
        f"{_seconds_between('first_responded_at', 'created_at')} "
        "WHERE first_responded_at IS NOT NULL"
    )
    op.execute(
        "UPDATE tickets SET resolution_business_seconds = "
        f"{_seconds_between('solved_at', 'created_at')} "
        "WHERE solved_at IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_team_closed')
        batch_op.drop_column('resolution_business_seconds')
        batch_op.drop_column('first_response_business_seconds')
