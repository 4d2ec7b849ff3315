"""The audit domain: the append-only record of every state change."""

#: (method, path prefix) of mutating routes that change no business state and so write no
#: audit entry; each has its own record instead (the login log).
AUDIT_EXEMPT_PATHS: list[tuple[str, str]] = [
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    # previews compute a change without making it
    ("POST", "/api/v1/stock/bulk/preview"),
]
