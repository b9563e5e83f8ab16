"""First end-to-end checks of upload and download against both stores."""

from __future__ import annotations

import hashlib

from tests.fixtures.live import Api


class TestUploadRoundTrip:
    def test_csv_upload_then_download_returns_same_bytes(
        self, admin: Api, customer_id: int
    ) -> None:
        content = b"full_name,email\nJohn Doe,john@example.com\n"
        response = admin.upload(content, "customers.csv", file_type="csv", customer_id=customer_id)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        assert body["bucket"] == "csv-imports"
        download = admin.get(f"/files/download/{body['id']}")
        assert download.status_code == 200
        assert download.content == content
