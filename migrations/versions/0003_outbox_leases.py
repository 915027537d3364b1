"""outbox leases (two senders never send one row), reply flag, retention index

Revision ID: 0003
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('is_reply', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('ix_outbox_status_sent_at', ['status', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_sent_at')
        batch_op.drop_column('is_reply')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
