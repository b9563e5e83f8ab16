"""Settings: the seed's variable names, the production guard rails, and DATABASE_URL forms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from filestore.db import libpq_url, sqlalchemy_url
from filestore.settings import DEFAULT_JWT_SECRET, Settings, get_settings
from tests.conftest import Postgres
from tests.fixtures.live import clean_environ
from tests.fixtures.servers import free_port

STRONG_SECRET = "s3cr3t-" + "x" * 40
PG_URL = "postgresql://filestore:pw@db.internal:5432/filestore"

SEED_DOT_ENV = """\
# MinIO Configuration
MINIO_ENDPOINT=localhost:9000
MINIO_ACCESS_KEY=minioadmin
MINIO_SECRET_KEY=minioadmin123
MINIO_USE_SSL=false

# Bucket Names
MINIO_BUCKET_CUSTOMER_UPLOADS=customer-uploads
MINIO_BUCKET_TICKET_MEDIA=ticket-media
MINIO_BUCKET_CSV_IMPORTS=csv-imports
MINIO_BUCKET_BACKUPS=backups
MINIO_BUCKET_TEMP=temp

# File Upload Limits
MAX_FILE_SIZE=104857600  # 100MB in bytes
ALLOWED_FILE_TYPES=csv,jpg,jpeg,png,pdf,doc,docx,xls,xlsx
"""


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited Filestore variables and no repo `.env`: each test sets what it reads."""
    names = {name.upper() for name in Settings.model_fields} | {"FILESTORE_AUTO_MIGRATE"}
    kept = clean_environ()
    for key in list(os.environ):
        if key.upper() in names or key not in kept:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


SEED_FILE_TYPES = ["csv", "jpg", "jpeg", "png", "pdf", "doc", "docx", "xls", "xlsx"]


