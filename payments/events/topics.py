"""Kafka topic names (before KafkaSettings.topic_prefix is applied)."""

from __future__ import annotations

# In: requests to start a payment (fields of POST /initiate-payment plus idempotency_key and
# merchant_id).
PAYMENT_INITIATION = "payment_initiation"
# Out: every payment status change. Keyed by payment_id.
PAYMENT_STATUS = "payment_status"
# Out: every refund status change. Keyed by payment_id, so a payment's events stay in order.
REFUND_REQUEST = "refund_request"
# Out: user-facing messages for the Notification Service.
NOTIFICATIONS = "notifications"
# Out: payment_initiation messages that can never start a payment (headers say why), so that
# they stop blocking the partition behind them.
PAYMENT_INITIATION_DLQ = "payment_initiation.dlq"

ALL_TOPICS = (
    PAYMENT_INITIATION,
    PAYMENT_STATUS,
    REFUND_REQUEST,
    NOTIFICATIONS,
    PAYMENT_INITIATION_DLQ,
)
