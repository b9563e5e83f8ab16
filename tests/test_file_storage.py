"""The seed's own flows, as its README tells a user to run them.

- Quick Start: `filestore serve` on the embedded default, then the seed's curl commands verbatim.
- Development: `uvicorn app.main:app` from the repo root, and the smoke client
  `python test_file_storage.py` against a running server.
- The seed's Python client example against a production-mode server on both stores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import requests

from tests.conftest import ServerFactory, repo_root
from tests.fixtures.live import LiveServer, clean_environ, start_server
from tests.fixtures.servers import free_port

SEED_CSV = (
    "full_name,email,phone,address,city,state,postal_code,country,password\n"
    "John Doe,john@example.com,1234567890,123 Main St,Anytown,CA,12345,USA,password123\n"
    "Jane Smith,jane@example.com,0987654321,456 Oak Ave,Anytown,CA,12345,USA,password456\n"
)

# The seed's Quick Start, step 4, verbatim but for the port.
QUICK_START = """
set -e
# Get authentication token
curl -X POST http://localhost:8000/auth/login \\
  -H "Content-Type: application/json" \\
  -d '{"username": "admin", "password": "admin123"}' > login.json

YOUR_TOKEN=$(python -c "import json; print(json.load(open('login.json'))['access_token'])")

# Upload a file
curl -X POST http://localhost:8000/files/upload \\
  -H "Authorization: Bearer $YOUR_TOKEN" \\
  -F "file=@test.csv" \\
  -F "file_type=csv" \\
  -F "customer_id=1" > upload.json
"""


@pytest.fixture(scope="module")
def embedded_server(
    start_filestore: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> LiveServer:
    """`filestore serve` with nothing configured: embedded PostgreSQL and local storage."""
    data_dir = tmp_path_factory.mktemp("embedded") / ".filestore"
    return start_filestore({"FILESTORE_DATA_DIR": str(data_dir)})


class TestEmbeddedQuickStart:
    def test_seed_curl_commands_work_verbatim(
        self, embedded_server: LiveServer, tmp_path: Path
    ) -> None:
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed on this machine")
        (tmp_path / "test.csv").write_text(SEED_CSV)
        port = embedded_server.base_url.rsplit(":", 1)[1]
        script = QUICK_START.replace("localhost:8000", f"127.0.0.1:{port}")
        env = clean_environ() | {"PATH": f"{Path(sys.executable).parent}:{clean_environ()['PATH']}"}
        subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True
        )
        upload = json.loads((tmp_path / "upload.json").read_text())
        assert upload["filename"] == "test.csv"
        assert upload["file_type"] == "csv"
        assert upload["upload_status"] == "completed"
        assert upload["customer_id"] == 1
        assert upload["bucket"] == "csv-imports"
        token = json.loads((tmp_path / "login.json").read_text())["access_token"]
        download = httpx.get(upload["url"], headers={"Authorization": f"Bearer {token}"})
        assert download.text == SEED_CSV

    def test_dev_mode_warns_about_default_admin(self, embedded_server: LiveServer) -> None:
        # It warns, without ever printing the password (dev mode included).
        assert "bootstrap.default_admin" in embedded_server.log()
        assert "admin123" not in embedded_server.log()

    def test_five_seed_buckets_exist(self, embedded_server: LiveServer) -> None:
        objects = Path(embedded_server.env["FILESTORE_DATA_DIR"]) / "objects"
        assert {p.name for p in objects.iterdir()} >= {
            "customer-uploads",
            "ticket-media",
            "csv-imports",
            "backups",
            "temp",
        }

    def test_smoke_client_passes(self, embedded_server: LiveServer) -> None:
        result = subprocess.run(
            [
                sys.executable,
                str(repo_root() / "test_file_storage.py"),
                "--base-url",
                embedded_server.base_url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "smoke steps passed" in result.stdout

    def test_smoke_client_fails_on_wrong_password(self, embedded_server: LiveServer) -> None:
        result = subprocess.run(
            [
                sys.executable,
                str(repo_root() / "test_file_storage.py"),
                "--base-url",
                embedded_server.base_url,
                "--password",
                "not-the-password",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        assert "FAIL  login" in result.stderr


class TestSeedDevelopmentCommand:
    def test_uvicorn_app_main_from_repo_root(self, tmp_path: Path) -> None:
        port = free_port()
        env = clean_environ() | {"FILESTORE_DATA_DIR": str(tmp_path / ".filestore")}
        log = tmp_path / "uvicorn.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
                cwd=repo_root(),
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline and status != 200:
                assert process.poll() is None, log.read_text()
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
                except httpx.TransportError:
                    time.sleep(0.2)
            assert status == 200
            login = httpx.post(
                f"http://127.0.0.1:{port}/auth/login",
                json={"username": "admin", "password": "admin123"},
            )
            assert login.status_code == 200
        finally:
            process.terminate()
            process.wait(20)
        # SIGTERM (docker stop, systemd) must not leave the embedded PostgreSQL running.
        postmaster_pid = tmp_path / ".filestore" / "pgdata" / "postmaster.pid"
        deadline = time.monotonic() + 15
        while postmaster_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not postmaster_pid.exists(), "embedded PostgreSQL still running after SIGTERM"


class TestSeedPythonClient:
    def test_python_client_example(self, server: LiveServer, tmp_path: Path) -> None:
        """The seed's `requests` example, with a customer id that exists."""
        admin = server.admin()
        token = admin.token
        customer_id = admin.new_customer()["id"]
        (tmp_path / "customers.csv").write_text(SEED_CSV)

        with open(tmp_path / "customers.csv", "rb") as f:
            files = {"file": ("customers.csv", f, "text/csv")}
            data = {
                "file_type": "csv",
                "customer_id": customer_id,
                "metadata": json.dumps({"source": "manual_upload"}),
            }
            response = requests.post(
                f"{server.base_url}/files/upload",
                files=files,
                data=data,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["filename"] == "customers.csv"
        assert body["mime_type"] == "text/csv"
        assert body["metadata"] == {"source": "manual_upload"}
        assert body["customer_id"] == customer_id
        listed = requests.get(
            f"{server.base_url}/files/customer/{customer_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).json()
        assert [f["id"] for f in listed] == [body["id"]]


class TestEmbeddedAfterSigkill:
    def test_restart_then_stop_stops_postgres(self, tmp_path: Path) -> None:
        """A SIGKILLed API leaves its pid in `.handle_pids.json`; the next start and stop
        must still stop the embedded PostgreSQL."""
        data_dir = tmp_path / ".filestore"
        postmaster_pid = data_dir / "pgdata" / "postmaster.pid"
        env = {"FILESTORE_DATA_DIR": str(data_dir)}
        first = start_server(tmp_path / "first", env)
        first.process.kill()
        first.process.wait(10)
        assert postmaster_pid.exists()
        second = start_server(tmp_path / "second", env)
        try:
            assert second.admin().get("/customers").status_code == 200
        finally:
            second.stop()
        deadline = time.monotonic() + 15
        while postmaster_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            assert not postmaster_pid.exists(), "embedded PostgreSQL still running after stop"
        finally:
            if postmaster_pid.exists():  # leave no server of ours behind, even on failure
                os.kill(int(postmaster_pid.read_text().split()[0]), signal.SIGTERM)
