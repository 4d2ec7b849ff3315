"""The audit domain: the append-only record of every state change."""

#: (method, path prefix) of mutating routes that change no business state and so write no
#: audit entry; each says why.
AUDIT_EXEMPT_PATHS: list[tuple[str, str]] = [
    # sessions have their own record: the login log
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    # previews compute a change without making it
    ("POST", "/api/v1/stock/bulk/preview"),
    # marking one's own messages read is personal reading state, not business state: nobody
    # else sees it and it changes nothing in the stores (read_at itself records when)
    ("POST", "/api/v1/messages/"),
    # Terminal heartbeats (every terminal, every minute) only refresh `last_seen_at`, which is
    # telemetry, not business state: auditing each would bury the log under noise. A heartbeat
    # that changes something real (app version, address) IS audited by the service
    # (terminals.service.heartbeat); the exemption only lets the unchanged ones pass the guard.
    ("POST", "/api/terminal/v1/heartbeat"),
    # A member quote prices an order without making it (like a preview): nothing is written.
    ("POST", "/api/terminal/v1/members/quote"),
    # The member page's sign-in code: audited when sent; for a number no member has, nothing
    # is written and the answer is the same (so the page cannot be used to probe numbers).
    ("POST", "/api/v1/public/members/sms-code"),
    # A bulk-edit preview computes the changes and writes nothing (POST only because the
    # selection is a body); the apply that follows writes one entry per product changed.
    ("POST", "/api/v1/products/bulk/preview"),
    # Which members a segment's rules would pick now: computed, nothing written.
    ("POST", "/api/v1/members/segments/preview"),
    # Payment platforms' callbacks have their own record, every one verified or not:
    # payment_callbacks (with what was made of it and why). What one changes in an order is
    # audited there (order.pay, order.refund...); a copy that changes nothing writes no entry.
    ("POST", "/api/payments/notify/"),
    # Terminals' business events (scans, checkouts...) are their own record, the business log
    # (selfmart.behaviour): an audit entry per batch would only repeat it.
    ("POST", "/api/terminal/v1/events"),
]
