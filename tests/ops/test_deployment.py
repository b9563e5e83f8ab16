"""Deployment files. No Docker engine runs here, so they are checked as data: valid YAML with
the services, ports, credentials and settings the seed and the README promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from filestore.settings import Settings
from tests.conftest import repo_root


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((repo_root() / name).read_text())
    assert isinstance(data, dict)
    return data


class TestComposeFiles:
    @pytest.mark.parametrize("name", ["docker-compose.minio.yml", "docker-compose.full.yml"])
    def test_minio_service_matches_the_seed(self, name: str) -> None:
        minio = load(name)["services"]["minio"]
        assert minio["image"].startswith("minio/minio")
        assert "9000:9000" in minio["ports"]
        assert "9001:9001" in minio["ports"]
        assert minio["environment"] == {
            "MINIO_ROOT_USER": "minioadmin",
            "MINIO_ROOT_PASSWORD": "minioadmin123",
        }
        assert minio["command"] == 'server /data --console-address ":9001"'
        assert "minio_data:/data" in minio["volumes"]

    def test_full_stack_has_every_part(self) -> None:
        services = load("docker-compose.full.yml")["services"]
        assert {"postgres", "minio", "minio-setup", "api", "worker"} <= set(services)
        assert services["api"]["command"][:2] == ["filestore", "serve"]
        assert services["worker"]["command"][:2] == ["filestore", "worker"]
        setup = services["minio-setup"]["entrypoint"]
        for bucket in ("customer-uploads", "ticket-media", "csv-imports", "backups", "temp"):
            assert bucket in setup

    def test_services_only_depend_on_services_that_exist(self) -> None:
        services = load("docker-compose.full.yml")["services"]
        for name, service in services.items():
            for dependency in service.get("depends_on", {}):
                assert dependency in services, f"{name} depends on missing {dependency}"

    def test_api_environment_uses_only_real_settings(self) -> None:
        env = load("docker-compose.full.yml")["services"]["api"]["environment"]
        known = {name.upper() for name in Settings.model_fields} | {
            str(field.validation_alias)
            for field in Settings.model_fields.values()
            if field.validation_alias
        }
        assert set(env) <= known, set(env) - known
        assert env["JWT_SECRET_KEY"].startswith("${JWT_SECRET_KEY:?")


class TestDockerfile:
    def test_runs_as_non_root_on_a_slim_base(self) -> None:
        text = (repo_root() / "Dockerfile").read_text()
        assert "FROM python:3.11-slim" in text
        users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
        assert users
        assert users[-1] not in {"root", "0"}
        assert "requirements.lock" in text

    def test_env_example_lists_every_setting(self) -> None:
        text = (repo_root() / ".env.example").read_text()
        for name, field in Settings.model_fields.items():
            env_name = str(field.validation_alias) if field.validation_alias else name.upper()
            assert env_name in text, f"{env_name} is missing from .env.example"


def test_compose_files_exist() -> None:
    for name in ("docker-compose.minio.yml", "docker-compose.full.yml", "Dockerfile"):
        assert Path(repo_root() / name).is_file()
