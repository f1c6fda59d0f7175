"""The Order Service, as this service uses it when ``ORDER_SERVICE_URL`` is set.

``client``: the contract (``OrderService``), its HTTP client and errors; ``checks``: whether a
request may pay an order and for how much. An in-memory Order Service for tests and local runs
is ``devtools.order_service``.
"""

from payments.orders.checks import PAYABLE_STATUSES, check_order_for_payment
from payments.orders.client import (
    HttpOrderService,
    Order,
    OrderService,
    OrderStatus,
    OrderUpdateRejected,
    PaymentResult,
    create_order_service_http_client,
)

__all__ = [
    "PAYABLE_STATUSES",
    "HttpOrderService",
    "Order",
    "OrderService",
    "OrderStatus",
    "OrderUpdateRejected",
    "PaymentResult",
    "check_order_for_payment",
    "create_order_service_http_client",
]
