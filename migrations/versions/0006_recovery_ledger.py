"""recovery: the action ledger (recovery_action) and operator pins (knob_pin)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recovery_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('controller', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('knob', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('before', sa.Float(), nullable=True),
    sa.Column('after', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('outcome_at', sa.Float(), nullable=True),
    sa.Column('reverted_at', sa.Float(), nullable=True),
    sa.Column('reverted_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('revert_of', sa.Integer(), nullable=True),
    sa.Column('announced', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recovery_action', schema=None) as batch_op:
        batch_op.create_index('ix_recovery_action_at', ['at'], unique=False)
        batch_op.create_index('ix_recovery_action_knob_at', ['knob', 'at'], unique=False)

    op.create_table('knob_pin',
    sa.Column('knob', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('knob')
    )


def downgrade() -> None:
    op.drop_table('knob_pin')
    with op.batch_alter_table('recovery_action', schema=None) as batch_op:
        batch_op.drop_index('ix_recovery_action_knob_at')
        batch_op.drop_index('ix_recovery_action_at')
    op.drop_table('recovery_action')
