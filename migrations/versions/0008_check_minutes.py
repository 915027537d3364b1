"""checks counted per minute (check_minutes), filled from the checks already stored; failed-check index

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _minute(dialect: str) -> str:
    """The minute (minute, minute + 60] holding ``at`` (tokens.check_rollup.minute_sql, frozen here)."""
    if dialect == "postgresql":
        return "(ceil(at / 60.0) * 60 - 60)"
    return "(CASE WHEN at = CAST(at / 60.0 AS INTEGER) * 60 THEN at - 60 ELSE CAST(at / 60.0 AS INTEGER) * 60 END)"


def upgrade() -> None:
    op.create_table('check_minutes',
    sa.Column('minute', sa.Float(), nullable=False),
    sa.Column('status_at_check', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('checks', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.Float(), nullable=False),
    sa.Column('last_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('minute', 'status_at_check', 'ok', 'passed', 'reason', 'shard')
    )
    with op.batch_alter_table('checks', schema=None) as batch_op:
        batch_op.create_index('ix_checks_failed_at', ['at'], unique=False,
                              sqlite_where=sa.text('NOT ok'), postgresql_where=sa.text('NOT ok'))
    # the checks already stored, so monitoring's windows are full from the first cycle
    minute = _minute(op.get_bind().dialect.name)
    op.execute(
        "INSERT INTO check_minutes (minute, status_at_check, ok, passed, reason, checks, first_at, last_at) "
        f"SELECT {minute}, status_at_check, ok, passed, COALESCE(primary_failure, ''), COUNT(*), MIN(at), MAX(at) "
        "FROM checks "
        f"GROUP BY {minute}, status_at_check, ok, passed, COALESCE(primary_failure, '')"
    )


def downgrade() -> None:
    with op.batch_alter_table('checks', schema=None) as batch_op:
        batch_op.drop_index('ix_checks_failed_at', sqlite_where=sa.text('NOT ok'), postgresql_where=sa.text('NOT ok'))
    op.drop_table('check_minutes')
