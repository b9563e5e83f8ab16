"""Smoke client: runs the seed's whole flow against a running Filestore and exits non-zero on
any failure.

    python test_file_storage.py                       # http://localhost:8000, admin/admin123
    python test_file_storage.py --base-url http://host:8000 --username admin --password ...

Steps: health, login (JSON and OAuth2 form), upload a CSV for a customer (the seed's curl and
Python examples), metadata, download (whole and a Range), list the customer's files, start the
seed's CSV import and wait for its job (needs a worker: built in on the embedded default,
`filestore worker` otherwise), list jobs, upload an image, delete both files and check they are
gone. Only the public HTTP API is used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

SAMPLE_CSV = (
    b"full_name,email,phone,address,city,state,postal_code,country,password\n"
    b"John Doe,john@example.com,1234567890,123 Main St,Anytown,CA,12345,USA,password123\n"
    b"Jane Smith,jane@example.com,0987654321,456 Oak Ave,Anytown,CA,12345,USA,password456\n"
)
# The smallest valid PNG: a 1x1 transparent pixel.
SAMPLE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfab"
    "d40000000049454e44ae426082"
)


class SmokeFailure(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def expect_status(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise SmokeFailure(
            f"{what}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    if status == 204 or not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content


class Smoke:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        customer_id: int | None,
        job_timeout: float = 120,
    ) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.job_timeout = job_timeout
        self.username = username
        self.password = password
        self.customer_id = customer_id
        self.uploaded: list[int] = []

    def step_health(self) -> None:
        body = expect_status(self.http.get("/health"), 200, "GET /health")
        expect(body["database"] == "ok" and body["storage"] == "ok", f"unhealthy: {body}")

    def step_login(self) -> None:
        body = expect_status(
            self.http.post(
                "/auth/login", json={"username": self.username, "password": self.password}
            ),
            200,
            "POST /auth/login (JSON)",
        )
        expect(body["token_type"] == "bearer" and body["expires_in"] > 0, f"odd token: {body}")
        form = expect_status(
            self.http.post(
                "/auth/login", data={"username": self.username, "password": self.password}
            ),
            200,
            "POST /auth/login (OAuth2 form)",
        )
        expect(bool(form["access_token"]), "form login gave no token")
        self.http.headers["Authorization"] = f"Bearer {body['access_token']}"
        me = expect_status(self.http.get("/auth/me"), 200, "GET /auth/me")
        expect(me["username"] == self.username, f"/auth/me is {me}")

    def step_customer(self) -> None:
        if self.customer_id is not None:
            expect_status(
                self.http.get(f"/customers/{self.customer_id}"), 200, "GET /customers/{id}"
            )
            return
        email = f"smoke-{uuid.uuid4().hex[:10]}@example.com"
        body = expect_status(
            self.http.post("/customers", json={"full_name": "Smoke Test", "email": email}),
            201,
            "POST /customers",
        )
        self.customer_id = int(body["id"])

    def step_upload_csv(self) -> None:
        # The seed's Python client example, with a customer that exists.
        files = {"file": ("customers.csv", SAMPLE_CSV, "text/csv")}
        data = {
            "file_type": "csv",
            "customer_id": str(self.customer_id),
            "metadata": json.dumps({"source": "manual_upload"}),
        }
        body = expect_status(
            self.http.post("/files/upload", files=files, data=data), 201, "upload CSV"
        )
        for name in (
            "id",
            "filename",
            "file_size",
            "mime_type",
            "file_type",
            "upload_status",
            "url",
            "created_at",
            "md5",
            "sha256",
            "bucket",
        ):
            expect(name in body, f"upload response lacks {name!r}: {body}")
        expect(
            body["file_size"] == len(SAMPLE_CSV), f"size {body['file_size']} != {len(SAMPLE_CSV)}"
        )
        expect(body["sha256"] == hashlib.sha256(SAMPLE_CSV).hexdigest(), "sha256 differs")
        expect(body["md5"] == hashlib.md5(SAMPLE_CSV).hexdigest(), "md5 differs")
        expect(body["bucket"] == "csv-imports", f"CSV went to {body['bucket']}")
        expect(body["metadata"] == {"source": "manual_upload"}, f"metadata is {body['metadata']}")
        self.uploaded.append(int(body["id"]))
        self.csv = body

    def step_download(self) -> None:
        file_id = self.csv["id"]
        meta = expect_status(self.http.get(f"/files/{file_id}"), 200, "GET /files/{id}")
        expect(meta["sha256"] == self.csv["sha256"], "metadata differs from upload")
        response = self.http.get(self.csv["url"])
        content = expect_status(response, 200, "download via the response's url")
        expect(content == SAMPLE_CSV, "downloaded bytes differ from the upload")
        expect("attachment" in response.headers.get("content-disposition", ""), "not an attachment")
        part = self.http.get(f"/files/download/{file_id}", headers={"Range": "bytes=0-8"})
        expect_status(part, 206, "ranged download")
        expect(part.content == SAMPLE_CSV[:9], "range returned the wrong bytes")

    def step_list(self) -> None:
        files = expect_status(
            self.http.get(f"/files/customer/{self.customer_id}"), 200, "GET /files/customer/{id}"
        )
        expect(any(f["id"] == self.csv["id"] for f in files), "uploaded file not listed")

    def step_csv_import(self) -> None:
        # The seed's "Start CSV Import" request, as written.
        body = expect_status(
            self.http.post(
                "/files/csv-import",
                json={
                    "file_upload_id": self.csv["id"],
                    "import_type": "customers",
                    "mapping_config": {"name": "full_name", "email": "email", "phone": "phone"},
                    "validation_rules": {"email_required": True, "phone_format": "digits_only"},
                },
            ),
            202,
            "POST /files/csv-import",
        )
        expect(body["status"] == "pending" and bool(body["job_id"]), f"odd job: {body}")
        deadline = time.monotonic() + self.job_timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = expect_status(
                self.http.get(f"/files/jobs/{body['job_id']}"), 200, "GET /files/jobs/{id}"
            )
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.25)
        expect(
            job.get("status") != "pending",
            f"import still pending after {self.job_timeout:.0f} s: is a worker running?",
        )
        expect(job.get("status") == "completed", f"import did not complete: {job}")
        expect(job["total_rows"] == 2 and job["processed_rows"] == 2, f"odd counts: {job}")
        expect(
            job["successful_rows"] + job["skipped_rows"] == 2 and job["failed_rows"] == 0,
            f"rows failed: {job['error_log']}",
        )
        for email in ("john@example.com", "jane@example.com"):
            found = expect_status(
                self.http.get("/customers", params={"email": email}), 200, "GET /customers"
            )
            expect(len(found) == 1, f"imported customer {email} not found")
        jobs = expect_status(
            self.http.get("/files/jobs", params={"job_type": "csv_import", "limit": 50}),
            200,
            "GET /files/jobs",
        )
        expect(any(j["id"] == body["job_id"] for j in jobs), "job not in GET /files/jobs")

    def step_upload_image(self) -> None:
        files = {"file": ("pixel.png", SAMPLE_PNG, "image/png")}
        data = {"file_type": "image", "customer_id": str(self.customer_id)}
        body = expect_status(
            self.http.post("/files/upload", files=files, data=data), 201, "upload PNG"
        )
        expect(body["mime_type"] == "image/png", f"PNG stored as {body['mime_type']}")
        expect(body["bucket"] == "customer-uploads", f"PNG went to {body['bucket']}")
        self.uploaded.append(int(body["id"]))

    def step_delete(self) -> None:
        for file_id in self.uploaded:
            expect_status(self.http.delete(f"/files/{file_id}"), 204, "DELETE /files/{id}")
            expect_status(self.http.get(f"/files/{file_id}"), 404, "GET a deleted file")
        self.uploaded.clear()

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("health", self.step_health),
            ("login", self.step_login),
            ("customer", self.step_customer),
            ("upload csv", self.step_upload_csv),
            ("download", self.step_download),
            ("list customer files", self.step_list),
            ("csv import", self.step_csv_import),
            ("upload image", self.step_upload_image),
            ("delete", self.step_delete),
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--base-url", default=os.environ.get("FILESTORE_URL", "http://localhost:8000")
    )
    parser.add_argument("--username", default=os.environ.get("FILESTORE_USERNAME", "admin"))
    parser.add_argument("--password", default=os.environ.get("FILESTORE_PASSWORD", "admin123"))
    parser.add_argument(
        "--customer-id", type=int, default=None, help="an existing customer (default: create one)"
    )
    parser.add_argument(
        "--job-timeout", type=float, default=120, help="seconds to wait for the CSV import job"
    )
    args = parser.parse_args(argv)
    smoke = Smoke(args.base_url, args.username, args.password, args.customer_id, args.job_timeout)
    for name, step in smoke.steps():
        try:
            step()
        except (SmokeFailure, httpx.HTTPError) as exc:
            print(f"FAIL  {name}: {exc}", file=sys.stderr)
            return 1
        print(f"ok    {name}")
    print(f"All {len(smoke.steps())} smoke steps passed against {args.base_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
