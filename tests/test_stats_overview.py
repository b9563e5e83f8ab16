"""`GET /stats/overview`: the console's Overview figures, checked against a known set of rows
(counted as the change from what the shared fast-tier database already holds)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.customers.models import Customer
from filestore.files.models import FileUpload, UploadStatus
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.stats import service as stats_service
from tests.fixtures.app import AsyncApi

NOW = datetime.now(UTC)
BUCKET = "stats-overview-test"


def upload(
    customer: Customer | None,
    size: int,
    age_days: int,
    status: UploadStatus,
    reason: str | None = None,
) -> FileUpload:
    return FileUpload(
        created_at=NOW - timedelta(days=age_days),
        filename="f.pdf",
        bucket=BUCKET,
        object_key=f"k/{uuid.uuid4()}",
        file_size=size,
        mime_type="application/pdf",
        file_type="document",
        md5="0" * 32,
        sha256="0" * 64,
        upload_status=status,
        rejection_reason=reason,
        customer_id=customer.id if customer else None,
    )


def csv_import(
    status: JobStatus, seconds: int, ok: int, failed: int, skipped: int, *, dry_run: bool = False
) -> BackgroundJob:
    started = NOW - timedelta(minutes=5)
    return BackgroundJob(
        job_type=JobType.csv_import,
        status=status,
        created_at=NOW,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        successful_rows=ok,
        failed_rows=failed,
        skipped_rows=skipped,
        params={"validation_rules": {"dry_run": True}} if dry_run else {},
    )


async def overview(api: AsyncApi, days: int = 30) -> dict[str, Any]:
    response = await api.get("/stats/overview", params={"days": days})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def day(body: dict[str, Any], key: str, age_days: int) -> dict[str, Any]:
    wanted = (NOW - timedelta(days=age_days)).date().isoformat()
    entries: list[dict[str, Any]] = [e for e in body[key] if e["day"] == wanted]
    assert len(entries) == 1
    return entries[0]


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in after.items():
        if isinstance(value, dict):
            out[name] = {
                k: v - value_of(before[name], k)
                for k, v in value.items()
                if v != value_of(before[name], k)
            }
        elif isinstance(value, int):
            out[name] = value - before[name]
    return out


def value_of(mapping: dict[str, int], key: str) -> int:
    return mapping.get(key, 0)


async def test_overview_counts_a_known_set_of_rows(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    before = await overview(admin_client)
    big = Customer(full_name="Big Bytes GmbH", email=f"big-{secrets.token_hex(4)}@example.com")
    small = Customer(full_name="Small & Co", email=f"small-{secrets.token_hex(4)}@example.com")
    db_session.add_all([big, small])
    await db_session.flush()
    db_session.add_all(
        [
            upload(big, 7_000_000_000, 0, UploadStatus.completed),
            upload(big, 3_000_000_000, 1, UploadStatus.completed),
            upload(big, 1_000, 1, UploadStatus.deleted),  # accepted, deleted since
            upload(small, 5_000_000_000, 0, UploadStatus.completed),
            upload(small, 9_000_000_000_000, 40, UploadStatus.completed),  # outside the window
            upload(None, 11, 1, UploadStatus.rejected, "virus"),
            upload(None, 12, 1, UploadStatus.rejected, "type"),
            upload(None, 13, 1, UploadStatus.rejected, "type"),
            upload(None, 14, 0, UploadStatus.rejected, "size"),
            upload(None, 15, 0, UploadStatus.rejected, "checksum"),
            upload(big, 16, 0, UploadStatus.pending),  # not finished: neither done nor refused
            csv_import(JobStatus.completed, 10, 8, 1, 1),
            csv_import(JobStatus.failed, 30, 0, 0, 0),
            csv_import(JobStatus.completed, 99, 50, 0, 0, dry_run=True),  # wrote nothing
        ]
    )
    await db_session.flush()
    after = await overview(admin_client)

    assert after["days"] == 30
    assert len(after["uploads"]) == len(after["imports"]) == 30
    assert after["uploads"][-1]["day"] == NOW.date().isoformat()
    (bucket,) = [b for b in after["storage"] if b["bucket"] == BUCKET]
    assert bucket == {"bucket": BUCKET, "bytes": 9_015_000_000_000, "files": 4}

    top = [(c["full_name"], c["bytes"], c["files"]) for c in after["top_customers"]]
    assert top[:2] == [("Big Bytes GmbH", 10_000_000_000, 2), ("Small & Co", 5_000_000_000, 1)]

    uploads = {age: diff(day(after, "uploads", age), day(before, "uploads", age)) for age in (0, 1)}
    assert uploads[0] == {
        "completed": 2,
        "rejected": 2,
        "bytes": 12 * 10**9,
        "rejected_by_reason": {"size": 1, "checksum": 1},
    }
    assert uploads[1] == {
        "completed": 2,
        "rejected": 3,
        "bytes": 3 * 10**9 + 1_000,
        "rejected_by_reason": {"virus": 1, "type": 2},
    }

    imports = day(after, "imports", 0)
    assert diff(imports, day(before, "imports", 0)) == {
        "imports": 2,
        "failed": 1,
        "rows_imported": 8,
        "rows_failed": 1,
        "rows_skipped": 1,
    }
    if day(before, "imports", 0)["imports"] == 0:
        assert imports["average_seconds"] == 20.0
        assert imports["longest_seconds"] == 30.0


async def test_window_is_bounded(admin_client: AsyncApi) -> None:
    body = await overview(admin_client, days=1)
    assert [u["day"] for u in body["uploads"]] == [NOW.date().isoformat()]
    for bad in (0, 367, "x"):
        response = await admin_client.get("/stats/overview", params={"days": bad})
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


async def test_customers_and_strangers_are_refused(
    app_client: AsyncApi, admin_client: AsyncApi
) -> None:
    customer = await admin_client.new_customer()
    password = "Pw-" + "k7" * 8
    response = await admin_client.post(
        "/users",
        json={
            "username": "stats-cust",
            "password": password,
            "role": "customer",
            "customer_id": customer["id"],
        },
    )
    assert response.status_code == 201, response.text
    as_customer = await app_client.login("stats-cust", password)
    response = await as_customer.get("/stats/overview")
    assert response.status_code == 403
    assert response.json() == {"detail": "Your role may not do this", "code": "forbidden_role"}
    anonymous = await AsyncApi(app_client.client).get("/stats/overview")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"]


async def test_overview_reads_its_window_through_the_index(db_session: AsyncSession) -> None:
    """PostgreSQL's BRIN estimate made it scan all of a 10M-row table for a 30-day window
    (bench/scale.py); the Overview turns sequential scans and JIT off for its transaction."""
    assert (await db_session.execute(text("SHOW enable_seqscan"))).scalar_one() == "on"
    await stats_service.overview(db_session, days=30)
    settings = await db_session.execute(
        text("SELECT current_setting('enable_seqscan'), current_setting('jit')")
    )
    assert tuple(settings.one()) == ("off", "off")
