"""The operators' page (GET /admin/): payment trends of the last days, the payments held for
fraud review and the recent failed payments, each linking to its run in the Temporal UI.

Server-rendered HTML with its charts drawn here as inline SVG: the page loads nothing but
itself (its Content-Security-Policy says so), so it works without the internet and leaks
nothing to a third party. Every value from the database is escaped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from urllib.parse import quote

from payments.analytics import PaymentAnalytics
from payments.db.models import Payment
from payments.money import Money

# The payments held for review the page lists at most (GET /admin/reviews lists them all).
REVIEWS_SHOWN = 50

# Only this page itself, its inline style and script, and its own API calls.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 64em; color: #222 }
h1 { font-size: 1.5em } h2 { font-size: 1.1em; margin-top: 2em }
.figures { display: flex; gap: 2em; flex-wrap: wrap }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em }
.figure b { display: block; font-size: 1.4em }
table { border-collapse: collapse; width: 100% } td, th { padding: .3em .5em; text-align: left;
  border-bottom: 1px solid #eee; font-size: .9em }
svg text { font-size: 10px; fill: #555 }
.success { fill: #2e7d32 } .failure { fill: #c62828 } .line { fill: none; stroke-width: 2 }
"""

_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Payments — sign in</title>
<style>{style}</style></head>
<body><h1>Payment service</h1>
<p>Paste an <strong>admin</strong> API key. This browser then gets a session cookie
(8 hours, HttpOnly) for this page; the key itself is not kept.</p>
<form id="login"><input id="key" type="password" size="60" autocomplete="off"
placeholder="psk_..." aria-label="admin API key"> <button>Sign in</button></form>
<p id="result" role="status"></p>
<script>
document.getElementById("login").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const key = document.getElementById("key").value.trim();
  document.getElementById("key").value = "";
  const answer = await fetch("session", {{method: "POST",
    headers: {{"Authorization": "Bearer " + key}}, credentials: "same-origin"}});
  if (answer.ok) {{ location.reload(); return; }}
  document.getElementById("result").textContent =
    "Refused (" + answer.status + "): an active admin key is needed.";
}});
</script></body></html>
"""


def login_page() -> str:
    return _LOGIN.format(style=_STYLE)


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _bar_chart(figures: PaymentAnalytics) -> str:
    """Payments per bucket: successes under failures, one bar each."""
    width, height, left, bottom = 640, 180, 30, 20
    buckets = figures.buckets
    tallest = max((b.succeeded + b.failed for b in buckets), default=0) or 1
    slot = (width - left) / max(len(buckets), 1)
    scale = (height - bottom - 10) / tallest
    parts = [
        f'<svg id="payments-chart" role="img" aria-label="payments per day" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="0" y="12">{tallest}</text><text x="0" y="{height - bottom}">0</text>',
    ]
    for index, bucket in enumerate(buckets):
        x = left + index * slot + 2
        bar = max(slot - 4, 1)
        ok, failed = bucket.succeeded * scale, bucket.failed * scale
        base = height - bottom
        parts.append(
            f'<rect class="success" x="{x:.1f}" y="{base - ok:.1f}" width="{bar:.1f}" '
            f'height="{ok:.1f}"><title>{bucket.start:%Y-%m-%d}: {bucket.succeeded} paid'
            "</title></rect>"
        )
        parts.append(
            f'<rect class="failure" x="{x:.1f}" y="{base - ok - failed:.1f}" '
            f'width="{bar:.1f}" height="{failed:.1f}"><title>{bucket.start:%Y-%m-%d}: '
            f"{bucket.failed} failed</title></rect>"
        )
        if index % max(len(buckets) // 7, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 5}">{bucket.start:%m-%d}</text>')
    parts.append("</svg>")
    return "".join(parts)


_COLOURS = ("#1565c0", "#6a1b9a", "#ef6c00", "#00838f")


def _volume_chart(figures: PaymentAnalytics) -> str:
    """Volume paid per bucket, one line per currency (its own scale)."""
    width, height, left, bottom = 640, 180, 30, 20
    buckets = figures.buckets
    currencies = sorted(figures.volume, key=lambda c: -figures.volume[c])[: len(_COLOURS)]
    step = (width - left) / max(len(buckets) - 1, 1)
    parts = [
        f'<svg id="volume-chart" role="img" aria-label="volume paid per day" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for colour, currency in zip(_COLOURS, currencies, strict=False):
        highest = max(b.volume.get(currency, 0) for b in buckets) or 1
        scale = (height - bottom - 10) / highest
        points = " ".join(
            f"{left + i * step:.1f},{height - bottom - b.volume.get(currency, 0) * scale:.1f}"
            for i, b in enumerate(buckets)
        )
        parts.append(f'<polyline class="line" stroke="{colour}" points="{points}"/>')
    legend = " · ".join(
        f'<tspan fill="{colour}">{escape(currency)} (max '
        f"{escape(str(Money(max(b.volume.get(currency, 0) for b in buckets), currency)))})"
        "</tspan>"
        for colour, currency in zip(_COLOURS, currencies, strict=False)
    )
    parts.append(f'<text x="{left}" y="12">{legend}</text></svg>')
    return "".join(parts)


def _run_link(ui_url: str, namespace: str, payment_id: str) -> str:
    path = f"/namespaces/{quote(namespace)}/workflows/{quote('payment-' + payment_id)}"
    return f"{ui_url.rstrip('/')}{path}"


def _until(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return "—"
    left = max(int((deadline - now).total_seconds()), 0)
    return f"{deadline:%Y-%m-%d %H:%M} (in {left // 3600} h {left % 3600 // 60:02d} min)"


def _review_rows(held: list[Payment], ui_url: str, namespace: str, now: datetime) -> str:
    """Payments held for review, nearest deadline first: what the rules said, when they are
    voided unless decided (POST /admin/payments/{id}/review decides)."""
    if not held:
        return '<tr><td colspan="7">None waits.</td></tr>'
    return "".join(
        "<tr>"
        f"<td>{escape(_until(p.review_deadline_at, now))}</td>"
        f"<td>{escape(p.merchant_id)}</td>"
        f"<td>{escape(p.user_id)}</td>"
        f"<td>{escape(str(Money(p.amount, p.currency)))} {escape(p.currency)}</td>"
        f"<td>{p.fraud_score if p.fraud_score is not None else '—'}</td>"
        "<td>"
        + "<br>".join(
            f"<b>{escape(str(r.get('rule', '')))}</b>: {escape(str(r.get('message', '')))}"
            for r in p.fraud_reasons or []
        )
        + "</td>"
        f'<td><a class="run" href="{escape(_run_link(ui_url, namespace, p.payment_id))}">'
        f"{escape(p.payment_id)}</a></td>"
        "</tr>"
        for p in held
    )


def dashboard_page(
    figures: PaymentAnalytics,
    failed: list[Payment],
    *,
    held: list[Payment],
    ui_url: str,
    namespace: str,
    now: datetime,
) -> str:
    volume = ", ".join(
        escape(str(Money(amount, currency))) + " " + escape(currency)
        for currency, amount in sorted(figures.volume.items())
    )
    declines = "".join(
        f"<tr><td>{escape(d.reason)}</td><td>{escape(d.code or '')}</td><td>{d.count}</td></tr>"
        for d in figures.top_declines
    )
    rows = "".join(
        "<tr>"
        f"<td>{p.created_at:%Y-%m-%d %H:%M}</td>"
        f"<td>{escape(p.merchant_id)}</td>"
        f"<td>{escape(str(Money(p.amount, p.currency)))} {escape(p.currency)}</td>"
        f"<td>{escape(p.payment_method)}</td>"
        f"<td>{escape(p.failure_reason or '')} {escape(p.processor_response_code or '')}</td>"
        f'<td><a class="run" href="{escape(_run_link(ui_url, namespace, p.payment_id))}">'
        f"{escape(p.payment_id)}</a></td>"
        "</tr>"
        for p in failed
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Payments — last {len(figures.buckets)} days</title>
<style>{_STYLE}</style></head>
<body><main id="dashboard">
<h1>Payments, {figures.start:%Y-%m-%d} to {figures.end - timedelta(days=1):%Y-%m-%d}</h1>
<form method="post" action="logout" style="float: right"><button>Sign out</button></form>
<div class="figures">
<div class="figure">Payments<b id="count">{figures.count}</b></div>
<div class="figure">Success rate<b id="success-rate">{_percent(figures.success_rate)}</b></div>
<div class="figure">Refund rate<b>{_percent(figures.refund_rate)}</b></div>
<div class="figure">Time to final, p50 / p95<b>{_seconds(figures.seconds_to_final_p50)} /
{_seconds(figures.seconds_to_final_p95)}</b></div>
<div class="figure">Volume paid<b>{volume or "—"}</b></div>
</div>
<h2>Payments per day (paid, failed)</h2>
{_bar_chart(figures)}
<h2>Volume paid per day</h2>
{_volume_chart(figures)}
<h2>Held for fraud review ({len(held)}{"+" if len(held) >= REVIEWS_SHOWN else ""})</h2>
<p><small>Authorized, not charged; voided at the deadline unless an operator decides
(<code>POST /admin/payments/{{payment_id}}/review</code>).</small></p>
<table id="reviews"><tr><th>deadline (UTC)</th><th>merchant</th><th>user</th><th>amount</th>
<th>score</th><th>rules</th><th>run in the Temporal UI</th></tr>
{_review_rows(held, ui_url, namespace, now)}</table>
<h2>Top decline reasons</h2>
<table id="declines"><tr><th>reason</th><th>code</th><th>payments</th></tr>{declines}</table>
<h2>Recent failed payments</h2>
<table id="failed"><tr><th>created (UTC)</th><th>merchant</th><th>amount</th><th>method</th>
<th>reason</th><th>run in the Temporal UI</th></tr>{rows}</table>
<p><small>As of {now:%Y-%m-%d %H:%M} UTC.</small></p>
</main></body></html>
"""
