"""fraud verdicts on payments, the blocklist, payments held for review

Each payment keeps the fraud step's verdict (decision, score, reasons, the learned score and
its model), the fingerprint and BIN of what paid (for the velocity and blocklist rules) and,
while held for review, its deadline. Two indexes serve the velocity counts, a third the
duplicate-order check the fraud step makes first. Existing rows
keep NULLs: they were checked by the earlier rules, which gave no verdict.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fraud_decision", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("fraud_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fraud_reasons", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("fraud_model_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fraud_model_version", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("payment_method_fingerprint", sa.String(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("card_bin", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("review_deadline_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_payments_fraud_decision"), ["fraud_decision"], unique=False
        )
        batch_op.create_index(
            "ix_payments_merchant_user_created_at",
            ["merchant_id", "user_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_payments_fingerprint_created_at",
            ["payment_method_fingerprint", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_payments_merchant_order_created_at",
            ["merchant_id", "order_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "fraud_blocklist",
        sa.Column("entry_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.CheckConstraint("kind IN ('user', 'fingerprint', 'bin')", name="ck_blocklist_kind"),
        sa.PrimaryKeyConstraint("entry_id"),
        sa.UniqueConstraint("kind", "value", name="uq_fraud_blocklist_kind_value"),
    )


def downgrade() -> None:
    op.drop_table("fraud_blocklist")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_merchant_order_created_at")
        batch_op.drop_index("ix_payments_fingerprint_created_at")
        batch_op.drop_index("ix_payments_merchant_user_created_at")
        batch_op.drop_index(batch_op.f("ix_payments_fraud_decision"))
        for column in (
            "review_deadline_at",
            "card_bin",
            "payment_method_fingerprint",
            "fraud_model_version",
            "fraud_model_score",
            "fraud_reasons",
            "fraud_score",
            "fraud_decision",
        ):
            batch_op.drop_column(column)
