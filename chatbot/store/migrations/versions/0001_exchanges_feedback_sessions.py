"""Exchanges, feedback and sessions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("session_id", sa.String(100), nullable=True),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("context_normalized", sa.Text, nullable=False),
        sa.Column("normalization", sa.String(20), nullable=False),
        sa.Column("replies", sa.JSON, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("abstained", sa.Boolean, nullable=False),
    )
    op.create_index("ix_exchanges_created_at", "exchanges", ["created_at"])
    op.create_index("ix_exchanges_session_id", "exchanges", ["session_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.String(32),
            sa.ForeignKey("exchanges.request_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("vote", sa.String(4), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "vote", name="uq_feedback_request_vote"),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(100), primary_key=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("turns", sa.JSON, nullable=False),
    )
    op.create_index("ix_sessions_updated_at", "sessions", ["updated_at"])


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_table("feedback")
    op.drop_table("exchanges")
