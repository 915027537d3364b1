"""alerts: rule states, incidents, timeline, silences, maintenance, tuning

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_event', schema=None) as batch_op:
        batch_op.create_index('ix_alert_event_at', ['at'], unique=False)
        batch_op.create_index('ix_alert_event_incident', ['incident_id', 'at'], unique=False)
        batch_op.create_index('ix_alert_event_rule_at', ['rule', 'at'], unique=False)

    op.create_table('alert_incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('flapping', sa.Boolean(), nullable=False),
    sa.Column('opened_at', sa.Float(), nullable=False),
    sa.Column('resolved_at', sa.Float(), nullable=True),
    sa.Column('chat_id', sa.BigInteger(), nullable=True),
    sa.Column('message_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('announced', sa.Boolean(), nullable=False),
    sa.Column('muted_reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('acked_by', sa.BigInteger(), nullable=True),
    sa.Column('acked_by_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('acked_at', sa.Float(), nullable=True),
    sa.Column('ack_until', sa.Float(), nullable=True),
    sa.Column('acked_severity', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('next_escalation_at', sa.Float(), nullable=True),
    sa.Column('timer_token', sa.Integer(), nullable=False),
    sa.Column('repeat_boost', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_incident', schema=None) as batch_op:
        batch_op.create_index('ix_alert_incident_opened_at', ['opened_at'], unique=False)
        batch_op.create_index('ix_alert_incident_status', ['status'], unique=False)

    op.create_table('alert_maintenance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ends_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('started_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('ended_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('summary_sent', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('alert_silence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('matchers_json', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_by_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('ends_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('ended_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('reminded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_silence', schema=None) as batch_op:
        batch_op.create_index('ix_alert_silence_ends_at', ['ends_at'], unique=False)

    op.create_table('alert_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('labels_json', sa.Text(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('active_since', sa.Float(), nullable=True),
    sa.Column('fired_at', sa.Float(), nullable=True),
    sa.Column('clear_since', sa.Float(), nullable=True),
    sa.Column('resolved_at', sa.Float(), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('last_eval_at', sa.Float(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('inhibited_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('flapping', sa.Boolean(), nullable=False),
    sa.Column('changes_json', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint')
    )
    with op.batch_alter_table('alert_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_state_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_state_rule'), ['rule'], unique=False)
        batch_op.create_index('ix_alert_state_state', ['state'], unique=False)

    op.create_table('alert_tuning',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('before', sa.Float(), nullable=False),
    sa.Column('after', sa.Float(), nullable=False),
    sa.Column('by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('by_id', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reverted_at', sa.Float(), nullable=True),
    sa.Column('reverted_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_tuning', schema=None) as batch_op:
        batch_op.create_index('ix_alert_tuning_rule', ['rule', 'at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alert_tuning', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_tuning_rule')

    op.drop_table('alert_tuning')
    with op.batch_alter_table('alert_state', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_state_state')
        batch_op.drop_index(batch_op.f('ix_alert_state_rule'))
        batch_op.drop_index(batch_op.f('ix_alert_state_incident_id'))

    op.drop_table('alert_state')
    with op.batch_alter_table('alert_silence', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_silence_ends_at')

    op.drop_table('alert_silence')
    op.drop_table('alert_maintenance')
    with op.batch_alter_table('alert_incident', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_incident_status')
        batch_op.drop_index('ix_alert_incident_opened_at')

    op.drop_table('alert_incident')
    with op.batch_alter_table('alert_event', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_event_rule_at')
        batch_op.drop_index('ix_alert_event_incident')
        batch_op.drop_index('ix_alert_event_at')

    op.drop_table('alert_event')