class TestSeedVariableNames:
    def test_minio_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MINIO_ENDPOINT", "minio.internal:9000")
        monkeypatch.setenv("MINIO_ACCESS_KEY", "AKIA-test")
        monkeypatch.setenv("MINIO_SECRET_KEY", "very-secret")
        monkeypatch.setenv("MINIO_USE_SSL", "true")
        settings = Settings()
        assert settings.minio_endpoint == "minio.internal:9000"
        assert settings.minio_access_key == "AKIA-test"
        assert settings.minio_secret_key == "very-secret"
        assert settings.minio_use_ssl is True
        assert settings.uses_s3

    def test_use_ssl_false(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MINIO_USE_SSL", "false")
        assert Settings().minio_use_ssl is False

    def test_bucket_names(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MINIO_BUCKET_CUSTOMER_UPLOADS", "cu")
        monkeypatch.setenv("MINIO_BUCKET_TICKET_MEDIA", "tm")
        monkeypatch.setenv("MINIO_BUCKET_CSV_IMPORTS", "ci")
        monkeypatch.setenv("MINIO_BUCKET_BACKUPS", "bk")
        monkeypatch.setenv("MINIO_BUCKET_TEMP", "tp")
        assert Settings().buckets == {
            "customer_uploads": "cu",
            "ticket_media": "tm",
            "csv_imports": "ci",
            "backups": "bk",
            "temp": "tp",
        }

    def test_defaults_are_the_seeds(self) -> None:
        settings = Settings()
        assert settings.max_file_size == 104_857_600
        assert settings.allowed_file_types == SEED_FILE_TYPES
        assert set(settings.buckets.values()) == {
            "customer-uploads",
            "ticket-media",
            "csv-imports",
            "backups",
            "temp",
        }
        assert settings.embedded_mode
        assert not settings.uses_s3

    def test_max_file_size_with_the_seeds_inline_comment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MAX_FILE_SIZE", "104857600  # 100MB in bytes")
        assert Settings().max_file_size == 104_857_600

    def test_max_file_size_plain(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAX_FILE_SIZE", "5242880")
        assert Settings().max_file_size == 5 * 1024 * 1024

    @pytest.mark.parametrize("value", ["0", "-1", "lots", "100MB"])
    def test_bad_max_file_size_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        monkeypatch.setenv("MAX_FILE_SIZE", value)
        with pytest.raises(ValidationError, match="max_file_size"):
            Settings()

    def test_allowed_file_types_comma_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALLOWED_FILE_TYPES", "csv, .PDF ,png,,")
        assert Settings().allowed_file_types == ["csv", "pdf", "png"]

    def test_database_url_and_jwt_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        monkeypatch.setenv("JWT_SECRET_KEY", STRONG_SECRET)
        settings = Settings()
        assert settings.database_url == PG_URL
        assert settings.jwt_secret_key == STRONG_SECRET
        assert not settings.embedded_mode

    def test_the_seeds_env_block_as_a_dot_env_file(self, isolated_env: Path) -> None:
        (isolated_env / ".env").write_text(SEED_DOT_ENV)
        settings = Settings()
        assert settings.minio_endpoint == "localhost:9000"
        assert settings.minio_access_key == "minioadmin"
        assert settings.minio_secret_key == "minioadmin123"
        assert settings.minio_use_ssl is False
        assert settings.minio_bucket_csv_imports == "csv-imports"
        assert settings.max_file_size == 104_857_600
        assert settings.allowed_file_types == SEED_FILE_TYPES

    def test_environment_wins_over_dot_env(
        self, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (isolated_env / ".env").write_text(SEED_DOT_ENV)
        monkeypatch.setenv("MAX_FILE_SIZE", "1000")
        assert Settings().max_file_size == 1000


class TestProductionGuard:
    """With DATABASE_URL set (production), default or weak secrets are refused."""

    def test_default_jwt_secret_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        with pytest.raises(ValidationError) as caught:
            Settings()
        assert "JWT_SECRET_KEY must be set" in str(caught.value)
        assert "32 characters" in str(caught.value)

    def test_explicit_default_jwt_secret_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        monkeypatch.setenv("JWT_SECRET_KEY", DEFAULT_JWT_SECRET)
        with pytest.raises(ValidationError, match="JWT_SECRET_KEY"):
            Settings()

    def test_short_jwt_secret_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        monkeypatch.setenv("JWT_SECRET_KEY", "x" * 31)
        with pytest.raises(ValidationError, match="JWT_SECRET_KEY"):
            Settings()

    def test_32_character_secret_is_enough(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        monkeypatch.setenv("JWT_SECRET_KEY", "x" * 32)
        assert Settings().jwt_secret_key == "x" * 32

    def test_seed_admin_password_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        monkeypatch.setenv("JWT_SECRET_KEY", STRONG_SECRET)
        monkeypatch.setenv("ADMIN_PASSWORD", "admin123")
        with pytest.raises(ValidationError) as caught:
            Settings()
        assert "ADMIN_PASSWORD=admin123 is only allowed in embedded dev mode" in str(caught.value)

    def test_embedded_mode_allows_defaults_but_never_uses_the_public_secret(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("FILESTORE_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("ADMIN_PASSWORD", "admin123")
        settings = get_settings()
        assert settings.embedded_mode
        assert settings.jwt_secret_key != DEFAULT_JWT_SECRET
        assert len(settings.jwt_secret_key) >= 32
        # The generated secret is kept, so dev tokens survive a restart.
        assert get_settings().jwt_secret_key == settings.jwt_secret_key


class TestServerRefusesToStart:
    def test_database_url_without_jwt_secret(self, postgres: Postgres, tmp_path: Path) -> None:
        env = clean_environ()
        env["DATABASE_URL"] = postgres.create_database("filestore_nosecret")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "filestore",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(free_port()),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        output = (result.stdout + result.stderr).decode(errors="replace")
        assert result.returncode != 0, output
        assert "Invalid settings" in output
        assert "JWT_SECRET_KEY" in output
        assert "Traceback" not in output


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
            ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
            ("postgresql+asyncpg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
            ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
            (
                "postgresql+psycopg://u@/db?host=/tmp/sock&port=5433",
                "postgresql+psycopg://u@/db?host=/tmp/sock&port=5433",
            ),
        ],
    )
    def test_sqlalchemy_url(self, url: str, expected: str) -> None:
        assert sqlalchemy_url(url) == expected

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
            (
                "postgresql+asyncpg://u:p@h/db?sslmode=require",
                "postgresql://u:p@h/db?sslmode=require",
            ),
            ("postgresql+psycopg://u@/db?host=/tmp/sock", "postgresql://u@/db?host=/tmp/sock"),
        ],
    )
    def test_libpq_url(self, url: str, expected: str) -> None:
        assert libpq_url(url) == expected

    @pytest.mark.parametrize(
        "url",
        [
            "sqlite:///filestore.db",
            "mysql://u:p@h/db",
            "mysql+pymysql://u@h/db",
            "localhost:5432/db",
            "",
        ],
    )
    def test_non_postgres_url_is_refused(self, url: str) -> None:
        with pytest.raises(ValueError, match="DATABASE_URL"):
            sqlalchemy_url(url)
        with pytest.raises(ValueError, match="DATABASE_URL"):
            libpq_url(url)
