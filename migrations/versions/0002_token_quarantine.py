"""token quarantine: write failures in a row, when and why a token was quarantined

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 16:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens') as batch:
        batch.add_column(sa.Column('write_failures', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('quarantined_at', sa.Float(), nullable=True))
        batch.add_column(sa.Column('quarantine_reason', sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tokens') as batch:
        batch.drop_column('quarantine_reason')
        batch.drop_column('quarantined_at')
        batch.drop_column('write_failures')
