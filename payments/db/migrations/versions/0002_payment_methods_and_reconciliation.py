"""payment methods, instrument details, reconciliation reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:28:41.429023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_methods",
        sa.Column("payment_method_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("gateway_customer_id", sa.String(length=64), nullable=False),
        sa.Column("token_ciphertext", sa.Text(), nullable=False),
        sa.Column("instrument_type", sa.String(length=32), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("expiration", sa.String(length=7), nullable=True),
        sa.Column("wallet_type", sa.String(length=32), nullable=True),
        sa.Column("display", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("payment_method_id"),
    )
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_methods_user_id"), ["user_id"], unique=False)

    op.create_table(
        "reconciliation_reports",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_payments", sa.Integer(), nullable=False),
        sa.Column("checked_refunds", sa.Integer(), nullable=False),
        sa.Column("repaired", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_reports_started_at"), ["started_at"], unique=False
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_method_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("gateway_status", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("decline_type", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("instrument_type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("card_brand", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("card_last4", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("wallet_type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("instrument_display", sa.String(length=128), nullable=True))
        batch_op.create_foreign_key(
            "fk_payments_payment_method_id",
            "payment_methods",
            ["payment_method_id"],
            ["payment_method_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_payments_payment_method_id", type_="foreignkey")
        batch_op.drop_column("instrument_display")
        batch_op.drop_column("wallet_type")
        batch_op.drop_column("card_last4")
        batch_op.drop_column("card_brand")
        batch_op.drop_column("instrument_type")
        batch_op.drop_column("decline_type")
        batch_op.drop_column("gateway_status")
        batch_op.drop_column("payment_method_id")

    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_reports_started_at"))

    op.drop_table("reconciliation_reports")
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_methods_user_id"))

    op.drop_table("payment_methods")
