"""Keys, roles and merchants at the API: who may call what, and a checkout key never learning
that another merchant's objects exist."""

from __future__ import annotations

import uuid

import httpx
import pytest

from payments.contracts import PaymentOutcome
from payments.vocabulary import PaymentStatus
from tests.api.conftest import BODY, Api
from tests.support.rows import add_saved_method, payment_row


def assert_error(response: httpx.Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == type_, response.text


def stored_payment(api: Api, merchant: str, status: PaymentStatus = PaymentStatus.SUCCESS) -> str:
    payment, _ = api.db.payments.insert(payment_row(merchant_id=merchant, amount=4999))
    if status != PaymentStatus.PENDING:
        api.db.payments.complete(
            PaymentOutcome(
                payment.payment_id,
                succeeded=status == PaymentStatus.SUCCESS,
                transaction_id="tx-1",
            )
        )
    return payment.payment_id


PROTECTED: list[tuple[str, str, object | None]] = [
    ("POST", "/initiate-payment", BODY),
    ("GET", "/payment/some-id", None),
    ("POST", "/verify-payment", {"payment_id": "some-id"}),
    ("POST", "/payment/some-id/cancel", None),
    ("GET", "/payment/some-id/events", None),
    ("POST", "/refund", {"payment_id": "some-id", "reason": "x"}),
    ("GET", "/refund/some-id", None),
    ("GET", "/payments", None),
    ("GET", "/refunds", None),
    ("POST", "/payment-methods", {"user_id": "u", "payment_token": "fake-valid-nonce"}),
    ("GET", "/payment-methods/some-id", None),
    ("GET", "/users/u/payment-methods", None),
    ("DELETE", "/payment-methods/some-id", None),
    ("PUT", "/exchange-rates/SEK/USD", {"rate": "0.1"}),
    ("GET", "/exchange-rates/SEK/USD", None),
    ("GET", "/reconciliation/latest", None),
    ("POST", "/reconciliation/run", None),
    ("POST", "/admin/api-keys", {"role": "checkout", "merchant_id": "m"}),
    ("GET", "/admin/api-keys", None),
    ("DELETE", "/admin/api-keys/key_000000000000", None),
    ("POST", "/codec/decode", {"payloads": []}),
    ("POST", "/codec/encode", {"payloads": []}),
]
ADMIN_ONLY = [
    request
    for request in PROTECTED
    if request[1].startswith(("/exchange-rates", "/reconciliation", "/admin", "/codec"))
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_every_endpoint_needs_a_key(
    api: Api, method: str, path: str, body: object | None
) -> None:
    missing = await api.anonymous.request(method, path, json=body)
    assert_error(missing, 401, "unauthenticated")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    unknown = await api.client("psk_000000000000_" + "A" * 43).request(method, path, json=body)
    assert_error(unknown, 401, "unauthenticated")
    not_bearer = await api.anonymous.request(
        method, path, json=body, headers={"Authorization": f"Basic {api.keys['admin']}"}
    )
    assert_error(not_bearer, 401, "unauthenticated")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_admin_endpoints_refuse_checkout_keys(
    api: Api, method: str, path: str, body: object | None
) -> None:
    assert_error(await api.acme.request(method, path, json=body), 403, "forbidden")


async def test_open_endpoints(api: Api) -> None:
    for path in ("/healthz", "/openapi.json", "/docs"):
        assert (await api.anonymous.get(path)).status_code == 200, path
    # The webhook is authenticated by its signature, not a key: refused as a bad webhook.
    webhook = await api.anonymous.post(
        "/webhooks/braintree", content=b"bt_signature=x&bt_payload=y"
    )
    assert_error(webhook, 400, "invalid_webhook")
    schema = (await api.anonymous.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


async def test_a_checkout_key_sees_only_its_merchant(api: Api) -> None:
    mine = stored_payment(api, "acme")
    theirs = stored_payment(api, "globex")
    assert (await api.acme.get(f"/payment/{mine}")).status_code == 200
    for response in (
        await api.acme.get(f"/payment/{theirs}"),
        await api.acme.get(f"/payment/{theirs}/events"),
        await api.acme.post("/verify-payment", json={"payment_id": theirs}),
        await api.acme.post(f"/payment/{theirs}/cancel"),
        await api.acme.post("/refund", json={"payment_id": theirs, "reason": "x"}),
    ):
        # Exactly what an unknown id gets: the other merchant's payment does not exist here.
        assert_error(response, 404, "not_found")
    unknown = await api.acme.get(f"/payment/{uuid.uuid4()}")
    foreign = await api.acme.get(f"/payment/{theirs}")
    assert (
        unknown.json()["error"]["message"].split()[0]
        == foreign.json()["error"]["message"].split()[0]
    )

    listed = (await api.acme.get("/payments")).json()["items"]
    assert [p["payment_id"] for p in listed] == [mine]
    assert listed[0]["merchant_id"] == "acme"
    # Asking for another merchant's list gives nothing, as for a merchant that does not exist.
    other = await api.acme.get("/payments", params={"merchant_id": "globex"})
    assert other.status_code == 200 and other.json()["items"] == []
    assert (await api.acme.get("/refunds", params={"merchant_id": "globex"})).json()["items"] == []

    # The platform operator sees every merchant's, and can pick one.
    everything = (await api.admin.get("/payments")).json()["items"]
    assert {p["payment_id"] for p in everything} == {mine, theirs}
    globex = (await api.admin.get("/payments", params={"merchant_id": "globex"})).json()["items"]
    assert [p["payment_id"] for p in globex] == [theirs]
    assert (await api.admin.get(f"/payment/{theirs}")).status_code == 200


async def test_a_refund_of_another_merchants_payment_writes_nothing(api: Api) -> None:
    theirs = stored_payment(api, "globex")
    refused = await api.acme.post(
        "/refund", json={"payment_id": theirs, "reason": "x"}, headers={"Idempotency-Key": "r1"}
    )
    assert_error(refused, 404, "not_found")
    assert (await api.admin.get("/refunds")).json()["items"] == []


async def test_saved_methods_belong_to_their_merchant(api: Api) -> None:
    method_id = add_saved_method(api.db, "v2:x:y", merchant_id="globex")
    assert_error(await api.acme.get(f"/payment-methods/{method_id}"), 404, "not_found")
    assert_error(await api.acme.delete(f"/payment-methods/{method_id}"), 404, "not_found")
    assert (await api.acme.get("/users/user-1/payment-methods")).json()["items"] == []
    assert [
        m["payment_method_id"]
        for m in (await api.globex.get("/users/user-1/payment-methods")).json()["items"]
    ] == [method_id]
    # Charging it with another merchant's key: refused exactly like an unknown method.
    unknown = await api.acme.post(
        "/initiate-payment",
        json={**BODY, "payment_token": None, "payment_method_id": str(uuid.uuid4())},
    )
    foreign = await api.acme.post(
        "/initiate-payment", json={**BODY, "payment_token": None, "payment_method_id": method_id}
    )
    assert_error(foreign, 422, "invalid_request")
    assert foreign.json()["error"]["field"] == unknown.json()["error"]["field"]
    assert (await api.admin.get("/payments")).json()["items"] == []


async def test_key_management(api: Api) -> None:
    created = await api.admin.post(
        "/admin/api-keys", json={"merchant_id": "initech", "role": "checkout"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("psk_") and body["merchant_id"] == "initech"
    assert body["created_by"] is not None
    new = api.client(body["secret"])
    assert (await new.get("/payments")).status_code == 200  # the merchant exists now

    listed = (await api.admin.get("/admin/api-keys")).text
    assert body["key_id"] in listed and body["secret"] not in listed
    assert body["secret"][-43:] not in listed

    assert (await api.admin.delete(f"/admin/api-keys/{body['key_id']}")).status_code == 204
    assert_error(await new.get("/payments"), 401, "unauthenticated")  # revoked at once
    assert (await api.admin.delete(f"/admin/api-keys/{body['key_id']}")).status_code == 204
    assert_error(await api.admin.delete("/admin/api-keys/key_ffffffffffff"), 404, "not_found")

    refused = await api.admin.post("/admin/api-keys", json={"role": "checkout"})
    assert_error(refused, 422, "invalid_request")
    bad_id = await api.admin.post(
        "/admin/api-keys", json={"merchant_id": "a:b", "role": "checkout"}
    )
    assert_error(bad_id, 422, "validation_error")
    admin = await api.admin.post("/admin/api-keys", json={"role": "admin"})
    assert admin.status_code == 201 and admin.json()["merchant_id"] is None
    await new.aclose()
