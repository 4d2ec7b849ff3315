"""Health checks and Prometheus metrics: /healthz, /readyz, /metrics (docs/operations.md)."""
