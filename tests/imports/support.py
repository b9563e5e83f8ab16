"""Helpers shared by the import tests: upload a CSV, start an import, wait for its job, and read
the server's database directly."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg

from filestore.db import libpq_url
from tests.fixtures.live import Api, LiveServer

FINISHED = ("completed", "failed", "cancelled")
SEED_MAPPING = {"name": "full_name", "email": "email", "phone": "phone"}
SEED_RULES = {"email_required": True, "phone_format": "digits_only"}
HEADER = "full_name,email,phone,address,city,state,postal_code,country,password"


def tag() -> str:
    """A short random tag that keeps e-mails of different tests apart in a shared database."""
    return uuid.uuid4().hex[:10]


def upload_csv(api: Api, content: bytes, filename: str = "customers.csv") -> int:
    response = api.upload(content, filename, content_type="text/csv", file_type="csv")
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def start_import(
    api: Api,
    file_id: int,
    *,
    mapping: dict[str, str] | None = None,
    rules: dict[str, Any] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"file_upload_id": file_id, "import_type": "customers"}
    if mapping is not None:
        body["mapping_config"] = mapping
    if rules is not None:
        body["validation_rules"] = rules
    return api.post("/files/csv-import", json=body)


def get_job(api: Api, job_id: str) -> dict[str, Any]:
    response = api.get(f"/files/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_job(api: Api, job_id: str, *, timeout: float = 60) -> dict[str, Any]:
    """Poll the job until it is finished; fail (with its last state) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(api, job_id)
        if job["status"] in FINISHED:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout}s: {job}"
        time.sleep(0.2)


def import_csv(
    api: Api,
    content: bytes,
    *,
    mapping: dict[str, str] | None = None,
    rules: dict[str, Any] | None = None,
    filename: str = "customers.csv",
    timeout: float = 60,
) -> dict[str, Any]:
    """Upload, import and wait: the finished job."""
    response = start_import(api, upload_csv(api, content, filename), mapping=mapping, rules=rules)
    assert response.status_code == 202, response.text
    return wait_job(api, response.json()["job_id"], timeout=timeout)


def query(server: LiveServer, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the server's own database."""
    with psycopg.connect(libpq_url(server.env["DATABASE_URL"])) as conn:
        return list(conn.execute(sql, params).fetchall())


def counts(job: dict[str, Any]) -> tuple[Any, ...]:
    """(total, processed, successful, failed, skipped) of a job."""
    return tuple(
        job[k]
        for k in ("total_rows", "processed_rows", "successful_rows", "failed_rows", "skipped_rows")
    )
