"""Typed settings, read once from the environment (and `.env`) under the seed's own names.

Embedded dev mode is "no `DATABASE_URL`": Filestore then starts its own PostgreSQL under
`FILESTORE_DATA_DIR` and may bootstrap the `admin`/`admin123` account. Outside that mode the
validators refuse default secrets, so a production deployment cannot run with them by mistake.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_JWT_SECRET = "change-me-dev-only-secret"
DEFAULT_ADMIN_PASSWORD = "admin123"

BucketRole = Literal["customer_uploads", "ticket_media", "csv_imports", "backups", "temp"]


def _strip_inline_comment(value: object) -> object:
    """Accept the seed's `.env` style `MAX_FILE_SIZE=104857600  # 100MB in bytes`."""
    if isinstance(value, str) and " #" in value:
        return value.split(" #", 1)[0].strip()
    return value


class Settings(BaseSettings):
    """Every setting Filestore reads; `.env.example` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Database: unset means embedded dev mode (a PostgreSQL of our own under the data dir).
    database_url: str | None = None
    filestore_data_dir: Path = Path(".filestore")
    db_pool_size: int = 10
    # Bounds on waiting for PostgreSQL: to connect (libpq's connect_timeout, whole seconds, at
    # least 1), and for any answer once connected (a query, the pool's pre-ping, a commit).
    # Past either the request gets 503 `database_unavailable`, even when the server is frozen.
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    db_statement_timeout_seconds: float = Field(default=10.0, gt=0)
    auto_migrate: bool = Field(default=True, validation_alias="FILESTORE_AUTO_MIGRATE")

    # Object storage: unset MINIO_ENDPOINT means a local directory store under the data dir.
    minio_endpoint: str | None = None
    minio_access_key: str = "minioadmin"
    minio_secret_key: str = "minioadmin123"
    minio_use_ssl: bool = False
    minio_region: str = "us-east-1"
    # Bounds on waiting for the store: STORAGE_TIMEOUT_SECONDS to connect (and for the /health
    # probe); STORAGE_READ_TIMEOUT_SECONDS for the longest silence while waiting for an answer
    # or between two reads of a transfer. A long transfer that keeps moving is never cut.
    storage_timeout_seconds: float = Field(default=5.0, gt=0)
    storage_read_timeout_seconds: float = Field(default=15.0, gt=0)
    # Where clients reach the store, for presigned download links (`?redirect=true`): a URL
    # such as https://files-s3.example.com. Unset: MINIO_ENDPOINT (fine when clients can reach
    # it). Links last DOWNLOAD_URL_TTL_SECONDS (at most 5 minutes).
    minio_public_endpoint: str | None = None
    download_url_ttl_seconds: int = Field(default=300, ge=1, le=300)
    # Bytes of small objects (<= 64 KiB each) each API process keeps for downloads
    # (`files/object_cache.py`); 0 turns the cache off.
    download_cache_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    # Direct uploads (POST /files/direct-uploads): how long the presigned PUT works.
    direct_upload_url_ttl_seconds: int = Field(default=900, ge=1, le=900)

    minio_bucket_customer_uploads: str = "customer-uploads"
    minio_bucket_ticket_media: str = "ticket-media"
    minio_bucket_csv_imports: str = "csv-imports"
    minio_bucket_backups: str = "backups"
    minio_bucket_temp: str = "temp"

    # Upload rules.
    max_file_size: int = 104_857_600
    allowed_file_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["csv", "jpg", "jpeg", "png", "pdf", "doc", "docx", "xls", "xlsx"]
    )
    temp_file_ttl_hours: int = 24
    file_cleanup_interval_seconds: int = 300
    # Objects younger than this are never treated as orphans: their upload may still be running.
    orphan_grace_seconds: int = 3600
    # SIGTERM to `filestore serve`: requests in flight get this long to finish, new ones a 503.
    shutdown_drain_seconds: float = Field(default=30, ge=0, le=3600)
    # An idle keep-alive connection is closed after this long. Longer than the idle timeout of
    # the load balancer or client in front (AWS ALB 60 s, httpx 5 s): the side that closes first
    # must be the client, or a request sent as the server closes is lost ("server disconnected").
    http_keepalive_seconds: float = Field(default=65, gt=0, le=3600)
    # glibc malloc arenas per process (filestore/memory.py): 2 keeps a busy API process's RSS
    # flat; 0 leaves glibc's default (8 per core). Also read by glibc itself from the
    # environment, with the same meaning.
    malloc_arena_max: int = Field(default=2, ge=0, le=1024)
    # SIGTERM to `filestore worker`: running jobs get this long to finish; an import still
    # running then stops at its last checkpoint and is queued again for another worker.
    worker_shutdown_seconds: float = Field(default=30, ge=0, le=3600)
    # Objects of each bucket the orphan check lists per sweep, resuming where the last stopped.
    orphan_sweep_batch: int = Field(default=1000, ge=1, le=100_000)
    upload_chunk_size: int = 8 * 1024 * 1024
    # Upload bodies (multipart and tus PATCH) must keep moving: no byte for
    # UPLOAD_IDLE_TIMEOUT_SECONDS, or fewer than UPLOAD_MIN_BYTES_PER_SECOND on average over
    # any UPLOAD_RATE_WINDOW_SECONDS, ends the upload with 408 (slow-loris clients). 2 KiB/s is
    # 16 kbit/s: below what a phone on 2G EDGE sends; the idle bound stays under tus's 60 s lease.
    upload_idle_timeout_seconds: float = Field(default=30.0, gt=0, le=50)
    upload_min_bytes_per_second: int = Field(default=2048, ge=0)
    upload_rate_window_seconds: float = Field(default=60.0, gt=0)
    upload_concurrency: int = 4
    # Resumable uploads (tus, /files/tus/): an unfinished upload expires this long after its
    # last byte arrived; the cleanup sweep then removes its parts.
    tus_upload_expiry_hours: float = Field(default=24, gt=0)

    # Virus scanning (off by default): every upload is streamed to clamd while it is stored.
    # CLAMD_SOCKET, when set, is used instead of CLAMD_HOST/CLAMD_PORT. When clamd cannot scan
    # a file, the upload is refused (503) unless VIRUS_SCAN_FAIL_OPEN, which stores it as
    # scan_status "unscanned". The timeout covers each write and the verdict after the last byte.
    virus_scan: Literal["off", "clamd"] = "off"
    clamd_host: str = "localhost"
    clamd_port: int = Field(default=3310, ge=1, le=65535)
    clamd_socket: Path | None = None
    clamd_timeout_seconds: float = Field(default=60.0, gt=0)
    virus_scan_fail_open: bool = False

    # Background jobs: a worker inside the API process (default: only in embedded dev mode);
    # production runs `filestore worker` processes instead.
    in_process_worker: bool | None = Field(
        default=None, validation_alias="FILESTORE_IN_PROCESS_WORKER"
    )
    worker_concurrency: int = 2

    # Auth.
    jwt_secret_key: str = DEFAULT_JWT_SECRET
    access_token_expire_minutes: int = Field(default=30, ge=1)
    admin_username: str = "admin"
    admin_password: str | None = None
    # Refresh tokens slide (each lasts this long after its rotation) inside a session that can
    # never outlive SESSION_MAX_AGE_DAYS from its login.
    refresh_token_expire_days: float = Field(default=7, gt=0)
    session_max_age_days: float = Field(default=30, gt=0)
    password_reset_ttl_hours: float = Field(default=24, gt=0)
    # Where a reset link points: a template with `{token}`; default
    # `<PUBLIC_BASE_URL>/auth/reset-password#token={token}` (the fragment never reaches a log).
    password_reset_url: str | None = None
    # Brute force: failures per account (and per client IP) within the window lock logins;
    # each further lockout of the same account doubles, up to LOGIN_LOCKOUT_MAX_SECONDS.
    login_max_failures: int = Field(default=5, ge=1)
    login_ip_max_failures: int = Field(default=100, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_lockout_max_seconds: int = Field(default=3600, ge=1)

    # E-mail (password reset links, import invites); off while SMTP_HOST is unset.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "filestore@localhost"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 10.0

    # HTTP.
    public_base_url: str | None = None
    # Browser origins allowed to call the API (CORS), comma-separated; none by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Proxies whose X-Forwarded-Proto/-For/-Host are believed (uvicorn's own setting and default).
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Every request body but the upload's (which MAX_FILE_SIZE limits): JSON, the login form.
    max_json_body_size: int = Field(default=1_048_576, ge=1)
    # Swagger UI (/docs), ReDoc (/redoc) and /openapi.json; turn off to hide the API's map.
    filestore_api_docs: bool = True
    # When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`.
    metrics_token: str | None = None
    log_level: str = "INFO"

    @field_validator("max_file_size", "max_json_body_size", mode="before")
    @classmethod
    def _size_without_comment(cls, value: object) -> object:
        return _strip_inline_comment(value)

    @field_validator("allowed_file_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        value = _strip_inline_comment(value)
        if isinstance(value, str):
            return [part.strip().lower().lstrip(".") for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("virus_scan", mode="before")
    @classmethod
    def _scan_mode(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return "off" if value in {"", "false", "no", "none", "0"} else value
        return value

    @field_validator("clamd_socket", mode="before")
    @classmethod
    def _empty_socket_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("max_file_size")
    @classmethod
    def _positive_size(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("MAX_FILE_SIZE must be a positive number of bytes")
        return value

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.embedded_mode:
            return self
        if self.jwt_secret_key == DEFAULT_JWT_SECRET or len(self.jwt_secret_key) < 32:
            raise ValueError(
                "JWT_SECRET_KEY must be set to a random value of at least 32 characters "
                "when DATABASE_URL is set (only embedded dev mode may use the default)"
            )
        if self.admin_password == DEFAULT_ADMIN_PASSWORD:
            raise ValueError("ADMIN_PASSWORD=admin123 is only allowed in embedded dev mode")
        return self

    @property
    def embedded_mode(self) -> bool:
        """True when Filestore runs its own PostgreSQL (no DATABASE_URL given)."""
        return not self.database_url

    @property
    def runs_in_process_worker(self) -> bool:
        return self.embedded_mode if self.in_process_worker is None else self.in_process_worker

    @property
    def uses_s3(self) -> bool:
        return bool(self.minio_endpoint)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)

    def password_reset_link(self, token: str) -> str:
        """The link a user follows to choose a new password."""
        if self.password_reset_url:
            return self.password_reset_url.replace("{token}", token)
        base = (self.public_base_url or "http://localhost:8000").rstrip("/")
        return f"{base}/auth/reset-password#token={token}"

    @cached_property
    def buckets(self) -> dict[BucketRole, str]:
        """Bucket role -> configured bucket name."""
        return {
            "customer_uploads": self.minio_bucket_customer_uploads,
            "ticket_media": self.minio_bucket_ticket_media,
            "csv_imports": self.minio_bucket_csv_imports,
            "backups": self.minio_bucket_backups,
            "temp": self.minio_bucket_temp,
        }

    @property
    def objects_dir(self) -> Path:
        return self.filestore_data_dir / "objects"

    @property
    def pgdata_dir(self) -> Path:
        return self.filestore_data_dir / "pgdata"


def _dev_secret(data_dir: Path) -> str:
    """A random JWT secret kept in the data dir, so dev-mode tokens survive restarts."""
    path = data_dir / "jwt-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def get_settings() -> Settings:
    """Read the settings from the environment; call once per process and pass the object down."""
    settings = Settings()
    if settings.embedded_mode and settings.jwt_secret_key == DEFAULT_JWT_SECRET:
        settings.jwt_secret_key = _dev_secret(settings.filestore_data_dir)
    return settings
