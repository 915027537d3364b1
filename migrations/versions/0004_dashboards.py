"""dashboards: live /dashboard messages kept current across restarts

Revision ID: 0004
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboards',
    sa.Column('chat_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('outbox_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_text', sa.Text(), nullable=False),
    sa.Column('edits', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('chat_id')
    )


def downgrade() -> None:
    op.drop_table('dashboards')
