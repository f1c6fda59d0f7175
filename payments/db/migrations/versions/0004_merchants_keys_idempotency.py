"""merchants, API keys, scoped and expiring idempotency keys, webhook receipts

Every payment, refund and saved payment method gets a merchant; rows that exist already go to
the configured default merchant (AUTH_DEFAULT_MERCHANT_ID), which this migration creates.
Idempotency keys move to their own table, scoped to (merchant, key) and expiring, so the
unique constraints on payments.idempotency_key and refunds.idempotency_key are dropped (a key
may come back once it has expired); the keys that exist are copied over with their expiry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from payments.config import AuthSettings

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 created unnamed UNIQUE(idempotency_key) constraints: PostgreSQL named them
# <table>_idempotency_key_key; SQLite keeps them unnamed, so batch mode names them by this
# convention while it rebuilds the table.
_UNIQUE_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_unique_key(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(f"{table}_idempotency_key_key", table, type_="unique")
        return
    with op.batch_alter_table(table, naming_convention=_UNIQUE_NAMING) as batch_op:
        batch_op.drop_constraint(f"uq_{table}_idempotency_key", type_="unique")


def upgrade() -> None:
    settings = AuthSettings()
    default_merchant = settings.default_merchant_id
    now = datetime.now(UTC)

    merchants = op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id"),
    )
    op.bulk_insert(merchants, [{"merchant_id": default_merchant, "created_at": now}])

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"]),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_merchant_id"), ["merchant_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"]),
        sa.PrimaryKeyConstraint("merchant_id", "scope", "key"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "webhook_receipts",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_receipts_received_at"), ["received_at"], unique=False
        )

    # Existing rows belong to the default merchant; new rows must name theirs (the server
    # default is dropped again once the column is filled).
    for table, index_columns in (
        ("payments", ["merchant_id", "created_at", "payment_id"]),
        ("refunds", ["merchant_id", "created_at", "refund_id"]),
        ("payment_methods", ["merchant_id", "user_id"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "merchant_id",
                    sa.String(length=64),
                    nullable=False,
                    server_default=default_merchant,
                )
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("merchant_id", server_default=None)
            batch_op.create_foreign_key(
                f"fk_{table}_merchant_id", "merchants", ["merchant_id"], ["merchant_id"]
            )
            name = (
                "ix_payment_methods_merchant_user"
                if table == "payment_methods"
                else f"ix_{table}_merchant_created_at_id"
            )
            batch_op.create_index(name, index_columns, unique=False)

    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )
        batch_op.add_column(sa.Column("failure_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("failure_message", sa.String(length=255), nullable=True))
        batch_op.alter_column(
            "gateway_customer_id", existing_type=sa.String(length=64), nullable=True
        )
        batch_op.alter_column("token_ciphertext", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("instrument_type", existing_type=sa.String(length=32), nullable=True)

    with op.batch_alter_table("exchange_rates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_by", sa.String(length=32), nullable=True))
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway_order_id", sa.String(length=255), nullable=True))

    # The keys in use move to idempotency_keys, with the expiry they would have had.
    ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
    connection = op.get_bind()
    records = []
    for scope, table, id_column in (
        ("payment", "payments", "payment_id"),
        ("refund", "refunds", "refund_id"),
    ):
        rows = connection.execute(
            sa.text(
                f"SELECT {id_column}, idempotency_key, request_fingerprint, created_at "  # noqa: S608  (constant names)
                f"FROM {table} WHERE idempotency_key IS NOT NULL"
            )
        ).all()
        for resource_id, key, fingerprint, created_at in rows:
            created = created_at if isinstance(created_at, datetime) else now
            created = created if created.tzinfo else created.replace(tzinfo=UTC)
            records.append(
                {
                    "merchant_id": default_merchant,
                    "scope": scope,
                    "key": key,
                    "resource_id": resource_id,
                    "request_fingerprint": fingerprint or "",
                    "created_at": created,
                    "expires_at": created + ttl,
                }
            )
    if records:
        op.bulk_insert(
            sa.table(
                "idempotency_keys",
                sa.column("merchant_id"),
                sa.column("scope"),
                sa.column("key"),
                sa.column("resource_id"),
                sa.column("request_fingerprint"),
                sa.column("created_at", sa.DateTime(timezone=True)),
                sa.column("expires_at", sa.DateTime(timezone=True)),
            ),
            records,
        )

    _drop_unique_key("payments")
    _drop_unique_key("refunds")


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_refunds_idempotency_key", ["idempotency_key"])
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_payments_idempotency_key", ["idempotency_key"])
    with op.batch_alter_table("exchange_rates", schema=None) as batch_op:
        batch_op.drop_column("set_by")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("gateway_order_id")
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.drop_column("failure_message")
        batch_op.drop_column("failure_code")
        batch_op.drop_column("status")
    for table in ("payment_methods", "refunds", "payments"):
        name = (
            "ix_payment_methods_merchant_user"
            if table == "payment_methods"
            else f"ix_{table}_merchant_created_at_id"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.drop_constraint(f"fk_{table}_merchant_id", type_="foreignkey")
            batch_op.drop_column("merchant_id")
    op.drop_table("webhook_receipts")
    op.drop_table("idempotency_keys")
    op.drop_table("api_keys")
    op.drop_table("merchants")
