"""The fraud admin endpoints in-process, on SQLite and PostgreSQL: the blocklist (add, list,
remove, what is refused), the review queue, and what the review endpoint decides before it
asks Temporal (end to end: tests/e2e/test_fraud_e2e.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payments.contracts import FraudReason, FraudRecord, FraudVerdict
from tests.api.conftest import Api
from tests.support.rows import payment_row


async def test_blocklist_add_list_remove(api_on_each_database: Api) -> None:
    api = api_on_each_database
    created = await api.admin.post(
        "/admin/blocklist", json={"kind": "bin", "value": "411111", "reason": "stolen batch"}
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["entry_id"] and entry["kind"] == "bin" and entry["created_by"]
    again = await api.admin.post(
        "/admin/blocklist", json={"kind": "bin", "value": "411111", "reason": "again"}
    )
    assert again.status_code == 409 and entry["entry_id"] in again.text
    listed = (await api.admin.get("/admin/blocklist")).json()["items"]
    assert entry["entry_id"] in [item["entry_id"] for item in listed]
    assert (await api.admin.delete(f"/admin/blocklist/{entry['entry_id']}")).status_code == 204
    assert (await api.admin.delete(f"/admin/blocklist/{entry['entry_id']}")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "card", "value": "x", "reason": "r"},
        {"kind": "bin", "value": "4111", "reason": "r"},
        {"kind": "bin", "value": "41111a", "reason": "r"},
        {"kind": "fingerprint", "value": "not-hex", "reason": "r"},
        {"kind": "user", "value": "", "reason": "r"},
        {"kind": "user", "value": "u", "reason": ""},
        {"kind": "user", "value": "4111 1111 1111 1111", "reason": "r"},
        {"kind": "user", "value": "u", "reason": "r", "extra": 1},
    ],
)
async def test_bad_blocklist_entries_are_422(api: Api, body: dict[str, object]) -> None:
    response = await api.admin.post("/admin/blocklist", json=body)
    assert response.status_code == 422, response.text
    assert "4111 1111 1111 1111" not in response.text  # card data is never echoed


async def test_a_fingerprint_is_kept_in_lower_case(api: Api) -> None:
    response = await api.admin.post(
        "/admin/blocklist", json={"kind": "fingerprint", "value": "AB" * 16, "reason": "testing"}
    )
    assert response.status_code == 201 and response.json()["value"] == "ab" * 16


async def test_only_admins_manage_fraud(api: Api) -> None:
    for method, path in [
        ("POST", "/admin/blocklist"),
        ("GET", "/admin/blocklist"),
        ("DELETE", "/admin/blocklist/x"),
        ("GET", "/admin/reviews"),
        ("POST", "/admin/payments/x/review"),
    ]:
        body = {"decision": "approve"} if path.endswith("review") else None
        assert (await api.acme.request(method, path, json=body)).status_code == 403, path
        assert (await api.anonymous.request(method, path, json=body)).status_code == 401, path


async def test_the_review_queue_lists_held_payments_nearest_deadline_first(
    api_on_each_database: Api,
) -> None:
    api = api_on_each_database
    verdict = FraudVerdict("review", 70, [FraudReason("repeat_payment", "again")], 20, "v1")
    soon = datetime.now(UTC) + timedelta(hours=1)
    held = []
    for hours in (5, 1):
        payment, _ = api.db.payments.insert(payment_row(merchant_id="acme"))
        deadline = (soon + timedelta(hours=hours)).isoformat()
        api.db.fraud.record_verdict(
            FraudRecord(payment.payment_id, verdict, "ab" * 16, "401288", deadline)
        )
        held.append(payment.payment_id)
    response = await api.admin.get("/admin/reviews", params={"limit": 200})
    assert response.status_code == 200
    items = [i for i in response.json()["items"] if i["payment_id"] in held]
    assert [i["payment_id"] for i in items] == [held[1], held[0]]
    assert items[0]["fraud"]["decision"] == "review"
    assert items[0]["fraud"]["reasons"] == [{"rule": "repeat_payment", "message": "again"}]
    assert items[0]["payment_method_fingerprint"] == "ab" * 16
    assert items[0]["card_bin"] == "401288"
    # GET /payment/{id} shows the verdict to the payment's merchant too.
    shown = (await api.acme.get(f"/payment/{held[0]}")).json()
    assert shown["fraud"]["score"] == 70 and shown["review_deadline_at"] is not None
    assert (await api.admin.get("/admin/reviews", params={"limit": 0})).status_code == 422


async def test_reviewing_an_unknown_payment_is_404_and_a_bad_decision_422(api: Api) -> None:
    unknown = await api.admin.post("/admin/payments/nope/review", json={"decision": "approve"})
    assert unknown.status_code == 404
    payment, _ = api.db.payments.insert(payment_row(merchant_id="acme"))
    for body in ({"decision": "maybe"}, {"decision": "approve", "note": "x" * 501}, {}):
        response = await api.admin.post(f"/admin/payments/{payment.payment_id}/review", json=body)
        assert response.status_code == 422, body
