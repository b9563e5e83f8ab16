"""Metrics, request logs and the operations endpoints, as an operator would check them."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import LiveServer, production_env

PDF = b"%PDF-1.4\n" + b"y" * 4096


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text `text` (0 when absent)."""
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(\{{(?P<labels>[^}}]*)\}})? (?P<value>\S+)$", re.M)
    for match in pattern.finditer(text):
        found = (
            ",".join(sorted((match.group("labels") or "").split(",")))
            if match.group("labels")
            else ""
        )
        if found == label_text:
            return float(match.group("value"))
    return 0.0


class TestMetrics:
    def test_uploads_downloads_and_requests_are_counted(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        customer = admin.new_customer()["id"]
        before = httpx.get(f"{s3_server.base_url}/metrics").text
        file = admin.upload(PDF, "m.pdf", customer_id=customer).json()
        assert admin.get(f"/files/download/{file['id']}").content == PDF
        refused = admin.upload(b"", "empty.pdf", customer_id=customer)
        assert refused.status_code == 422
        after = httpx.get(f"{s3_server.base_url}/metrics").text

        def grew(name: str, **labels: str) -> float:
            return metric(after, name, **labels) - metric(before, name, **labels)

        assert grew("filestore_uploads_total", bucket="customer-uploads", outcome="stored") == 1
        assert grew("filestore_uploads_total", bucket="none", outcome="empty_file") == 1
        assert grew("filestore_upload_bytes_total") == len(PDF)
        assert grew("filestore_download_bytes_total") == len(PDF)
        assert grew("filestore_upload_duration_seconds_count") == 1
        assert (
            grew(
                "filestore_http_requests_total", method="POST", route="/files/upload", status="201"
            )
            == 1
        )
        assert (
            grew(
                "filestore_http_requests_total", method="POST", route="/files/upload", status="422"
            )
            == 1
        )
        assert metric(after, "filestore_storage_bytes", bucket="customer-uploads") >= len(PDF)
        assert "filestore_jobs" in after
        assert "filestore_csv_import_rows" in after

    def test_metrics_token_guards_the_endpoint(
        self,
        postgres: Postgres,
        start_filestore: ServerFactory,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        env = production_env(postgres.create_database("filestore_metrics"))
        env["FILESTORE_DATA_DIR"] = str(tmp_path_factory.mktemp("metrics"))
        env["METRICS_TOKEN"] = "scrape-token-1234567890"
        server = start_filestore(env)
        assert httpx.get(f"{server.base_url}/metrics").status_code == 401
        wrong = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = httpx.get(
            f"{server.base_url}/metrics",
            headers={"Authorization": "Bearer scrape-token-1234567890"},
        )
        assert ok.status_code == 200
        assert "filestore_http_requests_total" in ok.text


class TestHealthEndpoints:
    def test_live_and_ready(self, s3_server: LiveServer) -> None:
        assert httpx.get(f"{s3_server.base_url}/health/live").json() == {"status": "alive"}
        ready = httpx.get(f"{s3_server.base_url}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"
        assert ready.json()["storage"] == "ok"

    def test_health_reports_the_worker(self, s3_server: LiveServer) -> None:
        body = httpx.get(f"{s3_server.base_url}/health").json()
        assert body["worker"]["status"] in {"ok", "stale", "none"}


class TestRequestLogs:
    def test_one_json_line_per_request_with_id_user_route_status(
        self, s3_server: LiveServer
    ) -> None:
        admin = s3_server.admin()
        response = admin.get("/customers", headers={"X-Request-ID": "trace-abc-123"})
        assert response.headers["x-request-id"] == "trace-abc-123"
        me = admin.get("/auth/me").json()
        lines = [json.loads(line) for line in s3_server.log().splitlines() if line.startswith("{")]
        entry = next(
            e
            for e in lines
            if e.get("request_id") == "trace-abc-123" and e["event"] == "http.request"
        )
        assert entry["route"] == "/customers"
        assert entry["status"] == 200
        assert entry["user_id"] == me["id"]
        assert entry["duration_ms"] >= 0

    def test_generated_request_id_when_none_or_unsafe(self, s3_server: LiveServer) -> None:
        response = httpx.get(
            f"{s3_server.base_url}/health", headers={"X-Request-ID": "bad id; <script>"}
        )
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    def test_no_secrets_in_logs(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        customer = admin.new_customer()["id"]
        user, password = admin.new_user("customer", customer)
        api = s3_server.api()
        token = api.login(user["username"], password)
        api.http.post(
            "/auth/login", json={"username": user["username"], "password": password + "-wrong"}
        )
        api.as_token(token).get("/auth/me")
        log = s3_server.log()
        for secret in (
            password,
            token,
            s3_server.env["JWT_SECRET_KEY"],
            s3_server.env["ADMIN_PASSWORD"],
            s3_server.env["MINIO_SECRET_KEY"],
        ):
            assert secret not in log
