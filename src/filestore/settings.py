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
    db_connect_timeout_seconds: float = 3.0
    auto_migrate: bool = Field(default=True, validation_alias="FILESTORE_AUTO_MIGRATE")

    # Object storage: unset MINIO_ENDPOINT means a local directory store under the data dir.
    minio_endpoint: str | None = None
    minio_access_key: str = "minioadmin"
    minio_secret_key: str = "minioadmin123"
    minio_use_ssl: bool = False
    minio_region: str = "us-east-1"
    storage_timeout_seconds: float = 5.0

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
    upload_chunk_size: int = 8 * 1024 * 1024
    upload_concurrency: int = 4

    # Background jobs: a worker inside the API process (default: only in embedded dev mode);
    # production runs `filestore worker` processes instead.
    in_process_worker: bool | None = Field(default=None, validation_alias="FILESTORE_IN_PROCESS_WORKER")
    worker_concurrency: int = 2

    # Auth.
    jwt_secret_key: str = DEFAULT_JWT_SECRET
    access_token_expire_minutes: int = 30
    admin_username: str = "admin"
    admin_password: str | None = None

    # HTTP.
    public_base_url: str | None = None
    # When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`.
    metrics_token: str | None = None
    log_level: str = "INFO"

    @field_validator("max_file_size", mode="before")
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
