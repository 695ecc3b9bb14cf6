"""The tables. Changing them means a new migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

VOTES = ("up", "down")

# One answered /respond request: what the model read and what it showed.
exchanges = Table(
    "exchanges",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("model", String(200), nullable=False),  # the serving version
    Column("session_id", String(100), nullable=True, index=True),
    Column("context", JSON, nullable=False),  # the turns the model read, raw, oldest first
    Column("context_normalized", Text, nullable=False),  # as the model read them (UDC layout)
    Column("normalization", String(20), nullable=False),
    Column("replies", JSON, nullable=False),  # [{"text", "score"}], best first
    Column("reply", Text, nullable=False),  # what the user was shown (the fallback if unsure)
    Column("confidence", Float, nullable=False),
    Column("abstained", Boolean, nullable=False),
)

# A user's vote on one reply of an exchange; a retried vote is stored once.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "request_id",
        String(32),
        ForeignKey("exchanges.request_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("vote", String(4), nullable=False),
    Column("response", Text, nullable=False),  # the reply voted on
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "vote", name="uq_feedback_request_vote"),
)

# A conversation kept by the service, so that a client may send only the new message.
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(100), primary_key=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
    Column("turns", JSON, nullable=False),  # oldest first, the bot's replies included
)
