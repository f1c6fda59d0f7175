"""The audit trail: every status change of a payment or refund, accepted or refused.

An accepted change is recorded in the transaction that makes it (``record_transition``); a
refused one in a transaction of its own, since the refusing one rolls back
(``record_refusal``)."""

from __future__ import annotations

import structlog
from sqlmodel import Session, col, select

from payments.db import columns
from payments.db.models import AuditEvent, Payment, Refund
from payments.db.repositories.base import Repository

log = structlog.get_logger(__name__)


def record_transition(
    session: Session,
    payment: Payment,
    from_status: str | None,
    to_status: str,
    *,
    cause: str,
    refund: Refund | None = None,
    detail: str | None = None,
) -> None:
    """The payment's change (or, with ``refund``, the refund's), with the gateway's status and
    response code for a payment."""
    session.add(
        AuditEvent(
            payment_id=payment.payment_id,
            refund_id=refund.refund_id if refund else None,
            subject="refund" if refund else "payment",
            from_status=from_status,
            to_status=to_status,
            cause=cause,
            gateway_status=None if refund else payment.gateway_status,
            processor_response_code=None if refund else payment.processor_response_code,
            detail=(detail or None) and detail[: columns.AUDIT_DETAIL],
        )
    )


def record_refusal(
    session: Session,
    payment_id: str,
    refund_id: str | None,
    subject: str,
    to_status: str,
    cause: str,
    message: str,
) -> None:
    """A change the state machine refused: logged as a warning and kept in the trail."""
    log.warning(
        "status change refused",
        payment_id=payment_id,
        refund_id=refund_id,
        to_status=to_status,
        cause=cause,
        reason=message,
    )
    session.add(
        AuditEvent(
            payment_id=payment_id,
            refund_id=refund_id,
            subject=subject,
            to_status=to_status,
            accepted=False,
            cause=cause,
            detail=message[: columns.AUDIT_DETAIL],
        )
    )


class AuditRepository(Repository):
    def trail(self, payment_id: str) -> list[AuditEvent]:
        """The payment's and its refunds' changes, oldest first."""
        with self._reading() as session:
            return list(
                session.exec(
                    select(AuditEvent)
                    .where(AuditEvent.payment_id == payment_id)
                    .order_by(col(AuditEvent.audit_id))
                ).all()
            )
