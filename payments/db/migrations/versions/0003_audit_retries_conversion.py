"""audit, retries, currency conversion

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:48:59.129796
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("refund_id", sa.String(length=36), nullable=True),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("gateway_status", sa.String(length=32), nullable=True),
        sa.Column("processor_response_code", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_events_payment_id"), ["payment_id"], unique=False
        )

    op.create_table(
        "exchange_rates",
        sa.Column("rate_id", sa.Integer(), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("rate_id"),
    )
    with op.batch_alter_table("exchange_rates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_rates_pair_time", ["base", "quote", "as_of"], unique=False
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charged_amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("charged_currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("exchange_rate", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("rate_as_of", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("retry_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charged_amount", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("charged_amount")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("next_retry_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("retry_enabled")
        batch_op.drop_column("rate_as_of")
        batch_op.drop_column("exchange_rate")
        batch_op.drop_column("charged_currency")
        batch_op.drop_column("charged_amount")

    with op.batch_alter_table("exchange_rates", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_rates_pair_time")

    op.drop_table("exchange_rates")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_payment_id"))

    op.drop_table("audit_events")
