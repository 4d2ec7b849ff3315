"""Runtime settings: one class, every knob with a default that works for `make run`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SELFMART_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: str = Field("development", description="development | production | test")
    demo: bool = Field(False, description="demo mode: seeded accounts need no password change")
    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'selfmart.db'}"
    redis_url: str | None = None
    secret_key: SecretStr = SecretStr("dev-insecure-change-me-0123456789abcdef")
    #: Earlier secret keys, still accepted to decrypt what they sealed while it is re-encrypted
    #: under `secret_key` (rotation without downtime; `selfmart rotate-secrets`). JSON list.
    secret_keys_previous: list[SecretStr] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    #: Where browsers, phones and the payment sandboxes reach this server (links in messages,
    #: QR codes, notify URLs, the sandboxes' own base URL). Default: http://{host}:{port}, with
    #: a wildcard host read as 127.0.0.1, so SELFMART_PORT alone moves the demo's sandboxes too.
    public_base_url: str = ""
    cors_origins: list[str] = Field(default_factory=list)
    #: Largest request body accepted, in bytes; a bigger one is refused (413) unread.
    max_body_bytes: int = 1024 * 1024
    #: Other limits for some paths, e.g. {"/api/v1/products/import": 33554432}: each key is a
    #: path prefix where "*" stands for one segment ("/api/v1/products/*/images"); the longest
    #: matching key wins. From the environment as JSON.
    max_body_bytes_by_path: dict[str, int] = Field(default_factory=dict)
    #: Attempts per client IP on the public endpoints ("10/minute;100/hour": all must hold).
    rate_limits: dict[str, str] = Field(
        default_factory=lambda: {
            "login": "20/minute;200/hour",
            "refresh": "60/minute",
            "terminal_activate": "20/minute;100/hour",
            "payment_notify": "6000/minute",
            # the member page's SMS code and sign-in (selfmart.members.portal)
            "member_portal": "30/minute;300/hour",
        }
    )
    #: Members at the terminal (selfmart.members.identify), counted per key rather than per
    #: public route: identify calls per terminal address, wrong member codes per terminal,
    #: wrong SMS codes and SMS codes sent per mobile. JSON from the environment.
    member_rate_limits: dict[str, str] = Field(
        default_factory=lambda: {
            "member_identify": "120/minute",
            "member_code_failures": "10/minute;60/hour",
            "member_sms_failures": "5/15minutes;20/day",
            "member_sms_sends": "1/minute;10/day",
        }
    )
    #: Redis key prefix of the rate-limit counters (when redis_url is set).
    rate_limit_key_prefix: str = "selfmart:ratelimit"
    log_level: str = "INFO"
    log_json: bool = False
    default_timezone: str = "Asia/Shanghai"

    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    password_min_length: int = 8

    terminal_clock_skew_seconds: int = 300
    terminal_key_grace_seconds: int = 24 * 3600
    terminal_activation_ttl_seconds: int = 24 * 3600

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_sender: str = "selfmart <noreply@selfmart.local>"
    #: implicit TLS (usually port 465); smtp_starttls upgrades a plain connection instead
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = 15.0

    #: SMS through an Aliyun-SMS-style HTTP API (SendSms, signature v1). By default it points at
    #: our own sandbox of that API, served by this process at /sandbox/sms/.
    sms_endpoint: str | None = Field(None, description="default: {public_base_url}/sandbox/sms/")
    sms_access_key_id: str = "sandbox-access-key"
    sms_access_key_secret: SecretStr = SecretStr("sandbox-access-secret")
    sms_sign_name: str = "selfmart"
    #: one template with ${title} and ${content}, used for every notification text
    sms_template_code: str = "SMS_SELFMART_NOTICE"
    sms_region: str = "cn-hangzhou"
    sms_timeout_seconds: float = 10.0
    #: serve the SMS sandbox at /sandbox/sms/ (None: everywhere but production)
    sms_sandbox: bool | None = None
    #: serve our sandboxes of WeChat Pay, Alipay and the UnionPay gateway at /sandbox/wechatpay,
    #: /sandbox/alipay and /sandbox/unionpay (None: everywhere but production)
    payment_sandbox: bool | None = None
    #: where the sandboxes keep their generated keys (so `make run` keeps the same merchant)
    payment_sandbox_dir: Path = ROOT / "var" / "sandbox"
    #: the sandboxes' callback retry schedules are divided by this (tests compress them)
    payment_sandbox_time_scale: float = Field(1.0, gt=0)
    #: outgoing webhook calls (group-chat robots)
    webhook_timeout_seconds: float = 10.0
    #: diagnostics: the payment callbacks' fast lane writes its per-stage wall-clock timings
    #: to this file (payments.probe); unset, nothing is timed
    callback_probe: Path | None = None
    #: FastAPI's native OpenTelemetry traces, metrics and logs, for a deployment that installs
    #: and configures an OpenTelemetry SDK. Off, FastAPI no longer asks OpenTelemetry on every
    #: request whether a provider is configured (~15-30 µs a request, every request: a tenth
    #: of a payment callback's cost); selfmart's own metrics and logs do not depend on it.
    opentelemetry: bool = False

    #: Redis stream the job queue lives in (several deployments may share one Redis)
    jobs_queue: str = "selfmart:jobs"
    #: with several `selfmart scheduler` processes, only the holder of this Redis lease sends
    #: the schedules; a stand-by takes over within this many seconds when the holder stops
    scheduler_lease_seconds: float = Field(15.0, ge=1)
    #: an outbox event is tried this many times, then marked failed
    outbox_max_attempts: int = 8
    #: retry n waits base * 2**(n-1) seconds, at most outbox_retry_max_seconds
    outbox_retry_base_seconds: float = 30.0
    outbox_retry_max_seconds: float = 3600.0
    #: a claimed event is invisible to other workers this long (longer than any handler runs)
    outbox_lease_seconds: int = 300
    audit_export_max_rows: int = 200_000

    #: Orders: an unpaid order is closed this long after it was received.
    order_payment_timeout_minutes: int = 15
    #: Orders: how long the signed receipt link (the QR code on the receipt) stays valid.
    receipt_link_ttl_days: int = 180
    #: Orders: customer look-ups allowed per client address per minute (counted with the
    #: public rate limits: in Redis when redis_url is set, so every process counts together).
    order_lookup_per_minute: int = Field(10, ge=1)
    #: Orders: wrong guesses (number + phone's last four) allowed on one order number per hour,
    #: from any address.
    order_lookup_failures_per_hour: int = Field(10, ge=1)

    media_dir: Path = ROOT / "var" / "media"
    static_dir: Path = ROOT / "web" / "dist"

    # catalog: product images and imports
    media_storage: str = Field("local", description="local (media_dir) | s3")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, OSS)")
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_prefix: str = "media/"
    image_max_bytes: int = 5 * 1024 * 1024
    image_thumb_px: int = 256
    media_url_ttl_seconds: int = 24 * 3600
    import_max_bytes: int = 30 * 1024 * 1024
    import_max_rows: int = 100_000
    #: Larger imports run as a background job with progress (GET /api/v1/jobs/{id}).
    import_sync_max_rows: int = 2_000

    # monitoring and backups (docs/operations.md)
    #: Bearer token /metrics requires; unset, /metrics answers loopback clients only.
    metrics_token: SecretStr | None = None
    #: /metrics computes its database figures at most this often (every scrape reads the cache)
    metrics_cache_seconds: float = Field(10.0, ge=0)
    #: this machine's name in the monitoring page and in host alerts (default: its host name);
    #: give each machine (or each API process run alone on one host) a different one
    machine_name: str | None = None
    #: with Redis, each API process publishes its machine's host figures and HTTP window this
    #: often (they expire after three periods: a machine that stops publishing drops out)
    machine_sample_seconds: float = Field(15.0, ge=1)
    #: a terminal seen within this many seconds counts as online
    terminal_online_seconds: int = Field(300, ge=1)
    #: heartbeats accepted per terminal and minute (the protocol sends one); more are a 429
    terminal_heartbeats_per_minute: int = Field(20, ge=1)
    #: business-event batches accepted per terminal and minute (selfmart.behaviour); more: 429
    terminal_event_batches_per_minute: int = Field(30, ge=1)
    #: most business-log events one export holds
    behaviour_export_max_rows: int = Field(100_000, ge=1)
    # log retention (docs/operations.md): the nightly logs.prune job deletes older rows
    #: audit entries recording changes (the operation log's business part)
    retention_audit_days: int = Field(3 * 365, ge=1)
    #: security events of the operation log (denials, lockouts, key rotations, PII reveals)
    retention_security_days: int = Field(2 * 365, ge=1)
    #: terminals' business events (selfmart.behaviour)
    retention_business_days: int = Field(180, ge=1)
    #: the login log
    retention_login_days: int = Field(365, ge=1)
    #: rows deleted per transaction while pruning (short transactions, never a long lock)
    retention_batch_rows: int = Field(5000, ge=1)
    #: basket analyses started by hand are deleted (their rules with them) by the nightly run
    #: once they are this many days old; nightly ones after 90 days
    analytics_manual_basket_run_keep_days: int = Field(365, ge=1, le=36_500)
    #: the daily report email (07:30 in default_timezone): on/off; whether it goes to every
    #: active user holding analytics:read with an email address (each the figures of their own
    #: stores, in their own language); further addresses that get the chain-wide report (a
    #: JSON list in the environment, e.g. SELFMART_ANALYTICS_DAILY_REPORT_TO='["boss@example.cn"]')
    #: and the language of those
    analytics_daily_report: bool = True
    analytics_daily_report_users: bool = True
    analytics_daily_report_to: list[str] = Field(default_factory=list)
    analytics_daily_report_locale: Literal["zh-CN", "en"] = "zh-CN"
    backup_dir: Path = ROOT / "var" / "backups"
    #: archives kept (locally and on S3); older ones are deleted after a successful backup
    backup_keep: int = Field(7, ge=1)
    #: the scheduled backup (daily at 03:30 in default_timezone) runs when this is on
    backup_scheduled: bool = True
    #: also upload each archive to this bucket (the SELFMART_S3_* endpoint and keys)
    backup_s3_bucket: str | None = None
    backup_s3_prefix: str = "backups/"

    def body_limits(self) -> dict[str, int]:
        """Per-path body limits: the upload routes take their file limit plus room for the
        multipart envelope (so the route's own 413 names the file), then what is configured."""
        envelope = 1024 * 1024
        return {
            "/api/v1/products/import": self.import_max_bytes + envelope,
            "/api/v1/members/import": self.import_max_bytes + envelope,
            "/api/v1/products/*/images": self.image_max_bytes + envelope,
            **self.max_body_bytes_by_path,
        }

    @model_validator(mode="after")
    def _default_public_base_url(self) -> Settings:
        if not self.public_base_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            if ":" in host:  # an IPv6 address
                host = f"[{host}]"
            self.public_base_url = f"http://{host}:{self.port}"
        return self

    @property
    def sms_url(self) -> str:
        return self.sms_endpoint or self.public_base_url.rstrip("/") + "/sandbox/sms/"

    @property
    def payment_sandbox_enabled(self) -> bool:
        if self.payment_sandbox is not None:
            return self.payment_sandbox
        return self.env != "production"

    @property
    def sms_sandbox_enabled(self) -> bool:
        return self.sms_sandbox if self.sms_sandbox is not None else self.env != "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
